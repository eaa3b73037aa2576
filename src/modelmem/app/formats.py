"""One format vocabulary for every ``--dtype`` and ``--kv-dtype``.

``modelmem formats`` lists number formats (elements: ``bf16``, ``fp8``, ``int4``, ``nf4``,
``q4_k`` ...) with their aliases; weight *schemes* (``bnb-nf4-dq``, ``gptq-4bit-g128``,
``gguf-q4_k_m`` ...) say how a whole model is stored. Every door resolves a user's name here,
once, where it enters:

- as weights, a scheme is itself; a plain element format maps to the scheme people mean
  (``int4`` → AWQ 4-bit g128, ``nf4`` → bitsandbytes NF4, ``fp8`` → FP8 e4m3, ``int8`` →
  LLM.int8) and the note says which; a ggml block type or an integer type no loader stores
  weights in is refused with a reason of its own;
- as a KV cache, a format the engine can hold its cache in is itself; a weight scheme or a
  format of another engine is refused with the reason;
- an unknown name gets "did you mean" and the command that lists them all.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelmem.errors import InvalidValueError, UnknownNameError

__all__ = ["ResolvedFormat", "cache_format", "weights_scheme"]


@dataclass(frozen=True, slots=True)
class ResolvedFormat:
    name: str  # the canonical scheme (weights) or format (cache) name
    note: str | None = None  # said when the user's name was mapped to another


# element format (canonical formats.py name) -> (weights scheme, what it means)
_ELEMENT_AS_WEIGHTS: dict[str, tuple[str, str]] = {
    "fp32": ("fp32", ""),
    "fp16": ("fp16", ""),
    "bf16": ("bf16", ""),
    "fp8-e4m3": ("fp8", "FP8 e4m3 weights with per-tensor scales"),
    "int8": ("bnb-int8", "bitsandbytes LLM.int8 (load_in_8bit)"),
    "llm-int8": ("bnb-int8", "bitsandbytes LLM.int8 (load_in_8bit)"),
    "int4": ("awq-4bit-g128", "AWQ 4-bit, group size 128 (gptq-4bit-g128 for GPTQ)"),
    "nf4": ("bnb-nf4", "bitsandbytes NF4 (load_in_4bit, no double quantization)"),
    "nf4-dq": ("bnb-nf4-dq", "bitsandbytes NF4 with double quantization (QLoRA)"),
    "fp4": ("bnb-fp4", "bitsandbytes FP4 (load_in_4bit with its default quant type)"),
    "fp4-dq": ("bnb-fp4-dq", "bitsandbytes FP4 with double quantization"),
    "gptq-4bit-g128": ("gptq-4bit-g128", ""),
    "awq-4bit-g128": ("awq-4bit-g128", ""),
    "mxfp4": ("mxfp4", "MXFP4 (OCP microscaling: E2M1 in blocks of 32, E8M0 scales)"),
    "nvfp4": ("nvfp4", "NVFP4 (E2M1 in blocks of 16, FP8 scales)"),
}
# ggml block type -> the GGUF file type (llama-quant) that stores most weights in it
_GGML_FILE_TYPE: dict[str, str] = {
    "q4_0": "gguf-q4_0",
    "q4_1": "gguf-q4_1",
    "q5_0": "gguf-q5_0",
    "q5_1": "gguf-q5_1",
    "q8_0": "gguf-q8_0",
    "q2_k": "gguf-q2_k",
    "q3_k": "gguf-q3_k_m",
    "q4_k": "gguf-q4_k_m",
    "q5_k": "gguf-q5_k_m",
    "q6_k": "gguf-q6_k",
}
# KV cache formats per engine (canonical names): vLLM's --kv-cache-dtype (auto, fp8,
# fp8_e4m3, fp8_e5m2); llama.cpp's -ctk/-ctv (f32, f16, bf16, q8_0, q4_0, q4_1, iq4_nl,
# q5_0, q5_1); transformers' DynamicCache holds the model's float dtype, and its quantized
# caches (quanto/HQQ int2/int4) are not modelled.
_CACHE_FORMATS: dict[str, tuple[str, ...]] = {
    "transformers": ("fp32", "fp16", "bf16", "fp8-e4m3", "fp8-e5m2"),
    "vllm": ("fp32", "fp16", "bf16", "fp8-e4m3", "fp8-e5m2"),
    "llama.cpp": ("fp32", "fp16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1"),
}
FORMATS_COMMAND = "`modelmem formats` lists them all"


def _scheme_names() -> tuple[str, ...]:
    from modelmem.memory.weights import weight_schemes

    return weight_schemes()


def _all_names() -> list[str]:
    from modelmem.formats import all_formats

    names = list(_scheme_names())
    for f in all_formats():
        names.append(f.name)
        names.extend(f.aliases)
    return names


def _element(name: str) -> str | None:
    """The canonical format name of ``name``, or None when no format has that name."""
    from modelmem.errors import ModelMemError
    from modelmem.formats import get_format

    try:
        return get_format(name).name
    except ModelMemError:
        return None


def _unknown(field: str, name: str) -> UnknownNameError:
    return UnknownNameError(field, name, _all_names(), listed_by="modelmem formats")


def weights_scheme(name: str, field: str = "dtype") -> ResolvedFormat:
    """The weights scheme ``name`` means, or a one-line refusal naming ``field``."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidValueError(field, name, "must be a format or scheme name")
    key = name.strip().lower()
    schemes = _scheme_names()
    if key in schemes:
        return ResolvedFormat(key)
    element = _element(key)
    if element is None:
        # parametric schemes (gptq-3bit-g64 ...) are accepted by the estimator itself
        if _is_scheme(key):
            return ResolvedFormat(key)
        raise _unknown(field, name)
    mapped = _ELEMENT_AS_WEIGHTS.get(element)
    if mapped is not None:
        scheme, meaning = mapped
        if scheme not in schemes and not _is_scheme(scheme):
            raise InvalidValueError(field, name, f"{meaning}: no weights scheme modelled yet")
        note = None if scheme == key or not meaning else f"{field} {name} = {scheme}: {meaning}"
        return ResolvedFormat(scheme, note)
    if element in _GGML_FILE_TYPE:
        raise InvalidValueError(
            field,
            name,
            f"{element} is a ggml tensor type (and a llama.cpp cache format); for weights "
            f"use the GGUF file type {_GGML_FILE_TYPE[element]}",
        )
    raise InvalidValueError(
        field,
        name,
        f"{element} is a number format no loader stores model weights in; weight schemes: "
        "bf16, fp16, fp32, fp8, bnb-int8, bnb-nf4(-dq), gptq-/awq-<b>bit-g<g>, gguf-<type> "
        f"({FORMATS_COMMAND})",
    )


def _is_scheme(name: str) -> bool:
    from modelmem.memory.weights import is_weight_scheme

    return is_weight_scheme(name)


def cache_format(name: str, engine: str, field: str = "kv_dtype") -> ResolvedFormat:
    """The KV cache format ``name`` means for ``engine``, or a one-line refusal."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidValueError(field, name, "must be a format name")
    key = name.strip().lower()
    element = _element(key)
    if element is None:
        if key in _scheme_names() or _is_scheme(key):
            plain = key.removeprefix("gguf-").removeprefix("bnb-")
            hint = f"; for the cache use {plain}" if _element(plain) else ""
            raise InvalidValueError(field, name, f"{key} is a weights scheme{hint}")
        raise _unknown(field, name)
    allowed = _CACHE_FORMATS[engine]
    if element not in allowed:
        others = [e for e, formats in _CACHE_FORMATS.items() if element in formats]
        where = f"a {' and '.join(others)} cache format" if others else "no engine's cache format"
        raise InvalidValueError(
            field,
            name,
            f"{element} is {where}; {engine} caches hold {', '.join(allowed)}",
        )
    return ResolvedFormat(element)
