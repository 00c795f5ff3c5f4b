"""The container provider: PostgreSQL in a testcontainers `PostgresContainer`.

The image comes from CHECKER_PG_IMAGE (default: the official `postgres` image). Without Ryuk
(which cannot always be pulled) our own reaper removes the container if this process dies, and
containers labelled with a dead owner are swept at the next start.

The data directory is a tmpfs mount, which Docker empties whenever the container stops. A
durability test or a crash fault needs data that survives a crash, so `persistent=True` leaves
the tmpfs out: the data then lives in the container's own filesystem (or the volume the image
declares), which `docker kill` + `docker start` keep and `stop()` removes with the container;
its port is published on a fixed host port so a restart keeps the URL. `crash()` and
`restart()` are that crash and that start; `prepare()` turns persistence on for a run whose
faults crash the server.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import time
from functools import partial
from typing import Any

import psycopg
from sqlalchemy import URL

from checker.errors import InfrastructureError, first_line
from checker.provision.base import Capability, KeptServer, Owner, Provider, Server, free_port
from checker.provision.reaper import Reaper

DEFAULT_IMAGE = "postgres:17"
OWNER_LABEL = "io.taskhub-checker.owner"
KEPT_LABEL = "io.taskhub-checker.kept"
"""On a container started with `--keep` (never swept), instead of OWNER_LABEL: when."""
USERNAME = "checker"
DATA_DIR = "/var/lib/postgresql/data"
READY_TIMEOUT_S = 60.0


BIND_ENV = "CHECKER_PG_BIND"

log = logging.getLogger(__name__)


def image_name() -> str:
    """The PostgreSQL image to run: CHECKER_PG_IMAGE or the official default."""
    return os.environ.get("CHECKER_PG_IMAGE") or DEFAULT_IMAGE


def docker_client(timeout: int = 5) -> Any:
    """A Docker client that has answered a ping; InfrastructureError if none answers."""
    import docker

    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except Exception as exc:
        where = os.environ.get("DOCKER_HOST", "the default socket")
        raise InfrastructureError(
            f"Docker engine unreachable at {where}: {first_line(exc)[:300]}"
        ) from None
    return client


def docker_answers() -> bool:
    """True when a Docker engine answers a ping within a few seconds."""
    try:
        docker_client(timeout=3).close()
    except InfrastructureError:
        return False
    return True


def ensure_image(client: Any, image: str) -> None:
    """Make sure `image` is present locally, pulling it if need be; InfrastructureError if not."""
    import docker

    try:
        client.images.get(image)
        return
    except docker.errors.ImageNotFound:
        pass
    try:
        client.images.pull(image)
    except Exception as exc:
        raise InfrastructureError(
            f"image {image} is not available locally and could not be pulled: "
            f"{first_line(exc)[:300]} (set CHECKER_PG_IMAGE to an image you have)"
        ) from None


def container_usable(image: str | None = None) -> bool:
    """True when a Docker engine answers and the image is present or can be pulled."""
    try:
        client = docker_client(timeout=3)
    except InfrastructureError:
        return False
    try:
        ensure_image(client, image or image_name())
    except InfrastructureError:
        return False
    finally:
        client.close()
    return True


def sweep_stale_containers(client: Any) -> list[str]:
    """Remove containers whose owner process on this host is gone; return their ids."""
    removed = []
    for container in client.containers.list(all=True, filters={"label": OWNER_LABEL}):
        owner = Owner.parse(container.labels.get(OWNER_LABEL, ""))
        if owner is not None and owner.is_dead_here():
            container.remove(force=True, v=True)
            removed.append(container.id)
    return removed


def _remove(container_id: str) -> None:
    """`docker rm -f` with its volumes (a client of its own: the listing's is closed)."""
    with contextlib.closing(docker_client()) as fresh:
        fresh.containers.get(container_id).remove(force=True, v=True)


def _published_host(container: Any) -> str:
    # A local engine publishes ports on the host's loopback; testcontainers would pick the
    # bridge gateway when it believes it runs inside a container, which it need not here.
    docker_host = os.environ.get("DOCKER_HOST", "")
    if not docker_host or docker_host.startswith("unix://"):
        return "127.0.0.1"
    return str(container.get_container_host_ip())


def publish_address() -> str:
    """The host address the server's port is published on: CHECKER_PG_BIND, else loopback for
    a local engine, else every interface (a remote DOCKER_HOST, or testcontainers' host
    override TC_HOST / TESTCONTAINERS_HOST_OVERRIDE, means clients come from elsewhere)."""
    chosen = os.environ.get(BIND_ENV, "").strip()
    if chosen:
        return chosen
    docker_host = os.environ.get("DOCKER_HOST", "")
    remote = docker_host and not docker_host.startswith("unix://")
    override = os.environ.get("TC_HOST") or os.environ.get("TESTCONTAINERS_HOST_OVERRIDE")
    return "0.0.0.0" if remote or override else "127.0.0.1"  # noqa: S104 - asked for


def _publish(container: Any, host_port: int | None) -> None:
    # testcontainers binds exposed ports on every interface; docker-py takes (address, port)
    # (port None: any free one), which testcontainers' with_bind_ports cannot express.
    for key in (5432, "5432", "5432/tcp"):
        container.ports.pop(key, None)
    container.ports["5432/tcp"] = (publish_address(), host_port)


def _wait_until_accepting(url: URL, password: str) -> None:
    """Poll until the server accepts a connection (crash recovery runs before it does)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        try:
            psycopg.connect(host=url.host, port=url.port, user=url.username, password=password,
                            dbname=url.database, connect_timeout=2).close()
            return
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                raise InfrastructureError(
                    f"restarted PostgreSQL container not ready after {READY_TIMEOUT_S:.0f}s: "
                    f"{first_line(exc)[:300]}") from None
            time.sleep(0.05)


class ContainerProvider(Provider):
    """A throwaway PostgreSQL container with its data directory on tmpfs (unless persistent)."""

    name = "container"
    summary = ("testcontainers `PostgresContainer`, image `CHECKER_PG_IMAGE` (default "
               f"`{DEFAULT_IMAGE}`), data on tmpfs, published on 127.0.0.1 (`{BIND_ENV}`)")
    cleanup = ("a detached reaper process removes the container; containers labelled with a "
               "dead owner are swept at the next start (Ryuk is not needed)")
    capabilities = frozenset({Capability.CRASH, Capability.PAUSE, Capability.OWNS_SERVER})
    auto_rank = 1

    def __init__(self, *, keep: bool = False, image: str | None = None,
                 options: dict[str, str] | None = None, persistent: bool = False) -> None:
        super().__init__(keep=keep, options=options)
        self.image = image or image_name()
        self.persistent = persistent
        self.container: Any = None
        self._reaper: Reaper | None = None
        self._password = ""

    @classmethod
    def usable(cls, dsn: str | None) -> bool:
        """A Docker engine answers and the image is present or can be pulled."""
        if dsn:
            return False
        if container_usable():
            return True
        if docker_answers():
            log.warning("auto: Docker answers but image %s cannot be had; not using a "
                        "container (set CHECKER_PG_IMAGE to use one)", image_name())
        return False

    @classmethod
    def kept_servers(cls) -> list[KeptServer]:
        """Running containers labelled kept (none when no Docker engine answers)."""
        try:
            client = docker_client(timeout=3)
        except InfrastructureError:
            return []
        found = []
        try:
            sizes = {c["Id"]: c.get("SizeRw")
                     for c in client.api.containers(filters={"label": KEPT_LABEL}, size=True)}
            for container in client.containers.list(filters={"label": KEPT_LABEL}):
                env = dict(item.partition("=")[::2]
                           for item in container.attrs["Config"].get("Env") or [])
                ports = container.ports.get("5432/tcp") or []
                if not ports:
                    continue
                url = URL.create("postgresql+psycopg", username=env.get("POSTGRES_USER"),
                                 password=env.get("POSTGRES_PASSWORD"), host="127.0.0.1",
                                 port=int(ports[0]["HostPort"]), database="postgres")
                found.append(KeptServer(container.short_id, cls.name, url,
                                        f"{ports[0]['HostIp'] or '127.0.0.1'}:{url.port}",
                                        float(container.labels.get(KEPT_LABEL) or 0),
                                        sizes.get(container.id),
                                        partial(_remove, container.id)))
        finally:
            client.close()
        return found

    def prepare(self, needs: frozenset[Capability]) -> None:
        """A crash must keep the data and the host port: persistent storage then."""
        if Capability.CRASH in needs:
            self.persistent = True

    def start(self) -> Server:
        """Check Docker and the image, start the container, wait for `psql` to answer inside."""
        from testcontainers.community.postgres import PostgresContainer

        client = docker_client()
        sweep_stale_containers(client)
        ensure_image(client, self.image)
        self._password = password = secrets.token_urlsafe(18)
        command = "postgres " + " ".join(f"-c {k}={v}" for k, v in self.options.items())
        labels = ({KEPT_LABEL: f"{time.time():.0f}"} if self.keep
                  else {OWNER_LABEL: Owner.me().tag()})
        container = PostgresContainer(self.image, username=USERNAME, password=password,
                                      dbname="postgres", driver="psycopg", labels=labels,
                                      shm_size="512m")
        container.with_command(command)
        # A fixed host port survives `docker start`; Docker gives an ephemeral one anew.
        _publish(container, free_port() if self.persistent else None)
        if not self.persistent:
            container.with_tmpfs_mount(DATA_DIR)
        self.container = container
        try:
            container.start()
        except Exception as exc:
            raise InfrastructureError(
                f"PostgreSQL container from {self.image} did not start: {first_line(exc)[:300]}"
                f"{self._log_tail()}"
            ) from None
        container_id = container.get_container_id()
        if not self.keep:
            self._reaper = Reaper([{"kind": "docker_rm", "container": container_id}])
        return self._server()

    def crash(self) -> None:
        """Crash the server: `docker kill` (SIGKILL to the postmaster, PID 1 of the container).

        Every PostgreSQL process dies at once with nothing flushed beyond what each commit
        already wrote; the container and (when persistent) its data directory stay.
        """
        wrapped = self._container().get_wrapped_container()
        wrapped.kill()
        wrapped.wait(timeout=30)

    def restart(self) -> Server:
        """`docker start` the killed container; PostgreSQL runs crash recovery on its data.

        Only a persistent container has data to recover (a tmpfs would come back empty); it
        publishes a fixed host port, so the URL stays the same and clients can reconnect.
        """
        container = self._container()
        if not self.persistent:
            raise InfrastructureError("a container with its data on tmpfs loses it on restart: "
                                      "start the provider with persistent=True")
        container.get_wrapped_container().start()
        server = self._server()
        _wait_until_accepting(server.url, self._password)
        return server

    def pause(self) -> str:
        """`docker pause` (the cgroup freezer: every process in the container)."""
        self._container().get_wrapped_container().pause()
        return "docker pause"

    def resume(self) -> None:
        """`docker unpause`."""
        self._container().get_wrapped_container().unpause()

    def server_log(self) -> str:
        """The container's output (PostgreSQL logs to it)."""
        if self.container is None:
            return ""
        out, err = self.container.get_logs()
        return bytes(out + err).decode(errors="replace")

    def _container(self) -> Any:
        if self.container is None:
            raise InfrastructureError("the container was never started")
        return self.container

    def _server(self) -> Server:
        container_id = self.container.get_container_id()
        url = URL.create("postgresql+psycopg", username=USERNAME, password=self._password,
                         host=_published_host(self.container),
                         port=int(self.container.get_exposed_port(5432)), database="postgres")
        return Server(url=url, provider=self.name, stop_hint=f"docker rm -f {container_id[:12]}")

    def stop(self) -> None:
        """Remove the container (and its anonymous volumes)."""
        if self.container is not None:
            # Already gone is fine; the reaper and the sweeper cover what is left.
            with contextlib.suppress(Exception):
                self.container.stop()
            self.container = None
        if self._reaper is not None:
            self._reaper.release()
            self._reaper = None

    def _log_tail(self) -> str:
        try:
            out, err = self.container.get_logs()
        except Exception:
            return ""
        lines = (out + err).decode(errors="replace").strip().splitlines()
        return (" | log: " + " | ".join(lines[-3:])) if lines else ""


PROVIDER = ContainerProvider
