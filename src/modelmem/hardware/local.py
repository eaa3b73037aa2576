"""This machine's accelerators: NVIDIA GPUs through nvidia-smi (or torch.cuda), Apple
silicon through sysctl.

Detection runs commands, so it lives here, apart from the pure fit and plan code; the
parsers take the commands' text, so they are tested on recorded output. ``detect`` takes
the command runner and the torch probe as arguments, so a test can say "no GPU" without
patching anything. When nothing is found, :class:`NoLocalDeviceError` says what was tried.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from modelmem.errors import ModelMemError, SourceError
from modelmem.hardware.catalogue import Accelerator, find_device

__all__ = [
    "LocalDevice",
    "NoLocalDeviceError",
    "apple_gpu_share",
    "detect",
    "parse_nvidia_smi",
    "parse_sysctl",
]

MIB = 2**20
GIB = 2**30
NVIDIA_SMI_QUERY = (
    "nvidia-smi",
    "--query-gpu=index,name,memory.total,memory.free",
    "--format=csv,noheader,nounits",
)
SYSCTL_QUERY = ("sysctl", "hw.memsize", "machdep.cpu.brand_string", "iogpu.wired_limit_mb")
_TIMEOUT_S = 10

Runner = Callable[[Sequence[str]], "str | None"]
TorchProbe = Callable[[], "list[tuple[str, int, int]] | None"]


class NoLocalDeviceError(ModelMemError):
    """No accelerator was found on this machine."""

    def __init__(self, tried: Sequence[str]) -> None:
        self.tried = tuple(tried)
        super().__init__(
            "device='local': no accelerator found on this machine (tried "
            + "; ".join(self.tried)
            + "); name a catalogue device instead (see `modelmem devices`)"
        )


@dataclass(frozen=True, slots=True)
class LocalDevice:
    """An accelerator found here; ``budget_bytes`` is what a new job can count on."""

    index: int
    name: str
    memory_bytes: int
    free_bytes: int | None  # free now, where the driver says
    detected_by: str  # "nvidia-smi" | "torch.cuda" | "sysctl"
    catalogue: Accelerator | None  # the matching catalogue row, if any
    gpu_limit_bytes: int | None = None  # Apple: what the GPU may wire

    @property
    def budget_bytes(self) -> int:
        if self.gpu_limit_bytes is not None:
            return self.gpu_limit_bytes
        return self.free_bytes if self.free_bytes is not None else self.memory_bytes

    @property
    def budget_how(self) -> str:
        if self.gpu_limit_bytes is not None:
            return "the GPU's wired-memory limit of the unified memory"
        if self.free_bytes is not None:
            return f"memory free now ({self.detected_by})"
        return f"total memory ({self.detected_by}; free memory unknown)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "memory_bytes": self.memory_bytes,
            "free_bytes": self.free_bytes,
            "gpu_limit_bytes": self.gpu_limit_bytes,
            "budget_bytes": self.budget_bytes,
            "budget_how": self.budget_how,
            "detected_by": self.detected_by,
            "catalogue": self.catalogue.name if self.catalogue else None,
        }


_VENDOR_WORDS = {"nvidia", "geforce", "tesla", "quadro", "amd", "instinct", "apple"}


def match_catalogue(name: str) -> Accelerator | None:
    """The catalogue row for a driver's device name (``NVIDIA GeForce RTX 4090``), if any."""
    words = [w for w in re.split(r"[\s_]+", name.strip().lower()) if w and w not in _VENDOR_WORDS]
    for end in range(len(words), 0, -1):
        found = find_device("".join(words[:end]))
        if found is not None:
            return found
    return None


def parse_nvidia_smi(text: str) -> list[LocalDevice]:
    """Rows of ``nvidia-smi --query-gpu=index,name,memory.total,memory.free
    --format=csv,noheader,nounits`` (memory in MiB)."""
    devices: list[LocalDevice] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 4:
            raise SourceError("nvidia-smi", f"line {number}: expected 4 fields, got {line!r}")
        index, name, total, free = parts
        try:
            total_mib = int(total)
            free_mib = None if free in ("[N/A]", "N/A") else int(free)
            idx = int(index)
        except ValueError:
            raise SourceError("nvidia-smi", f"line {number}: not numbers: {line!r}") from None
        if total_mib <= 0 or (free_mib is not None and not 0 <= free_mib <= total_mib):
            raise SourceError("nvidia-smi", f"line {number}: impossible memory: {line!r}")
        devices.append(
            LocalDevice(
                index=idx,
                name=name,
                memory_bytes=total_mib * MIB,
                free_bytes=None if free_mib is None else free_mib * MIB,
                detected_by="nvidia-smi",
                catalogue=match_catalogue(name),
            )
        )
    return devices


