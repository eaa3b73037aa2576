"""MemoryBreakdown: the one result type of every memory estimate and measurement.

A breakdown is a list of named components in exact bytes, each with a one-line
explanation of how it was computed. The CLI, the web app and plots all render this
object; its JSON form carries the stable keys ``total_bytes`` and ``components``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelmem.errors import InvalidValueError


@dataclass(frozen=True, slots=True)
class MemoryComponent:
    """One line of a breakdown: ``bytes`` on each device, and the formula behind it."""

    name: str
    bytes: int
    how: str

    def __post_init__(self) -> None:
        if isinstance(self.bytes, bool) or not isinstance(self.bytes, int) or self.bytes < 0:
            raise InvalidValueError(
                f"component {self.name}", self.bytes, "bytes must be an int >= 0"
            )

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "bytes": self.bytes, "how": self.how}


@dataclass(frozen=True, slots=True)
class MemoryBreakdown:
    """Named components whose sum is the peak per device."""

    components: tuple[MemoryComponent, ...]
    devices: int = 1
    notes: tuple[str, ...] = field(default=())

    @property
    def total_bytes(self) -> int:
        return sum(c.bytes for c in self.components)

    def get(self, name: str) -> MemoryComponent:
        for c in self.components:
            if c.name == name:
                return c
        raise KeyError(name)

    def dominant(self) -> MemoryComponent:
        return max(self.components, key=lambda c: c.bytes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "total_bytes": self.total_bytes,
            "devices": self.devices,
            "components": [c.to_dict() for c in self.components],
            "notes": list(self.notes),
        }
