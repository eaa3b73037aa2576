"""Accelerators: the catalogue (data file), fit verdicts, and this machine's devices."""

from modelmem.hardware.catalogue import (
    KINDS,
    Accelerator,
    all_devices,
    devices_matching,
    find_device,
    get_device,
)
from modelmem.hardware.fit import DEFAULT_RESERVE, FitVerdict, check_fit, fit_budget, fit_bytes

__all__ = [
    "DEFAULT_RESERVE",
    "KINDS",
    "Accelerator",
    "FitVerdict",
    "all_devices",
    "check_fit",
    "devices_matching",
    "find_device",
    "fit_budget",
    "fit_bytes",
    "get_device",
]
