"""The live progress line of a load run: users, ops/s, failures, elapsed (on stderr).

On a terminal it is one line redrawn in place (rich); otherwise (CI, a pipe) a plain line
every few seconds, so logs stay readable.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.text import Text

PLAIN_EVERY = 5.0


@dataclass(frozen=True)
class Tick:
    """What the line shows at one moment."""

    users: int
    ops_per_s: float
    requests: int
    failures: int
    elapsed: float
    duration: float | None

    def render(self) -> Text:
        """`users 20 | 812 ops/s | 12345 ops | 0 failures | 12s / 30s`."""
        total = f" / {self.duration:.0f}s" if self.duration else ""
        failures = Text(f"{self.failures} failures", style="red" if self.failures else "green")
        return Text.assemble(
            f"users {self.users} | {self.ops_per_s:,.0f} ops/s | {self.requests:,} ops | ",
            failures, f" | {self.elapsed:.0f}s{total}")


class Progress:
    """A context manager; call `show(tick)` as often as you like."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True, highlight=False)
        self._live: Live | None = None
        self._last_plain = 0.0

    def __enter__(self) -> Progress:
        if self.console.is_terminal:
            self._live = Live(console=self.console, auto_refresh=False, transient=False)
            self._live.__enter__()
        return self

    def note(self, line: str) -> None:
        """A line of its own, above the progress line."""
        if self._live is not None:
            self._live.console.print(line)
        else:
            self.console.print(line)

    def show(self, tick: Tick) -> None:
        """Redraw (terminal) or print every few seconds (not a terminal)."""
        if self._live is not None:
            self._live.update(tick.render(), refresh=True)
        elif time.monotonic() - self._last_plain >= PLAIN_EVERY:
            self._last_plain = time.monotonic()
            self.console.print(tick.render())

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._live is not None:
            self._live.__exit__(exc_type, exc, tb)
            self._live = None
