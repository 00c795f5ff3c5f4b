"""`--faults SPEC`: e.g. `kill-backends:every=5s;crash:every=20s,pause:every=15s,for=2s`.

Faults are separated by `;` or by `,` before a new fault name; each is `KIND[:OPTIONS]` where
OPTIONS are `key=duration` pairs (`every`, `for`), or a bare duration for `statement-timeout`.
No Locust or psycopg here: the CLI parses before anything starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from checker.durations import parse_duration
from checker.errors import UsageError

KINDS = ("kill-backends", "crash", "pause", "statement-timeout")
NEEDS_SERVER = frozenset({"crash", "pause"})
"""Faults that act on the server's processes: not possible on a `--dsn` server."""
USAGE = ("KIND[:every=D[,for=D]] separated by ';' (kinds: kill-backends:every=5s, "
         "crash:every=20s, pause:every=15s,for=2s, statement-timeout:200ms)")
_OPTIONS = {"kill-backends": {"every"}, "crash": {"every"}, "pause": {"every", "for"}}
_SPLIT = re.compile(r"[;,]\s*(?=(?:" + "|".join(map(re.escape, KINDS)) + r")\b)")


@dataclass(frozen=True)
class Fault:
    """One fault: `kind`, its period `every` (s), how long it lasts `duration` (s: pause) and
    `timeout` (s: statement-timeout; applied once for the whole load)."""

    kind: str
    every: float = 0.0
    duration: float = 0.0
    timeout: float = 0.0

    @property
    def periodic(self) -> bool:
        """Whether the fault repeats during the load (all but statement-timeout)."""
        return self.kind != "statement-timeout"

    def describe(self) -> str:
        """The fault written back as a spec."""
        if self.kind == "statement-timeout":
            return f"{self.kind}:{self.timeout * 1000:g}ms"
        extra = f",for={self.duration:g}s" if self.kind == "pause" else ""
        return f"{self.kind}:every={self.every:g}s{extra}"


def parse_faults(text: str) -> tuple[Fault, ...]:
    """The faults of a spec; UsageError (one line) for anything malformed."""
    parts = [chunk.strip() for chunk in _SPLIT.split(text.strip()) if chunk.strip()]
    if not parts:
        raise UsageError(f"bad --faults {text!r}: empty; expected {USAGE}")
    faults = tuple(_one(part, text) for part in parts)
    kinds = [f.kind for f in faults]
    if len(set(kinds)) != len(kinds):
        raise UsageError(f"bad --faults {text!r}: a kind appears twice")
    return faults


def _one(part: str, text: str) -> Fault:
    kind, _, rest = part.partition(":")
    kind = kind.strip().lower()
    if kind not in KINDS:
        raise UsageError(f"bad --faults {text!r}: unknown fault {kind!r}; expected {USAGE}")
    if kind == "statement-timeout":
        return Fault(kind, timeout=_duration(rest.strip(), kind, text))
    options: dict[str, float] = {}
    for item in filter(None, (i.strip() for i in rest.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if not eq or key not in _OPTIONS[kind] or key in options:
            raise UsageError(f"bad --faults {text!r}: {kind} takes "
                             f"{', '.join(sorted(_OPTIONS[kind]))}=DURATION, not {item!r}")
        options[key] = _duration(value.strip(), f"{kind} {key}", text)
    for key in sorted(_OPTIONS[kind]):
        if key not in options:
            raise UsageError(f"bad --faults {text!r}: {kind} needs {key}=DURATION")
    if kind == "pause" and options["for"] >= options["every"]:
        raise UsageError(f"bad --faults {text!r}: pause 'for' must be shorter than 'every'")
    return Fault(kind, every=options["every"], duration=options.get("for", 0.0))


def _duration(value: str, what: str, text: str) -> float:
    if not value:
        raise UsageError(f"bad --faults {text!r}: {what} needs a duration (e.g. 5s, 200ms)")
    millis = re.fullmatch(r"(\d+(?:\.\d+)?)ms", value.lower())
    try:
        seconds = float(millis.group(1)) / 1000 if millis else parse_duration(value, what)
    except UsageError:
        seconds = -1.0
    if seconds <= 0:
        raise UsageError(f"bad --faults {text!r}: {what} {value!r} is not a positive duration "
                         "(e.g. 5s, 1.5m, 200ms)")
    return seconds
