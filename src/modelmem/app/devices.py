"""The device a fit or plan is about: a catalogue row, or this machine's accelerator."""

from __future__ import annotations

from typing import Any

from modelmem.errors import InvalidValueError

__all__ = ["Target"]


class Target:
    """``count`` devices named ``name`` (a catalogue device or alias, or ``local``)."""

    def __init__(self, name: str, count: int) -> None:
        from modelmem.hardware.catalogue import get_device
        from modelmem.hardware.fit import check_count

        check_count(count)
        self.count = count
        self.notes: list[str] = []
        self.device_bytes: int | None = None
        self.accelerator: Any = None
        if name.strip().lower() == "local":
            from modelmem.hardware.local import detect

            found = detect()
            if count > len(found):
                raise InvalidValueError(
                    "count", count, f"only {len(found)} accelerator(s) found on this machine"
                )
            used = found[:count]
            self.accelerator = used[0].catalogue
            self.name = f"local:{used[0].name}"
            self.device_bytes = min(d.budget_bytes for d in used)
            self.notes.append(f"this machine: {used[0].name}, budget = {used[0].budget_how}")
        else:
            self.accelerator = get_device(name)
            self.name = self.accelerator.name

    @property
    def memory_bytes(self) -> int:
        """The memory of one device a job can count on."""
        if self.device_bytes is not None:
            return self.device_bytes
        return int(self.accelerator.budget_bytes)

    def verdict(self, breakdown: Any, reserve: Any) -> Any:
        from modelmem.hardware.fit import check_fit, fit_bytes

        if self.accelerator is not None and self.device_bytes is None:
            return check_fit(breakdown, self.accelerator, self.count, reserve)
        return fit_bytes(
            breakdown, self.memory_bytes, device=self.name, count=self.count, reserve=reserve
        )
