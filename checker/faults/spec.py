"""`--faults SPEC`: e.g. `kill-backends:every=5s;crash:every=20s,pause:every=15s,for=2s`.

Faults are separated by `;` or by `,` before a new fault name; each is `KIND[:OPTIONS]`, whose
options its kind defines (`checker.faults.kinds`). No Locust here: the CLI parses before
anything starts.
"""

from __future__ import annotations

import re
from functools import reduce

from checker.errors import UsageError
from checker.faults.kind import Fault
from checker.faults.kinds import FAULT_KINDS
from checker.provision import PROVIDERS, Capability, Provider, providers_with

__all__ = ["Fault", "faults_help", "faults_table", "parse_faults", "prepare_provider"]

USAGE = ("KIND[:OPTIONS] separated by ';' (kinds: "
         + ", ".join(kind.example for kind in FAULT_KINDS.values()) + ")")
_SPLIT = re.compile(r"[;,]\s*(?=(?:" + "|".join(map(re.escape, FAULT_KINDS)) + r")\b)")


def parse_faults(text: str) -> tuple[Fault, ...]:
    """The faults of a spec; UsageError (one line) for anything malformed."""
    parts = [chunk.strip() for chunk in _SPLIT.split(text.strip()) if chunk.strip()]
    if not parts:
        raise UsageError(f"bad --faults {text!r}: empty; expected {USAGE}")
    faults = tuple(_one(part, text) for part in parts)
    names = [f.name for f in faults]
    if len(set(names)) != len(names):
        raise UsageError(f"bad --faults {text!r}: a kind appears twice")
    return faults


def _one(part: str, text: str) -> Fault:
    name, _, options = part.partition(":")
    kind = FAULT_KINDS.get(name.strip().lower())
    if kind is None:
        raise UsageError(f"bad --faults {text!r}: unknown fault {name.strip().lower()!r}; "
                         f"expected {USAGE}")
    return kind.parse(options, text)


def needs(faults: tuple[Fault, ...]) -> frozenset[Capability]:
    """What the faults need of the provider, together."""
    return reduce(frozenset.union, (f.kind.needs for f in faults), frozenset())


def prepare_provider(provider: Provider, faults: tuple[Fault, ...]) -> None:
    """Have `provider` (not started yet) arrange what the faults need; UsageError (exit 2)
    naming the faults and the providers that would do when it cannot."""
    wanted = needs(faults)
    missing = wanted - provider.capabilities
    if missing:
        kinds = ", ".join(f.name for f in faults if f.kind.needs & missing)
        able = " or ".join(f"--db {name}" for name in providers_with(wanted))
        raise UsageError(f"--faults {kinds} needs a server the checker can "
                         f"{' and '.join(sorted(c.value for c in missing))}, which --db "
                         f"{provider.name} does not give: use {able}")
    provider.prepare(wanted)


def faults_help() -> str:
    """The `--faults` help: every kind's example, and which providers cannot take some."""
    refused: dict[tuple[str, ...], list[str]] = {}
    for kind in FAULT_KINDS.values():
        unable = tuple(name for name in PROVIDERS if name not in providers_with(kind.needs))
        if unable:
            refused.setdefault(unable, []).append(kind.name)
    limits = "; ".join(f"{', '.join(kinds)}: not with {' or '.join(f'--db {n}' for n in unable)}"
                       for unable, kinds in refused.items())
    examples = "; ".join(kind.example for kind in FAULT_KINDS.values())
    return f"Faults injected during the load, e.g. '{examples}'" + (f" ({limits})." if limits
                                                                   else ".")


def faults_table() -> str:
    """The README's table of fault kinds (Markdown), from the registry."""
    rows = ["| kind | example | what it does | providers |", "|---|---|---|---|"]
    for kind in FAULT_KINDS.values():
        able = ", ".join(f"`{name}`" for name in providers_with(kind.needs))
        rows.append(f"| `{kind.name}` | `{kind.example}` | {kind.summary} | {able} |")
    return "\n".join(rows)
