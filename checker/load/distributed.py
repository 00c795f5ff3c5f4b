"""Master <-> worker wiring of a distributed run, behind the run key (`checker.runkey`).

A worker says hello with a nonce; the master challenges it with its own; the worker proves it
holds the run key and sends, sealed, what it must share with the master (`checker.load.profile`:
the scenario, the code version, its switches; a worker that differs is refused, named, and
the run does not start); only then does the master send its `Setup`, sealed for that node (the
runtime roles' URLs, the tenant key, the JWT secret, the tenants' passwords: never the owner's
URL). A worker ships its history back sealed too, with every stats report and once more when
its users have stopped, so the master's history holds exactly the operations the stats count.

Any other peer on the master port gets nothing: a wrong proof, a malformed message, or no proof
within AUTH_TIMEOUT seconds of connecting gets it logged, counted, told to quit and dropped
from Locust's workers (so no users are dispatched to it); history that does not open with
the run key is ignored and counted.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import gevent
from locust.env import Environment
from locust.runners import STATE_RUNNING, MasterRunner, WorkerRunner

from checker import runkey
from checker.history import HistoryWriter
from checker.load.harness import BufferSink, Harness, Setup, attach
from checker.load.profile import differences, process_profile, scenario_name

HELLO_MESSAGE = "checker_hello"
CHALLENGE_MESSAGE = "checker_challenge"
PROOF_MESSAGE = "checker_proof"
CONFIG_MESSAGE = "checker_config"
HISTORY_MESSAGE = "checker_history"
HISTORY_KEY = "checker_history"
AUTH_TIMEOUT = 20.0
"""Seconds a connected peer has to prove it holds the run key."""

log = logging.getLogger("checker.distributed")


@dataclass
class WorkerGate:
    """The master's view of its peers: proven workers, refused peers, finished workers."""

    authenticated: set[str] = field(default_factory=set)
    finished: set[str] = field(default_factory=set)
    refused: list[str] = field(default_factory=list)
    forged: int = 0
    """Messages from proven workers that did not open with the run key."""
    mismatched: dict[str, list[str]] = field(default_factory=dict)
    """Proven workers refused because they differ from the master (`checker.load.profile`)."""
    names: dict[str, str] = field(default_factory=dict)
    """Proven workers' history process names (w0, w1, ...) by Locust node id."""


def serve_workers(environment: Environment, setup: Setup, sink: HistoryWriter,
                  expected: int, key: bytes) -> WorkerGate:
    """On a master: hand each proven worker its sealed setup, append what proven workers ship
    to `sink`, refuse everyone else. Returns the (live) gate."""
    runner = environment.runner
    assert isinstance(runner, MasterRunner)
    gate = WorkerGate()
    challenges: dict[str, tuple[str, str]] = {}
    profile = process_profile(setup.scenario)

    def refuse(node: str, why: str) -> None:
        if node in gate.refused:
            return
        gate.refused.append(node)
        log.warning("refused a peer on the master port (%s): %s", why, node)
        _evict(runner, node)

    def on_hello(environment: Environment, msg: Any, **_kw: Any) -> None:
        theirs = msg.data.get("nonce") if isinstance(msg.data, dict) else None
        if not isinstance(theirs, str) or len(theirs) != 2 * runkey.NONCE_BYTES:
            refuse(msg.node_id, "malformed hello")
            return
        ours = runkey.nonce()
        challenges[msg.node_id] = (ours, theirs)
        runner.send_message(CHALLENGE_MESSAGE, {"nonce": ours}, msg.node_id)

    def on_proof(environment: Environment, msg: Any, **_kw: Any) -> None:
        node, pending = msg.node_id, challenges.pop(msg.node_id, None)
        given = msg.data.get("proof") if isinstance(msg.data, dict) else None
        if pending is None or not runkey.proof_holds(key, node, *pending, given):
            refuse(node, "wrong proof of the run key")
            return
        try:
            theirs = runkey.unseal(key, msg.data.get("profile"), node)
        except runkey.RunKeyError:
            theirs = None
        differ = differences(profile, theirs)
        if differ:
            gate.mismatched[node] = differ
            refuse(node, "differs from the master: " + "; ".join(differ))
            return
        gate.authenticated.add(node)
        # Its place among the proven workers (Locust's own index counts every peer).
        mine = setup.for_worker(len(gate.authenticated) - 1, max(expected, 1))
        gate.names[node] = mine.process
        runner.send_message(CONFIG_MESSAGE, {"sealed": runkey.seal(key, mine.to_dict(), node)},
                            node)

    def opened(node: str, sealed: object) -> Any:
        # A batch that opens under the run key for this node proves the key as well as the
        # handshake does (a worker's first stats report may overtake its proof).
        if sealed is None or node in gate.refused:
            return None
        try:
            return runkey.unseal(key, sealed, node)
        except runkey.RunKeyError:
            gate.forged += 1
            log.warning("ignored a history batch that did not open with the run key: %s", node)
            return None

    def take(lines: Any) -> None:
        # Validated when the worker built them (HistoryRecord checks itself): written as sent.
        if isinstance(lines, list) and lines and all(isinstance(x, str) for x in lines):
            sink.append_lines(lines)

    def on_report(client_id: str, data: dict[str, Any], **_kw: Any) -> None:
        take(opened(client_id, data.get(HISTORY_KEY)))

    def on_final(environment: Environment, msg: Any, **_kw: Any) -> None:
        batch = opened(msg.node_id, msg.data.get("sealed") if isinstance(msg.data, dict)
                       else None)
        if isinstance(batch, dict):
            take(batch.get("records"))
            if batch.get("final"):
                gate.finished.add(msg.node_id)

    def watch() -> None:
        seen: dict[str, float] = {}
        while True:
            now = time.monotonic()
            for node in list(runner.clients):
                if node in gate.authenticated:
                    continue
                if now - seen.setdefault(node, now) > AUTH_TIMEOUT:
                    refuse(node, f"no proof of the run key within {AUTH_TIMEOUT:.0f} s")
            gevent.sleep(0.5)

    runner.register_message(HELLO_MESSAGE, on_hello)
    runner.register_message(PROOF_MESSAGE, on_proof)
    environment.events.worker_report.add_listener(on_report)
    runner.register_message(HISTORY_MESSAGE, on_final)
    gevent.spawn(watch)
    return gate


