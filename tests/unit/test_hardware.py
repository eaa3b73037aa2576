"""The accelerator catalogue and local detection (recorded command output, no GPU)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from importlib import resources

import pytest

from modelmem.errors import InvalidValueError, SourceError, UnknownNameError
from modelmem.hardware.catalogue import (
    KINDS,
    Accelerator,
    all_devices,
    devices_matching,
    get_device,
)
from modelmem.hardware.local import (
    NVIDIA_SMI_QUERY,
    SYSCTL_QUERY,
    NoLocalDeviceError,
    detect,
    parse_nvidia_smi,
    parse_sysctl,
)

GIB = 2**30
MIB = 2**20


def test_catalogue_has_at_least_80_rows_each_with_a_source() -> None:
    devices = all_devices()
    assert len(devices) >= 80
    for d in devices:
        assert isinstance(d, Accelerator)
        assert d.source.strip(), d.name
        assert d.kind in KINDS
        for value in (d.memory_bytes, d.bandwidth_bytes_per_s):
            assert isinstance(value, int) and not isinstance(value, bool) and value > 0
        for peak in (d.bf16_flops, d.fp16_flops, d.fp8_flops):
            assert peak is None or (isinstance(peak, int) and peak > 0)
        # a device without any 16-bit matrix peak says why
        assert d.matmul_flops is not None or d.notes, d.name
        if d.usable_memory_bytes is not None:
            assert 0 < d.usable_memory_bytes <= d.memory_bytes
            assert d.usable_source


def test_every_raw_row_names_a_source() -> None:
    text = (resources.files("modelmem") / "data/devices.json").read_text(encoding="utf-8")
    rows = json.loads(text)["devices"]
    assert all(isinstance(r["source"], str) and len(r["source"]) > 10 for r in rows)
    assert len({r["name"] for r in rows}) == len(rows)


def test_names_and_aliases_are_unique_ignoring_case_and_separators() -> None:
    seen: dict[str, str] = {}
    for d in all_devices():
        for name in (d.name, *d.aliases):
            key = re.sub(r"[\s_\-]+", "", name.lower())
            assert seen.setdefault(key, d.name) == d.name, (name, seen[key], d.name)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("H100-80GB", "H100-SXM"),
        ("h100", "H100-SXM"),
        ("rtx4090", "RTX4090"),
        ("RTX 4090", "RTX4090"),
        ("a100", "A100-80GB"),
        ("MI300X", "MI300X"),
        ("tpu-v5e", "TPU-v5e"),
        ("m2-ultra", "M2-Ultra-192GB"),
    ],
)
def test_get_device_is_case_insensitive_with_aliases(name: str, expected: str) -> None:
    assert get_device(name).name == expected


def test_unknown_device_names_the_field() -> None:
    with pytest.raises(UnknownNameError) as info:
        get_device("h1000")
    assert info.value.field == "device" and info.value.value == "h1000"


def test_vendor_binary_gigabytes_and_driver_figure() -> None:
    h100 = get_device("h100")
    assert h100.memory_bytes == 80 * GIB == 85_899_345_920
    assert h100.usable_memory_bytes == 81559 * MIB  # nvidia-smi's total
    assert h100.budget_bytes == 81559 * MIB
    assert h100.bf16_flops == 989_500_000_000_000  # 1,979 TFLOPS sparse / 2
    assert h100.fp8_flops == 2 * h100.bf16_flops
    rtx = get_device("rtx4090")
    # 16,384 CUDA cores × 2.52 GHz × 2 FLOP × 2 (tensor BF16, FP32 accumulate)
    assert rtx.bf16_flops == 16384 * 2_520_000_000 * 4 == 165_150_720_000_000
    assert rtx.usable_memory_bytes is None and rtx.budget_bytes == 24 * GIB


@pytest.mark.parametrize(
    ("name", "gib", "share"),
    [("m1", 16, (2, 3)), ("m2-pro", 32, (2, 3)), ("m3-pro", 36, (3, 4)), ("m2-ultra", 192, (3, 4))],
)
def test_apple_gpu_share_of_unified_memory(name: str, gib: int, share: tuple[int, int]) -> None:
    d = get_device(name)
    assert d.kind == "apple" and d.memory_bytes == gib * GIB
    assert d.usable_memory_bytes == gib * GIB * share[0] // share[1]


def test_catalogue_covers_the_families_asked_for() -> None:
    names = {d.name for d in all_devices()}
    for wanted in (
        "V100-16GB", "V100-32GB", "A10G", "A100-40GB", "A100-80GB", "L4", "L40S",
        "H100-PCIe", "H100-SXM", "H100-NVL", "H200", "B200", "GB200",
        "RTX3060", "RTX3090", "RTX4060Ti-16GB", "RTX4090", "RTX5070", "RTX5090",
        "MI210", "MI250X", "MI300X", "MI325X", "MI355X", "Gaudi2", "Gaudi3",
        "TPU-v4", "TPU-v5e", "TPU-v5p", "TPU-v6e",
        "M1-16GB", "M1-Ultra-128GB", "M4-Max-128GB", "M3-Ultra-512GB",
    ):  # fmt: skip
        assert wanted in names


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("rtx a6000", "RTX-A6000"), ("A5000", "RTX-A5000"), ("a4000", "RTX-A4000"),
        ("a40", "A40"), ("RTX 6000 Ada", "RTX6000-Ada"), ("l40", "L40"), ("L20", "L20"),
        ("h800", "H800"), ("a800", "A800-80GB"), ("A800-40GB", "A800-40GB"), ("h20", "H20"),
        ("2080ti", "RTX2080Ti"), ("titan rtx", "TitanRTX"), ("rtx 4000 ada", "RTX4000-Ada"),
        ("rtx-4500-ada", "RTX4500-Ada"), ("rtx5000ada", "RTX5000-Ada"), ("a2", "A2"),
        ("a16", "A16"), ("a30", "A30"), ("p100", "P100"), ("p40", "P40"),
        ("rtx pro 6000", "RTX-PRO-6000-Blackwell"), ("b100", "B100"),
        ("jetson-agx-orin", "Jetson-AGX-Orin-64GB"), ("arc a770", "Arc-A770-16GB"),
        ("7900xtx", "RX7900XTX"), ("w7900", "W7900"),
    ],
)  # fmt: skip
def test_devices_people_own_are_found(name: str, expected: str) -> None:
    assert get_device(name).name == expected


@pytest.mark.parametrize(
    ("name", "gb", "bandwidth_gbs", "bf16_tflops"),
    [  # vendor datasheets: capacity (GB read as GiB), GB/s, dense BF16 TFLOP/s
        ("RTX-A6000", 48, 768, 154.8),  # 309.7 with sparsity
        ("A40", 48, 696, 149.7),
        ("RTX6000-Ada", 48, 960, 364.25),  # 1,457 FP8 sparse / 4
        ("L40", 48, 864, 181.05),
        ("H800", 80, 3350, 989.5),
        ("A800-80GB", 80, 2039, 312),
        ("H20", 96, 4000, 148),
        ("A30", 24, 933, 165),
    ],
)
def test_datasheet_figures(name: str, gb: int, bandwidth_gbs: int, bf16_tflops: float) -> None:
    d = get_device(name)
    assert d.memory_bytes == gb * GIB
    assert d.bandwidth_bytes_per_s == bandwidth_gbs * 10**9
    assert d.bf16_flops == round(bf16_tflops * 10**12)


@pytest.mark.parametrize("name", ["T4", "V100-16GB", "V100-32GB", "RTX2080Ti", "TitanRTX", "P100"])
def test_no_bf16_where_the_hardware_has_none(name: str) -> None:
    d = get_device(name)
    assert d.bf16_flops is None and d.fp16_flops is not None
    assert d.matmul_flops == d.fp16_flops == d.flops("fp16")
    assert d.flops("bf16") is None and d.to_dict()["bf16_flops"] is None


def test_t4_and_v100_keep_their_fp16_tensor_rates() -> None:
    assert get_device("t4").fp16_flops == 65 * 10**12
    assert get_device("v100").fp16_flops == 125 * 10**12
    # Turing GeForce: FP16 with FP32 accumulate = 8 x cores x boost
    assert get_device("2080ti").fp16_flops == 4352 * 1_545_000_000 * 8


def test_p40_has_no_16_bit_matrix_peak() -> None:
    p40 = get_device("p40")
    assert p40.matmul_flops is None and "1/64" in p40.notes


def test_bf16_devices_run_fp16_at_the_bf16_rate() -> None:
    h100 = get_device("h100")
    assert h100.flops("fp16") == h100.flops("bf16") == h100.matmul_flops
    with pytest.raises(UnknownNameError):
        h100.flops("int8")


def test_devices_matching_compares_the_budget_figure_for_every_device() -> None:
    floor = 24 * GIB
    chosen = devices_matching(min_memory_bytes=floor)
    assert {d.name for d in chosen} == {d.name for d in all_devices() if d.budget_bytes >= floor}
    names = {d.name for d in chosen}
    # the usable figure decides, not the capacity: an L4 (24 GB, nvidia-smi 23,034 MiB) and
    # an M2 (24 GB unified, GPU share 16 GiB) do not reach 24 GiB; an RTX 4090 does
    assert "RTX4090" in names and "L4" not in names and "M2-24GB" not in names
    assert get_device("l4").memory_bytes == floor


def test_devices_matching_kind_and_vendor() -> None:
    workstation = devices_matching(kind="workstation", vendor="nvidia")
    assert workstation and all(d.kind == "workstation" for d in workstation)
    assert {"RTX-A6000", "RTX6000-Ada"} <= {d.name for d in workstation}
    amd = devices_matching(vendor="AMD", min_memory_bytes=40 * GIB)
    assert {"W7900", "MI300X"} <= {d.name for d in amd} and "RX7900XTX" not in {d.name for d in amd}
    assert devices_matching() == list(all_devices())


def test_devices_matching_refuses_bad_filters() -> None:
    with pytest.raises(UnknownNameError) as info:
        devices_matching(kind="server")
    assert info.value.field == "kind"
    with pytest.raises(InvalidValueError) as bad:
        devices_matching(min_memory_bytes=-1)
    assert bad.value.field == "min_memory"


# --------------------------------------------------------------------------- detection

NVIDIA_SMI_SAMPLE = """\
0, NVIDIA H100 80GB HBM3, 81559, 80950
1, NVIDIA H100 80GB HBM3, 81559, 8000
"""
NVIDIA_SMI_GEFORCE = "0, NVIDIA GeForce RTX 4090, 24564, 23871\n"
SYSCTL_APPLE = """\
hw.memsize: 68719476736
machdep.cpu.brand_string: Apple M1 Max
iogpu.wired_limit_mb: 0
"""
SYSCTL_INTEL_MAC = """\
hw.memsize: 17179869184
machdep.cpu.brand_string: Intel(R) Core(TM) i7-9750H CPU @ 2.60GHz
"""


def test_parse_nvidia_smi_in_mib() -> None:
    found = parse_nvidia_smi(NVIDIA_SMI_SAMPLE)
    assert [d.index for d in found] == [0, 1]
    assert found[0].memory_bytes == 81559 * MIB
    assert found[1].free_bytes == 8000 * MIB == found[1].budget_bytes
    assert found[0].catalogue is not None and found[0].catalogue.name == "H100-SXM"
    geforce = parse_nvidia_smi(NVIDIA_SMI_GEFORCE)[0]
    assert geforce.catalogue is not None and geforce.catalogue.name == "RTX4090"


@pytest.mark.parametrize("text", ["0, H100, 81559\n", "0, H100, lots, 1\n", "0, H100, 10, 20\n"])
def test_parse_nvidia_smi_refuses_malformed_output(text: str) -> None:
    with pytest.raises(SourceError):
        parse_nvidia_smi(text)


def test_parse_sysctl_apple_default_share_and_explicit_limit() -> None:
    mac = parse_sysctl(SYSCTL_APPLE)
    assert mac is not None and mac.memory_bytes == 64 * GIB
    assert mac.gpu_limit_bytes == 48 * GIB == mac.budget_bytes  # 3/4 from 36 GiB
    assert mac.catalogue is not None and mac.catalogue.name == "M1-Max-64GB"
    raised = parse_sysctl(SYSCTL_APPLE.replace("wired_limit_mb: 0", "wired_limit_mb: 57344"))
    assert raised is not None and raised.budget_bytes == 56 * GIB
    assert parse_sysctl(SYSCTL_INTEL_MAC) is None


def _runner(outputs: dict[str, str | None]) -> Callable[[Sequence[str]], str | None]:
    def run(command: Sequence[str]) -> str | None:
        return outputs.get(command[0])

    return run


def test_detect_prefers_nvidia_smi() -> None:
    found = detect(_runner({"nvidia-smi": NVIDIA_SMI_SAMPLE}), lambda: None)
    assert len(found) == 2 and found[0].detected_by == "nvidia-smi"


def test_detect_uses_torch_then_sysctl() -> None:
    torch_found = detect(
        _runner({}),
        lambda: [("NVIDIA L4", 23034 * MIB, 20000 * MIB)],
    )
    assert torch_found[0].detected_by == "torch.cuda" and torch_found[0].free_bytes == 20000 * MIB
    apple = detect(_runner({"sysctl": SYSCTL_APPLE}), lambda: None)
    assert apple[0].detected_by == "sysctl"


def test_detect_none_found_says_what_was_tried() -> None:
    with pytest.raises(NoLocalDeviceError) as info:
        detect(_runner({"sysctl": SYSCTL_INTEL_MAC}), lambda: [])
    message = str(info.value)
    assert "no accelerator found" in message
    assert "nvidia-smi" in message and "torch.cuda" in message and "sysctl" in message


def test_queries_are_the_documented_commands() -> None:
    assert (
        NVIDIA_SMI_QUERY[0] == "nvidia-smi" and "--format=csv,noheader,nounits" in NVIDIA_SMI_QUERY
    )
    assert SYSCTL_QUERY[0] == "sysctl" and "hw.memsize" in SYSCTL_QUERY
