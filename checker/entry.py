"""The `checker` console script: gevent's monkey-patching first, for the commands that drive load.

psycopg 3 picks its wait function when it is imported: after gevent has patched `select` it
cooperates with greenlets, before that it silently blocks the whole loop (`wait_c`). The CLI
imports psycopg at import time, so `run` and `explore` patch here, before `checker.cli` is
imported; every other command stays unpatched. `checker.load.runner` refuses to start otherwise.
"""

from __future__ import annotations

import sys
from typing import NoReturn

LOAD_COMMANDS = frozenset({"run", "explore"})


def needs_gevent(argv: list[str]) -> bool:
    """Whether the command line (without the program name) asks for a load command."""
    return next((arg for arg in argv if not arg.startswith("-")), None) in LOAD_COMMANDS


def main() -> NoReturn:
    """Patch for load commands, then hand over to the Typer application. A Ctrl-C before the
    command has set anything up (while importing) ends it without a traceback."""
    try:
        if needs_gevent(sys.argv[1:]):
            from gevent import monkey

            monkey.patch_all()
        from checker.cli import main as cli_main
    except KeyboardInterrupt:
        sys.stderr.write("interrupted before the command started: nothing was done\n")
        sys.exit(130)
    cli_main()
