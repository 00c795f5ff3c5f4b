"""Helpers any test folder may use (a plain module, not a conftest): skip without Docker, wait
for a condition with a deadline, probe a server, run a provider in a child we can kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from checker.provision.container import container_usable, image_name

OWNER_SCRIPT = """
import json, sys, time
from checker.provision import select_provider
provider = select_provider(sys.argv[1])
server = provider.__enter__()
info = {"url": server.url.render_as_string(hide_password=False),
        "workdir": str(getattr(provider, "workdir", "") or ""),
        "server_pid": getattr(getattr(provider, "process", None), "pid", None),
        "container": (provider.container.get_container_id()
                      if getattr(provider, "container", None) else None)}
print(json.dumps(info), flush=True)
time.sleep(600)
"""


@contextmanager
def provider_in_child(kind: str) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    """Start a provider in a child Python process; yield it and what it started."""
    child = subprocess.Popen([sys.executable, "-c", OWNER_SCRIPT, kind], stdout=subprocess.PIPE,
                             text=True, start_new_session=True)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line, "the child exited before the server was ready"
        yield child, json.loads(line)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()


def eventually(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Poll `predicate` until it holds or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def answers(url: str) -> bool:
    """True when a PostgreSQL server accepts a connection at the SQLAlchemy-style `url`."""
    try:
        psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"),
                        connect_timeout=2).close()
    except psycopg.OperationalError:
        return False
    return True


needs_docker = pytest.mark.skipif(
    not container_usable(),
    reason=f"no Docker engine answers here, or image {image_name()} cannot be had; "
           "CI runs these with a real engine and a local image (.ci/run)",
)