def _evict(runner: MasterRunner, node: str) -> None:
    """Tell a peer to quit and forget it as a worker, as Locust does for a worker that
    reported it stopped (users are dispatched again among the others)."""
    runner.send_message("quit", None, node)
    client = runner.clients.pop(node, None)
    dispatcher = getattr(runner, "_users_dispatcher", None)
    if client is not None and dispatcher is not None:
        dispatcher.remove_worker(client)
        if not dispatcher.dispatch_in_progress and runner.state == STATE_RUNNING:
            runner.start(runner.target_user_count, runner.spawn_rate)


def serve_master(environment: Environment, key: bytes | None) -> None:
    """On a worker: prove the run key, take the sealed setup, ship history sealed with every
    stats report and a final batch when the users have stopped."""
    runner = environment.runner
    assert isinstance(runner, WorkerRunner)
    if key is None:
        log.error("no run key: set %s (hex) or %s on this worker, the same key as the "
                  "master's", runkey.KEY_ENV, runkey.KEY_FILE_ENV)
        return
    sink = BufferSink()
    node = runner.client_id
    ours = runkey.nonce()

    def on_challenge(environment: Environment, msg: Any, **_kw: Any) -> None:
        theirs = msg.data.get("nonce") if isinstance(msg.data, dict) else ""
        mine = process_profile(scenario_name(environment))
        runner.send_message(PROOF_MESSAGE, {"proof": runkey.proof(key, node, str(theirs), ours),
                                            "profile": runkey.seal(key, mine, node)})

    def on_config(environment: Environment, msg: Any, **_kw: Any) -> None:
        try:
            data = runkey.unseal(key, msg.data.get("sealed"), node)
        except runkey.RunKeyError as exc:
            log.error("the master's setup did not open with this worker's run key: %s", exc)
            return
        attach(environment, Harness(Setup.from_dict(data), sink))

    def on_report(client_id: str, data: dict[str, Any], **_kw: Any) -> None:
        data[HISTORY_KEY] = runkey.seal(key, sink.drain(), node)

    def on_stop(environment: Environment, **_kw: Any) -> None:
        # The users have stopped: final stats (carrying the last history batch) now, not at
        # the master's `quit` (which a worker reads only after its stop_timeout pause).
        send_stats = getattr(runner, "_send_stats", None)
        if callable(send_stats):
            send_stats()
        final = {"records": sink.drain(), "final": True}
        runner.send_message(HISTORY_MESSAGE, {"sealed": runkey.seal(key, final, node)})

    runner.register_message(CHALLENGE_MESSAGE, on_challenge)
    runner.register_message(CONFIG_MESSAGE, on_config)
    # Say hello only now: a setup pushed at connection time could arrive before Locust's
    # `init` event has registered the handlers above.
    runner.send_message(HELLO_MESSAGE, {"nonce": ours})
    environment.events.report_to_master.add_listener(on_report)
    environment.events.test_stop.add_listener(on_stop)
