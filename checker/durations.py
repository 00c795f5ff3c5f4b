"""Durations on the command line: `30s`, `2m`, `1h30m`, `90` (seconds), `1.5m`."""

from __future__ import annotations

import re

from checker.errors import UsageError

_PART = re.compile(r"(\d+(?:\.\d+)?)([hms])")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0}


def parse_duration(text: str, option: str = "--duration") -> float:
    """Seconds; UsageError (one line) for anything else, or for zero."""
    spec = text.strip().lower()
    if re.fullmatch(r"\d+(?:\.\d+)?", spec):
        seconds = float(spec)
    elif spec and _PART.sub("", spec) == "" and re.fullmatch(r"(?:\d+(?:\.\d+)?[hms])+", spec):
        seconds = sum(float(n) * _UNIT[unit] for n, unit in _PART.findall(spec))
    else:
        raise UsageError(f"bad {option} {text!r}: use e.g. 30s, 2m, 1h30m or a number of "
                         "seconds")
    if seconds <= 0:
        raise UsageError(f"bad {option} {text!r}: must be more than zero")
    return seconds
