"""`pause:every=D,for=D`: freeze every server process, then let them run again."""

from __future__ import annotations

import time

from checker.errors import UsageError
from checker.faults.kind import Fault, FaultTarget, PeriodicFault
from checker.provision.base import Capability


class Pause(PeriodicFault):
    """The provider's `pause()`, `for` seconds, then `resume()` (the clients stall, not fail)."""

    name = "pause"
    summary = ("every server process frozen for `for` (embedded: SIGSTOP the postmaster and "
               "its children, then SIGCONT; container: `docker pause`/`unpause`)")
    example = "pause:every=15s,for=2s"
    options = ("every", "for")
    needs = frozenset({Capability.PAUSE})

    def validate(self, fault: Fault, spec: str) -> None:
        """A pause shorter than its period."""
        if fault.duration >= fault.every:
            raise UsageError(f"bad --faults {spec!r}: pause 'for' must be shorter than 'every'")

    def inject(self, fault: Fault, target: FaultTarget) -> str:
        """Pause, wait, resume (always)."""
        detail = target.provider.pause()
        try:
            time.sleep(fault.duration)
        finally:
            target.provider.resume()
        return f"{detail} for {fault.duration:g} s"


FAULT_KIND = Pause()
