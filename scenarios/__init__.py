"""Locust scenarios driving taskhub: one module per scenario (see `catalogue`).

Importing this package imports neither Locust nor gevent: `checker scenarios` reads each
module's docstring without importing it (importing Locust monkey-patches the process).
"""

from __future__ import annotations

import ast
from pathlib import Path

HERE = Path(__file__).parent
SUPPORT = frozenset({"__init__", "client", "common", "distributed", "harness", "probes",
                     "profile", "standalone"})


def catalogue() -> dict[str, str]:
    """Scenario name -> the first line of its module docstring, in name order."""
    found = {}
    for path in sorted(HERE.glob("*.py")):
        if path.stem in SUPPORT:
            continue
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        found[path.stem] = doc.strip().splitlines()[0] if doc.strip() else ""
    return found


def path_of(name: str) -> Path:
    """The locustfile of a scenario."""
    return HERE / f"{name}.py"
