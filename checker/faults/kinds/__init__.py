"""The fault kinds, one per module: each module here that exports `FAULT_KIND` (a
`checker.faults.kind.FaultKind`) is one kind `--faults` accepts."""

from __future__ import annotations

import importlib
import pkgutil

from checker.faults.kind import FaultKind

__all__ = ["FAULT_KINDS"]


def _registered() -> dict[str, FaultKind]:
    found: list[FaultKind] = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if (kind := getattr(module, "FAULT_KIND", None)) is not None:
            found.append(kind)
    return {kind.name: kind for kind in sorted(found, key=lambda k: k.name)}


FAULT_KINDS = _registered()
"""Every fault kind by name, in name order."""
