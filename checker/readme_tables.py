"""The README's tables that come from registries (fault kinds, providers), between markers
`<!-- table:NAME -->` and `<!-- /table:NAME -->`. A test holds the README to them;
`python -m checker.readme_tables [README.md]` rewrites them in place."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

from checker.faults.spec import faults_table
from checker.provision import providers_table

TABLES: dict[str, Callable[[], str]] = {"fault-kinds": faults_table,
                                        "providers": providers_table}


def render(text: str) -> str:
    """`text` with every marked table replaced by the registry's; ValueError for a table
    whose markers are missing."""
    for name, table in TABLES.items():
        pattern = re.compile(rf"(<!-- table:{name} -->\n)(?:.*?\n)?(<!-- /table:{name} -->)", re.S)
        match = pattern.search(text)
        if match is None:
            raise ValueError(f"no <!-- table:{name} --> ... <!-- /table:{name} --> markers")
        text = text[:match.end(1)] + table() + "\n" + text[match.start(2):]
    return text


if __name__ == "__main__":
    readme = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    readme.write_text(render(readme.read_text()))
