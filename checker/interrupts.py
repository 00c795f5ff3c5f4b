"""Ctrl-C and SIGTERM during a command that has something to finish and to clean up.

The first signal asks the command to wind down: a run stops its load (or skips what has not
started), still audits what happened, writes the full report and removes what it created;
`db up` stops and removes its database. The second also skips the audit (cutting it short if
it is running). Neither raises anywhere else, so no step is left half-done and no traceback is
printed. Servers and workers the checker starts run in their own session: a terminal's Ctrl-C
(SIGINT to the whole foreground process group) reaches only the checker, which stops them.

`INTERRUPTS.install()` comes first in the console script, before the heavy imports, so a
Ctrl-C at any moment is this module's to handle.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from types import FrameType

PHASES = ("start", "provision", "migrate", "seed", "load", "stop", "audit", "report", "cleanup")


class Interrupts:
    """What signals arrived, and in which phase the first one did."""

    def __init__(self) -> None:
        self.count = 0
        self.phase = "start"
        self.arrived_in: str | None = None
        self.signal_name = ""
        self._wake: threading.Event | None = None
        self._entered: list[tuple[str, float]] = []

    def install(self) -> None:
        """Handle SIGINT and SIGTERM from now on (main thread only). Call it after gevent's
        patching, if any: `wait` then cooperates."""
        if threading.current_thread() is threading.main_thread():
            self._wake = threading.Event()
            signal.signal(signal.SIGINT, self._on_signal)
            signal.signal(signal.SIGTERM, self._on_signal)

    @property
    def requested(self) -> bool:
        """Whether the command was asked to wind down."""
        return self.count > 0

    @property
    def skip_audit(self) -> bool:
        """Whether the audit is to be skipped (a second signal)."""
        return self.count > 1

    def enter(self, phase: str) -> None:
        """The command's current phase (one of PHASES), for the report and the handler."""
        assert phase in PHASES, phase
        self.phase = phase
        self._entered.append((phase, time.perf_counter()))

    def seconds(self) -> dict[str, float]:
        """Seconds spent in each phase entered so far (the current one until now), in the
        order they were first entered."""
        spent: dict[str, float] = {}
        ends = [at for _, at in self._entered[1:]] + [time.perf_counter()]
        for (phase, began), ended in zip(self._entered, ends, strict=True):
            spent[phase] = round(spent.get(phase, 0.0) + ended - began, 3)
        return spent

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a signal arrives (True) or `timeout` passes (False); installed only."""
        assert self._wake is not None, "install() first"
        return self._wake.wait(timeout)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.count += 1
        if self.count == 1:
            self.arrived_in = self.phase
            self.signal_name = signal.Signals(signum).name
            _say(f"{self.signal_name} during {self.phase}: winding down (the audit still runs; "
                 "again to skip it)")
        elif self.count == 2:
            _say("second interrupt: skipping the audit, still cleaning up")
            if self.phase == "audit":
                raise KeyboardInterrupt  # cut the audit short; the pipeline reports it skipped
        if self._wake is not None:
            self._wake.set()


def _say(line: str) -> None:
    # A signal handler: print plainly (no rich, no locks that the interrupted code may hold).
    sys.stderr.write(f"\n{line}\n")
    sys.stderr.flush()


INTERRUPTS = Interrupts()
"""The process's one handler (signals go to one place)."""
