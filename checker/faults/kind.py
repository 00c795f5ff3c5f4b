"""What a fault kind is: its name, its options, what it needs of the server, and what it does.

A kind is either periodic (injected every `every` seconds while the load runs: `inject`) or
standing (in force for the whole load: `start` before the users connect, `stop` when the load
stops). Each kind lives in its own module of `checker.faults.kinds`; the spec parser, the
injector, the CLI help and the README table all come from that registry.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import psycopg

from checker.durations import parse_duration
from checker.errors import UsageError
from checker.provision.base import Capability, Provider


@dataclass(frozen=True)
class Fault:
    """One fault of a spec: its `kind`, its period `every` (s), how long each lasts
    `duration` (s) and a standing fault's `value` (s: the statement timeout)."""

    kind: FaultKind
    every: float = 0.0
    duration: float = 0.0
    value: float = 0.0

    @property
    def name(self) -> str:
        """The kind's name, as in the spec."""
        return self.kind.name

    @property
    def periodic(self) -> bool:
        """Whether the fault repeats during the load."""
        return self.kind.periodic

    def describe(self) -> str:
        """The fault written back as a spec."""
        return self.kind.describe(self)


@dataclass(frozen=True)
class FaultTarget:
    """What a fault acts on: the run's database (`url`, a superuser's libpq URL) and the
    provider of its server."""

    url: str
    provider: Provider

    def connect(self, timeout: int) -> psycopg.Connection[Any]:
        """An autocommit connection of the injector's own, exempt from any statement timeout a
        fault may have set on the run's database."""
        return psycopg.connect(self.url, connect_timeout=timeout, autocommit=True,
                               options="-c statement_timeout=0")


class FaultKind(ABC):
    """A kind of fault. Subclass `PeriodicFault` or `StandingFault`; a module of
    `checker.faults.kinds` registers one by exporting `FAULT_KIND = TheKind()`."""

    name: ClassVar[str]
    summary: ClassVar[str]
    """What it does, in one line (help and README)."""
    example: ClassVar[str]
    """A spec of this kind, e.g. `crash:every=20s`."""
    needs: ClassVar[frozenset[Capability]] = frozenset()
    """What the provider must be able to do for this kind."""
    periodic: ClassVar[bool]

    @abstractmethod
    def parse(self, options: str, spec: str) -> Fault:
        """The fault from the text after `NAME:`; UsageError naming `spec` when malformed."""

    @abstractmethod
    def describe(self, fault: Fault) -> str:
        """`fault` written back as a spec."""

    def start(self, fault: Fault, target: FaultTarget) -> None:  # noqa: B027 - optional hook
        """Before the users start (standing faults)."""

    def stop(self, fault: Fault, target: FaultTarget) -> None:  # noqa: B027 - optional hook
        """When the load stops (standing faults): undo `start`."""

    def inject(self, fault: Fault, target: FaultTarget) -> str:
        """Inject the fault once (periodic faults); a line of detail."""
        raise NotImplementedError(f"{self.name} is not periodic")

    def __repr__(self) -> str:
        return f"<fault kind {self.name}>"


class PeriodicFault(FaultKind):
    """Injected every `every` seconds, first one period after the load starts. `options`
    names its `KEY=DURATION` options (all required): `every`, and `for` (how long it lasts)."""

    periodic = True
    options: ClassVar[tuple[str, ...]] = ("every",)

    def parse(self, options: str, spec: str) -> Fault:
        """`every=D[,for=D]` as `options` says."""
        values: dict[str, float] = {}
        for item in filter(None, (i.strip() for i in options.split(","))):
            key, eq, value = item.partition("=")
            key = key.strip().lower()
            if not eq or key not in self.options or key in values:
                raise UsageError(f"bad --faults {spec!r}: {self.name} takes "
                                 f"{', '.join(sorted(self.options))}=DURATION, not {item!r}")
            values[key] = duration(value.strip(), f"{self.name} {key}", spec)
        for key in sorted(self.options):
            if key not in values:
                raise UsageError(f"bad --faults {spec!r}: {self.name} needs {key}=DURATION")
        fault = Fault(self, every=values["every"], duration=values.get("for", 0.0))
        self.validate(fault, spec)
        return fault

    def validate(self, fault: Fault, spec: str) -> None:
        """Refuse option values that do not go together (UsageError)."""

    def describe(self, fault: Fault) -> str:
        """`NAME:every=Ds[,for=Ds]`."""
        extra = f",for={fault.duration:g}s" if "for" in self.options else ""
        return f"{self.name}:every={fault.every:g}s{extra}"

    @abstractmethod
    def inject(self, fault: Fault, target: FaultTarget) -> str:
        """Inject the fault once; a line of detail."""


class StandingFault(FaultKind):
    """In force for the whole load; its one option is a bare duration (`NAME:200ms`)."""

    periodic = False

    def parse(self, options: str, spec: str) -> Fault:
        """A positive duration."""
        return Fault(self, value=duration(options.strip(), self.name, spec))

    def describe(self, fault: Fault) -> str:
        """`NAME:Nms`."""
        return f"{self.name}:{fault.value * 1000:g}ms"

    @abstractmethod
    def start(self, fault: Fault, target: FaultTarget) -> None:
        """Put the fault in force."""

    @abstractmethod
    def stop(self, fault: Fault, target: FaultTarget) -> None:
        """Undo `start`."""


def duration(value: str, what: str, spec: str) -> float:
    """Seconds from `5s`, `1.5m`, `200ms`; UsageError naming `spec` for anything else."""
    if not value:
        raise UsageError(f"bad --faults {spec!r}: {what} needs a duration (e.g. 5s, 200ms)")
    millis = re.fullmatch(r"(\d+(?:\.\d+)?)ms", value.lower())
    try:
        seconds = float(millis.group(1)) / 1000 if millis else parse_duration(value, what)
    except UsageError:
        seconds = -1.0
    if seconds <= 0:
        raise UsageError(f"bad --faults {spec!r}: {what} {value!r} is not a positive duration "
                         "(e.g. 5s, 1.5m, 200ms)")
    return seconds