def apple_gpu_share(memory_bytes: int) -> Fraction:
    """macOS's default share of unified memory the GPU may wire: 3/4 from 36 GiB, else 2/3
    (Metal's recommendedMaxWorkingSetSize with iogpu.wired_limit_mb = 0)."""
    return Fraction(3, 4) if memory_bytes >= 36 * GIB else Fraction(2, 3)


def parse_sysctl(text: str) -> LocalDevice | None:
    """``sysctl hw.memsize machdep.cpu.brand_string iogpu.wired_limit_mb`` output; None
    when the machine is not Apple silicon."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            values[key.strip()] = value.strip()
    brand = values.get("machdep.cpu.brand_string", "")
    if not brand.startswith("Apple"):
        return None
    try:
        memory = int(values["hw.memsize"])
    except (KeyError, ValueError):
        raise SourceError("sysctl", f"hw.memsize missing or not a number in {text!r}") from None
    if memory <= 0:
        raise SourceError("sysctl", f"hw.memsize={memory}: impossible")
    limit_mb = values.get("iogpu.wired_limit_mb", "0")
    limit = int(limit_mb) * MIB if limit_mb.isdigit() and int(limit_mb) > 0 else None
    if limit is None:
        share = apple_gpu_share(memory)
        limit = memory * share.numerator // share.denominator
    chip = brand.removeprefix("Apple").strip()
    row = find_device(f"{chip}-{memory // GIB}GB")
    return LocalDevice(
        index=0,
        name=f"{brand} ({memory // GIB} GB unified)",
        memory_bytes=memory,
        free_bytes=None,
        detected_by="sysctl",
        catalogue=row,
        gpu_limit_bytes=min(limit, memory),
    )


def _run(command: Sequence[str]) -> str | None:
    """stdout of ``command``, or None when it is missing or fails."""
    if shutil.which(command[0]) is None:
        return None
    try:
        done = subprocess.run(
            list(command), capture_output=True, text=True, timeout=_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _torch_cuda() -> list[tuple[str, int, int]] | None:
    """(name, total, free) per CUDA/ROCm device through torch, or None without torch."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return None
    import torch

    if not torch.cuda.is_available():
        return []
    found = []
    for i in range(torch.cuda.device_count()):
        free, total = torch.cuda.mem_get_info(i)
        found.append((torch.cuda.get_device_name(i), int(total), int(free)))
    return found


def detect(run: Runner = _run, torch_probe: TorchProbe = _torch_cuda) -> list[LocalDevice]:
    """Every accelerator found here; raises :class:`NoLocalDeviceError` when none is."""
    tried: list[str] = []
    smi = run(NVIDIA_SMI_QUERY)
    tried.append("nvidia-smi: " + ("no GPU listed" if smi is not None else "not available"))
    if smi is not None:
        devices = parse_nvidia_smi(smi)
        if devices:
            return devices
    cuda = torch_probe()
    tried.append(
        "torch.cuda: " + ("not installed" if cuda is None else "no device" if not cuda else "found")
    )
    if cuda:
        return [
            LocalDevice(
                index=i,
                name=name,
                memory_bytes=total,
                free_bytes=free,
                detected_by="torch.cuda",
                catalogue=match_catalogue(name),
            )
            for i, (name, total, free) in enumerate(cuda)
        ]
    sysctl = run(SYSCTL_QUERY)
    apple = parse_sysctl(sysctl) if sysctl is not None else None
    tried.append(
        "sysctl: "
        + ("not available" if sysctl is None else "not Apple silicon" if apple is None else "")
    )
    if apple is not None:
        return [apple]
    raise NoLocalDeviceError(tried)
