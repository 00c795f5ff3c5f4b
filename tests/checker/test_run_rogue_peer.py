"""A rogue peer on the master port of a distributed run gets no secret.

The rogue is a raw Locust RPC client (a ZeroMQ DEALER speaking Locust's messages) in its own
process: it says `client_ready` like a worker, says hello to the checker, answers the
challenge with a made-up proof, and records every message the master sends it. Meanwhile a
real worker, given the run key, does the load. The rogue must receive no setup, no URL, no
password or key of any kind, and be refused, counted and logged; the run itself passes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from checker.provision import Server
from checker.provision.base import free_port
from taskhub.db import libpq_url
from tests.checker.run_support import CHECKER, FAST, Run

ROGUE = r"""
import json, sys, time
import zmq
from locust import __version__
from locust.rpc.protocol import Message

port, seconds = int(sys.argv[1]), float(sys.argv[2])
sock = zmq.Context().socket(zmq.DEALER)
sock.setsockopt(zmq.IDENTITY, b"rogue-peer")
sock.connect(f"tcp://127.0.0.1:{port}")
send = lambda kind, data: sock.send(Message(kind, data, "rogue-peer").serialize())
send("client_ready", __version__)
send("checker_hello", {"nonce": "00" * 16})
seen, raw, deadline = [], [], time.monotonic() + seconds
while time.monotonic() < deadline:
    if sock.poll(100):
        data = sock.recv()
        msg = Message.unserialize(data)
        seen.append(msg.type)
        raw.append(repr(msg.data) + repr(data))
        if msg.type == "checker_challenge":
            send("checker_proof", {"proof": "f" * 64})
        if msg.type == "quit":
            break
print(json.dumps({"types": seen, "raw": raw}))
"""



def test_a_rogue_peer_on_the_master_port_gets_nothing(pg_server: Server, tmp_path: Path) -> None:
    port = free_port()
    run = subprocess.Popen(
        [*CHECKER, "run", "transitions", "--dsn", libpq_url(pg_server.url),
         "--report-dir", str(tmp_path), *FAST, "--duration", "6s", "--workers", "1",
         "--master-port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        rogue = subprocess.run([sys.executable, "-c", ROGUE, str(port), "20"],
                               capture_output=True, text=True, timeout=60, check=True)
        stdout, stderr = run.communicate(timeout=180)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    received = json.loads(rogue.stdout)
    assert "checker_challenge" in received["types"] and "quit" in received["types"]
    assert "checker_config" not in received["types"]
    everything = " ".join(received["raw"])
    secret = pg_server.url.password
    assert secret and secret not in everything
    for marker in ("postgresql", "password", "tenant_key", "jwt_secret", "sealed", "@"):
        assert marker not in everything, marker

    folders = sorted(tmp_path.glob("*-transitions*"))
    result = Run(run.returncode, stdout, stderr, folders[-1] if folders else None)
    assert result.returncode == 0, stdout[-3000:] + stderr[-3000:]
    assert result.summary["parameters"]["refused_peers"] == 1
    assert "refused a peer on the master port (wrong proof of the run key): rogue-peer" in stderr
    assert result.summary["totals"]["requests"] > 20
