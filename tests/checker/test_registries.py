"""The registries of fault kinds and providers: every module that exports one is found, each
kind's example parses back to itself, each provider implements exactly what it declares, and
the CLI help and the README are generated from them (a README edited by hand fails here)."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from types import ModuleType

import pytest
from typer.testing import CliRunner

import checker.faults.kinds
import checker.provision
from checker.cli import app
from checker.errors import InfrastructureError, UsageError
from checker.faults.kinds import FAULT_KINDS
from checker.faults.spec import parse_faults, prepare_provider
from checker.provision import KINDS, PROVIDERS, Capability, Provider, select_provider
from checker.provision.container import ContainerProvider
from checker.readme_tables import TABLES, render

README = Path(__file__).resolve().parents[2] / "README.md"
METHODS = {Capability.CRASH: ("crash", "restart"), Capability.PAUSE: ("pause", "resume")}


def _exports(package: ModuleType, name: str) -> set[str]:
    found = set()
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        if hasattr(module, name):
            found.add(getattr(module, name).name)
    return found


def test_every_exporting_module_is_registered() -> None:
    assert _exports(checker.faults.kinds, "FAULT_KIND") == set(FAULT_KINDS)
    assert _exports(checker.provision, "PROVIDER") == set(PROVIDERS)
    assert ("auto", *PROVIDERS) == KINDS
    assert {"kill-backends", "crash", "pause", "statement-timeout"} <= set(FAULT_KINDS)
    assert {"dsn", "container", "embedded"} <= set(PROVIDERS)


@pytest.mark.parametrize("name", sorted(FAULT_KINDS))
def test_each_kind_parses_its_example_back_to_itself(name: str) -> None:
    kind = FAULT_KINDS[name]
    (fault,) = parse_faults(kind.example)
    assert fault.kind is kind and fault.describe() == kind.example
    assert kind.summary and kind.name in kind.example
    assert any(kind.needs <= p.capabilities for p in PROVIDERS.values()), "no provider serves it"


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_each_provider_implements_exactly_what_it_declares(name: str) -> None:
    provider = PROVIDERS[name]
    assert provider.summary and provider.cleanup
    for capability, methods in METHODS.items():
        for method in methods:
            overridden = getattr(provider, method) is not getattr(Provider, method)
            assert overridden == (capability in provider.capabilities), (name, method)


def test_a_provider_refuses_what_it_cannot_do() -> None:
    dsn = select_provider("dsn", "postgresql://u@127.0.0.1:1/x")
    with pytest.raises(InfrastructureError, match="dsn provider cannot crash and restart"):
        dsn.crash()
    with pytest.raises(InfrastructureError, match="cannot pause and resume"):
        dsn.pause()
    with pytest.raises(UsageError, match="--faults crash, pause needs a server the checker can "
                                         "crash and restart and pause and resume"):
        prepare_provider(dsn, parse_faults("crash:every=5s;kill-backends:every=1s;"
                                           "pause:every=2s,for=1s"))
    prepare_provider(dsn, parse_faults("kill-backends:every=1s;statement-timeout:5ms"))


def test_a_crash_fault_makes_a_container_keep_its_data() -> None:
    container = ContainerProvider()
    prepare_provider(container, parse_faults("pause:every=2s,for=1s"))
    assert not container.persistent
    prepare_provider(container, parse_faults("crash:every=5s"))
    assert container.persistent


def test_help_lists_every_kind_profile_and_family() -> None:
    from checker.audit.registry import FAMILIES
    from checker.profiles import PROFILES

    wide = {"COLUMNS": "400", "TERMINAL_WIDTH": "400"}
    run = CliRunner().invoke(app, ["run", "--help"], env=wide)
    assert run.exit_code == 0, run.output
    for kind in FAULT_KINDS.values():
        assert kind.example in run.output
    for profile in PROFILES:
        assert f"{profile} (m=" in run.output
    audit = CliRunner().invoke(app, ["audit", "--help"], env=wide)
    assert ", ".join(FAMILIES) in audit.output


def test_the_readme_tables_are_the_registries() -> None:
    text = README.read_text()
    assert render(text) == text, ("the README's generated tables are stale: run "
                                  "`python -m checker.readme_tables`")
    for name, table in TABLES.items():
        assert f"<!-- table:{name} -->\n{table()}\n<!-- /table:{name} -->" in text


def test_render_refuses_a_readme_without_the_markers() -> None:
    with pytest.raises(ValueError, match="table:fault-kinds"):
        render("# a README\n")
