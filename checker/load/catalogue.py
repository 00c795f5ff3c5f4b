"""Which scenarios there are: every module of the `scenarios` package is one, named by its file.

Nothing here imports Locust or a scenario (importing Locust monkey-patches the process):
`checker scenarios` and the CLI's validation read each module's docstring from its source.
"""

from __future__ import annotations

import ast
from pathlib import Path

import scenarios
from checker.errors import UsageError

HERE = Path(scenarios.__file__).parent


def catalogue() -> dict[str, str]:
    """Scenario name -> the first line of its module docstring, in name order."""
    found = {}
    for path in sorted(HERE.glob("*.py")):
        if path.stem == "__init__":
            continue
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        found[path.stem] = doc.strip().splitlines()[0] if doc.strip() else ""
    return found


def path_of(name: str) -> Path:
    """The locustfile of a scenario."""
    return HERE / f"{name}.py"


def require(name: str) -> str:
    """`name` when it is a scenario; UsageError naming the choices otherwise."""
    known = catalogue()
    if name not in known:
        raise UsageError(f"unknown scenario {name!r}: choose one of {', '.join(known)}")
    return name
