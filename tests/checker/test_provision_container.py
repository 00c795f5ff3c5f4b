"""The container provider starts, serves and cleans up (also when its owner is killed), sweeps
containers of dead owners, and gives one-line errors when Docker or the image is missing."""

from __future__ import annotations

import os
import signal

import docker
import psycopg
import pytest

from checker.errors import InfrastructureError
from checker.provision.container import (
    OWNER_LABEL,
    ContainerProvider,
    docker_client,
    image_name,
    publish_address,
    sweep_stale_containers,
)
from taskhub.db import libpq_url
from tests.support import answers, eventually, needs_docker, provider_in_child


def _exists(container_id: str) -> bool:
    try:
        docker.from_env().containers.get(container_id)
    except docker.errors.NotFound:
        return False
    return True


@needs_docker
def test_starts_serves_and_removes_its_container() -> None:
    provider = ContainerProvider()
    with provider as server:
        container_id = provider.container.get_container_id()
        assert server.url.host == "127.0.0.1"
        bound = docker.from_env().containers.get(container_id).attrs["HostConfig"]
        assert [b["HostIp"] for b in bound["PortBindings"]["5432/tcp"]] == ["127.0.0.1"]
        with psycopg.connect(libpq_url(server.url)) as conn:
            assert conn.execute("SELECT current_setting('fsync')").fetchone() == ("off",)
            assert conn.execute("SELECT current_setting('max_connections')").fetchone() == ("400",)
    assert not _exists(container_id)


@needs_docker
def test_cleans_up_after_an_exception() -> None:
    provider = ContainerProvider()
    with pytest.raises(RuntimeError, match="boom"), provider:
        container_id = provider.container.get_container_id()
        raise RuntimeError("boom")
    assert not _exists(container_id)


@needs_docker
def test_a_killed_owner_leaves_no_container() -> None:
    with provider_in_child("container") as (child, info):
        assert answers(info["url"])
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        assert eventually(lambda: not _exists(info["container"]), timeout=30)


@needs_docker
def test_containers_of_dead_owners_are_swept() -> None:
    client = docker_client()
    host = os.uname().nodename
    dead = client.containers.create(image_name(), labels={OWNER_LABEL: f"{host}:{2**22 + 7}"})
    mine = client.containers.create(image_name(), labels={OWNER_LABEL: f"{host}:{os.getpid()}"})
    try:
        sweep_stale_containers(client)  # (another session's sweep may have been first: fine)
        assert not _exists(dead.id) and _exists(mine.id)
    finally:
        mine.remove(force=True)


def test_unreachable_docker_is_a_one_line_infrastructure_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(InfrastructureError, match="Docker engine unreachable") as failure:
        ContainerProvider().__enter__()
    assert failure.value.exit_code == 3
    assert "\n" not in str(failure.value)


@needs_docker
def test_missing_image_is_a_one_line_infrastructure_error() -> None:
    provider = ContainerProvider(image="checker-test/no-such-image:0")
    with pytest.raises(InfrastructureError, match="no-such-image:0 is not available") as failure:
        provider.__enter__()
    assert "\n" not in str(failure.value)


EVERYWHERE = "0.0.0.0"  # noqa: S104 - what the provider must choose here


@pytest.mark.parametrize(("env", "address"), [
    ({}, "127.0.0.1"),
    ({"DOCKER_HOST": "unix:///var/run/docker.sock"}, "127.0.0.1"),
    ({"DOCKER_HOST": "tcp://build-box:2375"}, EVERYWHERE),
    ({"TC_HOST": "build-box"}, EVERYWHERE),
    ({"TESTCONTAINERS_HOST_OVERRIDE": "build-box"}, EVERYWHERE),
    ({"CHECKER_PG_BIND": "10.0.0.5", "DOCKER_HOST": "tcp://x:2375"}, "10.0.0.5"),
])
def test_the_port_is_published_on_loopback_unless_asked_otherwise(
        monkeypatch: pytest.MonkeyPatch, env: dict[str, str], address: str) -> None:
    for name in ("DOCKER_HOST", "TC_HOST", "TESTCONTAINERS_HOST_OVERRIDE", "CHECKER_PG_BIND"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert publish_address() == address
