"""`crash:every=D`: crash the server (an immediate shutdown) and start it again."""

from __future__ import annotations

from psycopg.conninfo import conninfo_to_dict

from checker.errors import InfrastructureError
from checker.faults.kind import Fault, FaultTarget, PeriodicFault
from checker.provision.base import Capability


class Crash(PeriodicFault):
    """The provider's `crash()` then `restart()`, on the same data and the same port."""

    name = "crash"
    summary = ("an immediate shutdown (no checkpoint, nothing flushed beyond each commit), then "
               "a restart on the same data and port (embedded: SIGQUIT to the postmaster; "
               "container: `docker kill` + `docker start`)")
    example = "crash:every=20s"
    needs = frozenset({Capability.CRASH})

    def inject(self, fault: Fault, target: FaultTarget) -> str:
        """Crash, restart; refuses a restart on another port (the clients' URL would be wrong)."""
        before = str(conninfo_to_dict(target.url).get("port", ""))
        target.provider.crash()
        server = target.provider.restart()
        if str(server.url.port) != before:
            raise InfrastructureError(f"the restarted server took port {server.url.port}, "
                                      f"not {before}: clients cannot reconnect")
        return f"{target.provider.name} server restarted on port {before}"


FAULT_KIND = Crash()
