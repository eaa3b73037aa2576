"""Bad inputs for every entry point, as data: each must give one clear line, exit code 2
(HTTP 4xx), no traceback, bounded memory, and an answer.

The per-reader fuzz tests (tests/unit/test_*_fuzz.py, tests/web/test_schema_fuzz.py) mutate
one parser at a time; this corpus goes through the entry points a person uses.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

MODEL = "llama-3.1-8b"

# ------------------------------------------------------------------ command-line options

# (id, argv): every command, its options with zero, negative, NaN, absurd, malformed or
# unknown values, and unknown options.
CLI_CASES: list[tuple[str, list[str]]] = [
    ("no-command-option", ["--frobnicate"]),
    ("unknown-command", ["estimate", MODEL]),
    # params
    ("params-missing-source", ["params"]),
    ("params-unknown-model", ["params", "llama-9-999b"]),
    ("params-empty-source", ["params", ""]),
    ("params-zero-size", ["params", "0B"]),
    ("params-negative-size", ["params", "-7B"]),
    ("params-nan-size", ["params", "nanB"]),
    ("params-inf-size", ["params", "infB"]),
    ("params-absurd-size", ["params", "1e40"]),
    ("params-unit-garbage", ["params", "7Q"]),
    ("params-missing-file", ["params", "./no/such/config.json"]),
    ("params-unknown-dtype", ["params", MODEL, "--dtype", "fp7"]),
    ("params-bad-optimizer", ["params", MODEL, "--optimizer", "rmsprop2"]),
    ("params-train-factor-nan", ["params", MODEL, "--train-factor", "nan"]),
    ("params-train-factor-low", ["params", MODEL, "--train-factor", "0"]),
    ("params-train-factor-text", ["params", MODEL, "--train-factor", "four"]),
    # inference
    ("inference-batch-zero", ["inference", MODEL, "--batch", "0"]),
    ("inference-batch-negative", ["inference", MODEL, "--batch", "-4"]),
    ("inference-batch-absurd", ["inference", MODEL, "--batch", "99999999999999999999"]),
    ("inference-batch-float", ["inference", MODEL, "--batch", "1.5"]),
    ("inference-context-zero", ["inference", MODEL, "--context", "0"]),
    ("inference-context-absurd", ["inference", MODEL, "--context", str(2**62)]),
    ("inference-prompt-over-context", ["inference", MODEL, "--context", "16", "--prompt", "32"]),
    ("inference-unknown-dtype", ["inference", MODEL, "--dtype", "int3"]),
    ("inference-unknown-kv-dtype", ["inference", MODEL, "--kv-dtype", "q1_9"]),
    ("inference-unknown-engine", ["inference", MODEL, "--engine", "tensorrt"]),
    ("inference-unknown-attention", ["inference", MODEL, "--attention", "flash9"]),
    ("inference-tp-zero", ["inference", MODEL, "--tp", "0"]),
    ("inference-memory-garbage", ["inference", MODEL, "--memory", "lots"]),
    ("inference-memory-negative", ["inference", MODEL, "--memory", "-80GB"]),
    ("inference-memory-fraction-of-byte", ["inference", MODEL, "--memory", "0.1B"]),
    ("inference-cuda-context-garbage", ["inference", MODEL, "--cuda-context", "x"]),
    ("inference-reserve-nan", ["inference", MODEL, "--allocator-reserve", "nan"]),
    ("inference-reserve-over-one", ["inference", MODEL, "--allocator-reserve", "2"]),
    (
        "inference-gpu-util-zero",
        ["inference", MODEL, "--engine", "vllm", "--gpu-memory-utilization", "0"],
    ),
    (
        "inference-gpu-util-nan",
        ["inference", MODEL, "--engine", "vllm", "--gpu-memory-utilization", "nan"],
    ),
    (
        "inference-batched-tokens-zero",
        ["inference", MODEL, "--engine", "vllm", "--max-num-batched-tokens", "0"],
    ),
    ("inference-ubatch-zero", ["inference", MODEL, "--engine", "llama.cpp", "--ubatch", "0"]),
    (
        "inference-gpu-layers-negative",
        ["inference", MODEL, "--engine", "llama.cpp", "--gpu-layers", "-1"],
    ),
    # train
    ("train-batch-zero", ["train", MODEL, "--batch", "0"]),
    ("train-seq-negative", ["train", MODEL, "--seq", "-1"]),
    ("train-seq-absurd", ["train", MODEL, "--seq", str(2**40)]),
    ("train-unknown-recipe", ["train", MODEL, "--recipe", "fp4-magic"]),
    ("train-unknown-optimizer", ["train", MODEL, "--optimizer", "adamw-2bit"]),
    ("train-unknown-impl", ["train", MODEL, "--optimizer-impl", "triton"]),
    ("train-grad-accum-zero", ["train", MODEL, "--grad-accumulation", "0"]),
    ("train-unknown-method", ["train", MODEL, "--method", "prefix"]),
    (
        "train-lora-unknown-target",
        ["train", MODEL, "--method", "lora", "--recipe", "pure-bf16", "--lora-targets", "zz"],
    ),
    ("train-unknown-qlora-scheme", ["train", MODEL, "--method", "qlora", "--qlora-scheme", "x"]),
    ("train-zero-stage-5", ["train", MODEL, "--zero", "5"]),
    ("train-devices-zero", ["train", MODEL, "--devices", "0"]),
    ("train-unknown-fsdp", ["train", MODEL, "--fsdp", "hybrid-magic"]),
    ("train-memory-garbage", ["train", MODEL, "--memory", "80 parsecs"]),
    # fit / plan
    ("fit-missing-device", ["fit", MODEL]),
    ("fit-unknown-device", ["fit", MODEL, "--device", "h9000"]),
    ("fit-count-zero", ["fit", MODEL, "--device", "h100", "--count", "0"]),
    ("fit-reserve-negative", ["fit", MODEL, "--device", "h100", "--reserve", "-0.5"]),
    ("fit-reserve-nan", ["fit", MODEL, "--device", "h100", "--reserve", "nan"]),
    ("fit-unknown-mode", ["fit", MODEL, "--device", "h100", "--mode", "serve"]),
    ("fit-batch-zero", ["fit", MODEL, "--device", "h100", "--batch", "0"]),
    ("fit-context-negative", ["fit", MODEL, "--device", "h100", "--context", "-8"]),
    ("plan-unknown-device", ["plan", MODEL, "--device", "tpu-v99"]),
    ("plan-unknown-goal", ["plan", MODEL, "--device", "h100", "--goal", "pretrain"]),
    ("plan-unknown-objective", ["plan", MODEL, "--device", "h100", "--objective", "joy"]),
    ("plan-top-zero", ["plan", MODEL, "--device", "h100", "--top", "0"]),
    ("plan-count-zero", ["plan", MODEL, "--device", "h100", "--count", "0"]),
    # tokens
    ("tokens-unknown-tokenizer", ["tokens", "hello", "--tokenizer", "no-such-encoding"]),
    ("tokens-missing-file", ["tokens", "--file", "./no/such.txt", "--tokenizer", "cl100k_base"]),
    (
        "tokens-negative-completion",
        ["tokens", "hello", "--tokenizer", "cl100k_base", "--completion", "-5"],
    ),
    (
        "tokens-unknown-model",
        ["tokens", "hello", "--tokenizer", "cl100k_base", "--model", "nope-1b"],
    ),
    # cost
    ("cost-unknown-device", ["cost", MODEL, "--device", "h9000"]),
    ("cost-mfu-zero", ["cost", MODEL, "--device", "h100", "--mfu", "0"]),
    ("cost-mfu-nan", ["cost", MODEL, "--device", "h100", "--mfu", "nan"]),
    ("cost-mbu-over-one", ["cost", MODEL, "--device", "h100", "--mbu", "7"]),
    ("cost-tflops-negative", ["cost", MODEL, "--tflops", "-5", "--bandwidth", "3TB"]),
    ("cost-bandwidth-garbage", ["cost", MODEL, "--tflops", "900", "--bandwidth", "fast"]),
    ("cost-train-tokens-garbage", ["cost", MODEL, "--device", "h100", "--train-tokens", "many"]),
    ("cost-price-negative", ["cost", MODEL, "--device", "h100", "--price-per-hour", "-2"]),
    ("cost-devices-zero", ["cost", MODEL, "--device", "h100", "--devices", "0"]),
    # measure (all refused before torch is imported)
    ("measure-unknown-model", ["measure", "nope-1b"]),
    ("measure-batch-zero", ["measure", MODEL, "--batch", "0"]),
    ("measure-unknown-mode", ["measure", MODEL, "--mode", "serve"]),
    ("measure-steps-zero", ["measure", MODEL, "--steps", "0"]),
    # catalogues
    ("devices-unknown-kind", ["devices", "--kind", "quantum"]),
    ("devices-min-memory-garbage", ["devices", "--min-memory", "big"]),
    # serve
    ("serve-port-negative", ["serve", "--port", "-1"]),
    ("serve-port-absurd", ["serve", "--port", "70000"]),
    ("serve-max-body-zero", ["serve", "--max-body", "0"]),
]

# ---------------------------------------------------------------------------- config.json

_LLAMA: dict[str, Any] = {
    "model_type": "llama",
    "vocab_size": 32000,
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
}


def _llama(**changes: Any) -> bytes:
    config = {k: v for k, v in {**_LLAMA, **changes}.items() if v is not ...}
    return json.dumps(config).encode()


# (id, bytes of config.json)
CONFIG_CASES: list[tuple[str, bytes]] = [
    ("empty", b""),
    ("whitespace", b"  \n\t "),
    ("not-json", b"model_type = llama"),
    ("truncated", _llama()[:40]),
    ("json-array", b"[1, 2, 3]"),
    ("json-string", b'"llama"'),
    ("json-null", b"null"),
    ("binary-garbage", bytes(range(256)) * 4),
    ("utf16-bom", '{"model_type": "llama"}'.encode("utf-16")),
    ("deep-nesting", b"[" * 100_000 + b"]" * 100_000),
    ("deep-nesting-object", b'{"a":' * 50_000 + b"1" + b"}" * 50_000),
    ("no-model-type", _llama(model_type=...)),
    ("unknown-model-type", _llama(model_type="llama9000")),
    ("model-type-number", _llama(model_type=7)),
    ("missing-hidden-size", _llama(hidden_size=...)),
    ("missing-layers", _llama(num_hidden_layers=...)),
    ("hidden-zero", _llama(hidden_size=0)),
    ("hidden-negative", _llama(hidden_size=-4096)),
    ("hidden-float", _llama(hidden_size=4096.5)),
    ("hidden-string", _llama(hidden_size="4096")),
    ("hidden-bool", _llama(hidden_size=True)),
    ("hidden-null", _llama(hidden_size=None)),
    ("hidden-list", _llama(hidden_size=[4096])),
    ("hidden-nan", _llama().replace(b'"hidden_size": 4096', b'"hidden_size": NaN')),
    ("hidden-infinity", _llama().replace(b'"hidden_size": 4096', b'"hidden_size": Infinity')),
    ("hidden-absurd", _llama(hidden_size=10**40)),
    ("layers-absurd", _llama(num_hidden_layers=2**62)),
    ("vocab-absurd", _llama(vocab_size=10**30)),
    ("heads-zero", _llama(num_attention_heads=0)),
    ("heads-not-dividing", _llama(num_attention_heads=3)),
    ("kv-heads-over-heads", _llama(num_key_value_heads=64)),
    ("kv-heads-not-dividing", _llama(num_key_value_heads=5)),
    ("intermediate-negative", _llama(intermediate_size=-1)),
    ("text-config-not-object", json.dumps({"model_type": "gemma3", "text_config": 5}).encode()),
    ("layer-types-wrong-length", _llama(layer_types=["full_attention"])),
    ("sliding-window-negative", _llama(sliding_window=-1)),
    ("moe-experts-zero", _llama(model_type="mixtral", num_local_experts=0)),
    (
        "moe-experts-per-token-over-experts",
        _llama(model_type="mixtral", num_local_experts=2, num_experts_per_tok=8),
    ),
]

# ------------------------------------------------------------------------- safetensors

_HEADER = {"w": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 8]}}


def _st(header: Any, data: bytes = b"\0" * 8, length: int | None = None) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


# (id, file name, bytes): model.safetensors files and a sharded index
SAFETENSORS_CASES: list[tuple[str, str, bytes]] = [
    ("empty", "model.safetensors", b""),
    ("seven-bytes", "model.safetensors", b"\x01" * 7),
    ("length-beyond-file", "model.safetensors", _st(_HEADER, length=10_000)),
    ("length-absurd", "model.safetensors", _st(_HEADER, length=2**63)),
    ("length-zero", "model.safetensors", _st(b"", length=0)),
    ("header-not-json", "model.safetensors", _st(b"{not json")),
    ("header-list", "model.safetensors", _st([1, 2])),
    ("header-deep", "model.safetensors", _st(b"[" * 50_000 + b"]" * 50_000)),
    (
        "unknown-dtype",
        "model.safetensors",
        _st({"w": {"dtype": "Q3", "shape": [2, 2], "data_offsets": [0, 8]}}),
    ),
    (
        "negative-shape",
        "model.safetensors",
        _st({"w": {"dtype": "BF16", "shape": [-2, 2], "data_offsets": [0, 8]}}),
    ),
    (
        "absurd-shape",
        "model.safetensors",
        _st({"w": {"dtype": "BF16", "shape": [2**40, 2**40], "data_offsets": [0, 8]}}),
    ),
    (
        "offsets-beyond-data",
        "model.safetensors",
        _st({"w": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 10**12]}}),
    ),
    (
        "offsets-mismatch-shape",
        "model.safetensors",
        _st({"w": {"dtype": "BF16", "shape": [4, 4], "data_offsets": [0, 8]}}),
    ),
    ("no-tensors", "model.safetensors", _st({"__metadata__": {"format": "pt"}})),
    ("index-not-json", "model.safetensors.index.json", b"{weight_map"),
    ("index-no-weight-map", "model.safetensors.index.json", b'{"metadata": {}}'),
    ("index-deep", "model.safetensors.index.json", b"[" * 50_000 + b"]" * 50_000),
    ("index-weight-map-list", "model.safetensors.index.json", b'{"weight_map": [1]}'),
    (
        "index-missing-shard",
        "model.safetensors.index.json",
        b'{"weight_map": {"w": "model-00001-of-00002.safetensors"}}',
    ),
    (
        "index-shard-escapes-folder",
        "model.safetensors.index.json",
        b'{"weight_map": {"w": "../../etc/passwd"}}',
    ),
]

# -------------------------------------------------------------------------------- GGUF

_GGUF_MAGIC = b"GGUF"


def _gguf(version: int = 3, n_tensors: int = 0, n_kv: int = 0, rest: bytes = b"") -> bytes:
    return _GGUF_MAGIC + struct.pack("<IQQ", version, n_tensors, n_kv) + rest


def _kv_string(key: bytes, value: bytes, value_length: int | None = None) -> bytes:
    n = len(value) if value_length is None else value_length
    return struct.pack("<Q", len(key)) + key + struct.pack("<I", 8) + struct.pack("<Q", n) + value


# (id, bytes of a .gguf file)
GGUF_CASES: list[tuple[str, bytes]] = [
    ("empty", b""),
    ("magic-only", _GGUF_MAGIC),
    ("wrong-magic", b"GGML" + b"\0" * 20),
    ("version-zero", _gguf(version=0)),
    ("version-future", _gguf(version=99)),
    ("no-metadata", _gguf()),
    ("tensor-count-absurd", _gguf(n_tensors=2**62)),
    ("kv-count-absurd", _gguf(n_kv=2**62)),
    ("kv-count-beyond-file", _gguf(n_kv=10)),
    ("key-length-absurd", _gguf(n_kv=1, rest=struct.pack("<Q", 2**62) + b"general")),
    (
        "string-length-absurd",
        _gguf(n_kv=1, rest=_kv_string(b"general.architecture", b"llama", 2**62)),
    ),
    (
        "unknown-value-type",
        _gguf(n_kv=1, rest=struct.pack("<Q", 7) + b"general" + struct.pack("<I", 99)),
    ),
    (
        "array-length-absurd",
        _gguf(
            n_kv=1,
            rest=struct.pack("<Q", 6)
            + b"tokens"
            + struct.pack("<I", 9)  # array
            + struct.pack("<I", 4)  # of uint32
            + struct.pack("<Q", 2**62),
        ),
    ),
    ("unknown-architecture", _gguf(n_kv=1, rest=_kv_string(b"general.architecture", b"zz9"))),
    ("architecture-no-fields", _gguf(n_kv=1, rest=_kv_string(b"general.architecture", b"llama"))),
    ("architecture-not-utf8", _gguf(n_kv=1, rest=_kv_string(b"general.architecture", b"\xff\xfe"))),
]

# ------------------------------------------------------------------- adapter_config.json


def _adapter(**changes: Any) -> bytes:
    base: dict[str, Any] = {
        "peft_type": "LORA",
        "base_model_name_or_path": MODEL,
        "r": 16,
        "lora_alpha": 32,
        "target_modules": ["q_proj", "v_proj"],
    }
    return json.dumps({k: v for k, v in {**base, **changes}.items() if v is not ...}).encode()


# (id, bytes of adapter_config.json)
ADAPTER_CASES: list[tuple[str, bytes]] = [
    ("empty", b""),
    ("not-json", b"peft_type: LORA"),
    ("json-list", b"[]"),
    ("deep-nesting", b'{"r":' * 50_000 + b"1" + b"}" * 50_000),
    ("prefix-tuning", _adapter(peft_type="PREFIX_TUNING")),
    ("rank-zero", _adapter(r=0)),
    ("rank-negative", _adapter(r=-8)),
    ("rank-string", _adapter(r="16")),
    ("rank-absurd", _adapter(r=2**62)),
    ("alpha-string", _adapter(lora_alpha="32")),
    ("targets-number", _adapter(target_modules=5)),
    ("targets-unknown", _adapter(target_modules=["no_such_proj"])),
    ("rank-pattern-list", _adapter(rank_pattern=[1])),
    ("layers-negative", _adapter(layers_to_transform=[-1])),
    ("layers-beyond-model", _adapter(layers_to_transform=[999])),
    ("no-base-model", _adapter(base_model_name_or_path=...)),
    ("unknown-base-model", _adapter(base_model_name_or_path="nope-1b")),
    ("base-model-number", _adapter(base_model_name_or_path=7)),
]

# ------------------------------------------------------------------------------ HTTP API

_DEEP = '{"source": ' + "[" * 20_000 + "]" * 20_000 + "}"

# (id, method, path, raw body or a JSON value); every answer must be a 4xx with a one-line
# {"error": ...} body.
API_CASES: list[tuple[str, str, str, Any]] = [
    ("params-empty-body", "POST", "/api/params", b""),
    ("params-not-json", "POST", "/api/params", b"{source: llama"),
    ("params-array", "POST", "/api/params", [MODEL]),
    ("params-no-source", "POST", "/api/params", {}),
    ("params-extra-field", "POST", "/api/params", {"source": MODEL, "rm": "-rf"}),
    ("params-unknown-model", "POST", "/api/params", {"source": "nope-1b"}),
    ("params-zero-size", "POST", "/api/params", {"source": "0B"}),
    ("params-path-source", "POST", "/api/params", {"source": "/etc/passwd"}),
    ("params-relative-path", "POST", "/api/params", {"source": "../config.json"}),
    ("params-config-not-object", "POST", "/api/params", {"source": {"model_type": 5}}),
    ("params-config-bad-hidden", "POST", "/api/params", {"source": {**_LLAMA, "hidden_size": -1}}),
    ("params-deep-json", "POST", "/api/params", _DEEP.encode()),
    ("params-unknown-dtype", "POST", "/api/params", {"source": MODEL, "dtype": "fp7"}),
    ("params-nan-train-factor", "POST", "/api/params", b'{"source": "7B", "train_factor": NaN}'),
    ("inference-batch-zero", "POST", "/api/inference", {"source": MODEL, "batch": 0}),
    ("inference-batch-string", "POST", "/api/inference", {"source": MODEL, "batch": "four"}),
    ("inference-batch-absurd", "POST", "/api/inference", {"source": MODEL, "batch": 10**30}),
    ("inference-context-float", "POST", "/api/inference", {"source": MODEL, "context": 1.5}),
    (
        "inference-prompt-over-context",
        "POST",
        "/api/inference",
        {"source": MODEL, "context": 16, "prompt": 32},
    ),
    ("inference-unknown-engine", "POST", "/api/inference", {"source": MODEL, "engine": "trt"}),
    ("inference-memory-garbage", "POST", "/api/inference", {"source": MODEL, "memory": "lots"}),
    ("inference-kv-unknown", "POST", "/api/inference", {"source": MODEL, "kv_dtype": "q1"}),
    ("train-seq-zero", "POST", "/api/train", {"source": MODEL, "seq": 0}),
    ("train-zero-stage-9", "POST", "/api/train", {"source": MODEL, "zero": 9}),
    ("train-unknown-optimizer", "POST", "/api/train", {"source": MODEL, "optimizer": "x"}),
    ("train-lora-rank-zero", "POST", "/api/train", {"source": MODEL, "lora_rank": 0}),
    ("fit-no-device", "POST", "/api/fit", {"source": MODEL}),
    ("fit-unknown-device", "POST", "/api/fit", {"source": MODEL, "device": "h9000"}),
    ("fit-count-zero", "POST", "/api/fit", {"source": MODEL, "device": "h100", "count": 0}),
    ("plan-unknown-goal", "POST", "/api/plan", {"source": MODEL, "device": "h100", "goal": "x"}),
    ("plan-top-zero", "POST", "/api/plan", {"source": MODEL, "device": "h100", "top": 0}),
    ("tokens-empty-text", "POST", "/api/tokens", {"text": ""}),
    ("tokens-path-tokenizer", "POST", "/api/tokens", {"text": "hi", "tokenizer": "/etc/passwd"}),
    ("tokens-unknown-tokenizer", "POST", "/api/tokens", {"text": "hi", "tokenizer": "nope"}),
    ("sweep-no-values", "POST", "/api/inference/sweep", {"source": MODEL, "values": []}),
    (
        "sweep-too-many-values",
        "POST",
        "/api/inference/sweep",
        {"source": MODEL, "values": list(range(1, 100_000))},
    ),
    ("sweep-bad-axis", "POST", "/api/train/sweep", {"source": MODEL, "axis": "lr", "values": [1]}),
    ("sweep-zero-value", "POST", "/api/train/sweep", {"source": MODEL, "values": [0]}),
    ("body-over-cap", "POST", "/api/params", b'{"source": "' + b"a" * 2_000_000 + b'"}'),
    ("unknown-endpoint", "POST", "/api/estimate", {"source": MODEL}),
    ("wrong-method", "GET", "/api/params", None),
    ("devices-post", "POST", "/api/devices", {}),
]


# ======================================================================================
# Hostile inputs run as a person would run them: each in its own process, capped in
# memory and time (test_hostile_corpus.py). A case is its command line, the files it
# finds in its working folder, and its standard input.


@dataclass(frozen=True)
class Case:
    """One hostile input. ``files``: name -> bytes in the case's folder (a name ending in
    "/" is a folder); ``fifos``: named pipes there; ``stdin``: bytes, or "zero" for
    /dev/zero; ``ok``: True, a correct answer (exit 0) is expected instead of exit 2; None,
    either is right (a runaway regex that RE2 runs in linear time, refused without it)."""

    id: str
    argv: tuple[str, ...]
    files: tuple[tuple[str, bytes], ...] = ()
    fifos: tuple[str, ...] = ()
    stdin: bytes | str = b""
    ok: bool | None = False


def _case(
    id: str,
    argv: list[str],
    files: dict[str, bytes] | None = None,
    fifos: tuple[str, ...] = (),
    stdin: bytes | str = b"",
    ok: bool | None = False,
) -> Case:
    return Case(id, tuple(argv), tuple((files or {}).items()), fifos, stdin, ok)


def _gguf_kv(key: bytes, vtype: int, payload: bytes) -> bytes:
    return struct.pack("<Q", len(key)) + key + struct.pack("<I", vtype) + payload


def _gguf_str(key: bytes, value: bytes) -> bytes:
    return _gguf_kv(key, 8, struct.pack("<Q", len(value)) + value)


def _gguf_strings(key: bytes, values: list[bytes], claimed: int | None = None) -> bytes:
    n = len(values) if claimed is None else claimed
    body = b"".join(struct.pack("<Q", len(v)) + v for v in values)
    return _gguf_kv(key, 9, struct.pack("<I", 8) + struct.pack("<Q", n) + body)


def _gguf_numbers(key: bytes, itype: int, fmt: str, values: list[Any]) -> bytes:
    body = struct.pack(f"<{len(values)}{fmt}", *values)
    return _gguf_kv(key, 9, struct.pack("<I", itype) + struct.pack("<Q", len(values)) + body)


def _gguf_file(*kvs: bytes) -> bytes:
    return _gguf(n_kv=len(kvs), rest=b"".join(kvs))


_ARCH = _gguf_str(b"general.architecture", b"llama")
_TOK_MODEL_GPT2 = _gguf_str(b"tokenizer.ggml.model", b"gpt2")
_TOK_MODEL_SPM = _gguf_str(b"tokenizer.ggml.model", b"llama")
_TOKENS = _gguf_strings(b"tokenizer.ggml.tokens", [b"a", b"b", b"ab"])


def _tokenizer_json(**changes: Any) -> bytes:
    base: dict[str, Any] = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True},
        "post_processor": None,
        "decoder": None,
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "vocab": {"a": 0, "b": 1, "ab": 2},
            "merges": ["a b"],
        },
    }
    return json.dumps({**base, **changes}).encode()


def _split(pattern: str) -> dict[str, Any]:
    return {
        "type": "Split",
        "pattern": {"Regex": pattern},
        "behavior": "Isolated",
        "invert": False,
    }


_TOKENS_ARGS = ["tokens", "hello world", "--tokenizer"]
_TRAIN = ["train", "adapter", "--recipe", "pure-bf16"]
_DS = ["train", MODEL, "--recipe", "pure-bf16", "--deepspeed", "ds.json"]
_HUGE_INT = b"9" * 5000


def _hostile_cases() -> list[Case]:
    cases: list[Case] = []
    # every in-process case above, again in a capped process
    cases += [_case(f"cli-{name}", argv) for name, argv in CLI_CASES]
    cases += [
        _case(f"config-{name}", ["params", "config.json"], {"config.json": content})
        for name, content in CONFIG_CASES
    ]
    cases += [
        _case(f"safetensors-{name}", ["params", file], {file: content})
        for name, file, content in SAFETENSORS_CASES
    ]
    many = {
        f"t{i}": {"dtype": "BF16", "shape": [1], "data_offsets": [2 * i, 2 * i + 2]}
        for i in range(70_000)
    }
    more_safetensors = {
        "tensors-70k": ("model.safetensors", _st(many, data=b"\0" * 140_000)),
        "index-huge-int": (
            "model.safetensors.index.json",
            b'{"metadata": {"total_size": ' + _HUGE_INT + b'}, "weight_map": {}}',
        ),
        "index-weight-map-600k": (
            "model.safetensors.index.json",
            json.dumps({"weight_map": {f"t{i}": "a.safetensors" for i in range(600_000)}}).encode(),
        ),
    }
    cases += [
        _case(f"safetensors-{name}", ["params", file], {file: content})
        for name, (file, content) in more_safetensors.items()
    ]
    cases += [
        _case(f"gguf-{name}", ["params", "model.gguf"], {"model.gguf": content})
        for name, content in GGUF_CASES
    ]
    cases += [
        _case(f"adapter-{name}", _TRAIN, {"adapter/adapter_config.json": content})
        for name, content in ADAPTER_CASES
    ]

    # architecture sizes: each refused by its bound, not built
    sizes = {
        "layers-2e24": _llama(num_hidden_layers=2**24),
        "layers-5000": _llama(num_hidden_layers=5000),
        "vocab-2e30": _llama(vocab_size=2**30),
        "hidden-2e20": _llama(hidden_size=2**20, num_attention_heads=2**10),
        "intermediate-2e30": _llama(intermediate_size=2**30),
        "heads-2e20": _llama(num_attention_heads=2**20, hidden_size=2**20),
        "kv-heads-2e20": _llama(num_key_value_heads=2**20),
        "context-2e40": _llama(max_position_embeddings=2**40),
        "head-dim-2e20": _llama(head_dim=2**20),
        "experts-2e20": _llama(model_type="mixtral", num_local_experts=2**20),
        "experts-per-token-2e20": _llama(model_type="mixtral", num_experts_per_tok=2**20),
        "moe-intermediate-2e30": json.dumps(
            {**_LLAMA, "model_type": "qwen3_moe", "moe_intermediate_size": 2**30}
        ).encode(),
        "layer-types-100k": _llama(layer_types=["full_attention"] * 100_000),
        "text-config-layers-2e24": json.dumps(
            {"model_type": "gemma3", "text_config": {**_LLAMA, "num_hidden_layers": 2**24}}
        ).encode(),
        "huge-int-hidden": b'{"model_type": "llama", "hidden_size": ' + _HUGE_INT + b"}",
        "huge-int-nested": b'{"model_type": "llama", "x": {"y": [' + _HUGE_INT + b"]}}",
        "gpt2-heads-not-dividing": json.dumps(
            {
                "model_type": "gpt2",
                "n_embd": 768,
                "n_head": 7,
                "n_layer": 12,
                "vocab_size": 50257,
                "n_positions": 1024,
            }
        ).encode(),
        "gpt2-layers-2e24": json.dumps(
            {"model_type": "gpt2", "n_embd": 768, "n_head": 12, "n_layer": 2**24}
        ).encode(),
        "float-layers": _llama(num_hidden_layers=1e300),
        "negative-vocab": _llama(vocab_size=-1),
        "sliding-window-2e40": _llama(model_type="mistral", sliding_window=2**40),
        "keys-flood": json.dumps({**_LLAMA, **{f"k{i}": i for i in range(50_000)}}).encode(),
        "model-type-huge": _llama(model_type="x" * 100_000),
        "bom-utf8": b"\xef\xbb\xbf" + _llama(),
        "nul-bytes": b"\0" * 1000,
        "latin1": _llama(model_type="ll\xe0ma").decode().encode("latin-1"),
    }
    answers = {"keys-flood"}  # keys no reader knows are ignored
    cases += [
        _case(
            f"size-{name}",
            ["params", "config.json"],
            {"config.json": content},
            ok=name in answers,
        )
        for name, content in sizes.items()
    ]
    cases += [
        _case(f"size-inference-{name}", ["inference", "config.json"], {"config.json": content})
        for name, content in sizes.items()
        if name.startswith(("layers", "experts", "context"))
    ]
    cases.append(
        _case("size-a-real-config", ["params", "config.json"], {"config.json": _llama()}, ok=True)
    )

    # adapters: regexes that would backtrack without end, bad regexes, loops
    runaway = ["(.*)*z", "(a+)+$", "(a|a)*b", "(.*a){20}", "((a*)*)*b", "(x+x+)+y", "(\\w+\\s?)*$"]
    for i, pattern in enumerate(runaway):
        cases.append(
            _case(
                f"adapter-target-regex-{i}",
                _TRAIN,
                {"adapter/adapter_config.json": _adapter(target_modules=pattern)},
                ok=None,
            )
        )
        cases.append(
            _case(
                f"adapter-rank-pattern-{i}",
                _TRAIN,
                {"adapter/adapter_config.json": _adapter(rank_pattern={pattern: 8})},
                ok=None,
            )
        )
        cases.append(
            _case(
                f"adapter-alpha-pattern-{i}",
                _TRAIN,
                {"adapter/adapter_config.json": _adapter(alpha_pattern={pattern: 8})},
                ok=None,
            )
        )
        cases.append(
            _case(
                f"adapter-exclude-{i}",
                _TRAIN,
                {"adapter/adapter_config.json": _adapter(exclude_modules=pattern)},
                ok=None,
            )
        )
    adapters = {
        "target-regex-invalid": _adapter(target_modules="(q_proj"),
        "target-regex-long": _adapter(target_modules="q_proj|" * 2000 + "v_proj"),
        "target-regex-backref": _adapter(target_modules="(q)\\1"),
        "rank-pattern-invalid": _adapter(rank_pattern={"[": 8}),
        "rank-pattern-value-huge": _adapter(rank_pattern={"q_proj": 2**40}),
        "alpha-pattern-list": _adapter(alpha_pattern=[1, 2]),
        "exclude-invalid": _adapter(exclude_modules="*"),
        "rank-2e40": _adapter(r=2**40),
        "rank-huge-int": _adapter().replace(b'"r": 16', b'"r": ' + _HUGE_INT),
        "base-self-dot": _adapter(base_model_name_or_path="."),
        "base-self-folder": _adapter(base_model_name_or_path="adapter"),
        "base-self-file": _adapter(base_model_name_or_path="adapter/adapter_config.json"),
        "base-empty": _adapter(base_model_name_or_path=""),
        "base-hub-offline": _adapter(base_model_name_or_path="no-org/no-model"),
        "base-long": _adapter(base_model_name_or_path="a" * 5000),
        "layers-huge": _adapter(layers_to_transform=[2**62]),
        "modules-to-save-number": _adapter(modules_to_save=5),
        "bias-unknown": _adapter(bias="some"),
        # name lists and patterns by the hundred thousand: refused by count, never scanned
        "targets-70k": _adapter(target_modules=[f"x{i}" for i in range(70_000)]),
        "exclude-70k": _adapter(exclude_modules=[f"x{i}" for i in range(70_000)]),
        "modules-to-save-70k": _adapter(modules_to_save=[f"x{i}" for i in range(70_000)]),
        "layers-70k": _adapter(layers_to_transform=list(range(70_000))),
        "rank-pattern-5000": _adapter(rank_pattern={f"x{i}": 4 for i in range(5000)}),
        "alpha-pattern-5000": _adapter(alpha_pattern={f"x{i}": 4 for i in range(5000)}),
    }
    cases += [
        _case(f"adapter-{name}", _TRAIN, {"adapter/adapter_config.json": content})
        for name, content in adapters.items()
    ]
    cases.append(
        _case(
            "adapter-loop-of-two",
            ["train", "a", "--recipe", "pure-bf16"],
            {
                "a/adapter_config.json": _adapter(base_model_name_or_path="b"),
                "b/adapter_config.json": _adapter(base_model_name_or_path="a"),
            },
        )
    )
    cases.append(
        _case(
            "adapter-chain-too-deep",
            ["train", "a0", "--recipe", "pure-bf16"],
            {
                f"a{i}/adapter_config.json": _adapter(base_model_name_or_path=f"a{i + 1}")
                for i in range(8)
            },
        )
    )
    cases.append(
        _case("adapter-a-good-one", _TRAIN, {"adapter/adapter_config.json": _adapter()}, ok=True)
    )

    # DeepSpeed configs
    deepspeed = {
        "empty": b"",
        "not-json": b"zero: 3",
        "list": b"[1]",
        "deep-nesting": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        "deep-list": b"[" * 100_000 + b"]" * 100_000,
        "huge-int": b'{"train_micro_batch_size_per_gpu": ' + _HUGE_INT + b"}",
        "stage-9": b'{"zero_optimization": {"stage": 9}}',
        "stage-string": b'{"zero_optimization": {"stage": "three"}}',
        "offload-unknown": (
            b'{"zero_optimization": {"stage": 3, "offload_param": {"device": "tape"}}}'
        ),
        "zero-not-object": b'{"zero_optimization": 3}',
        "batch-negative": b'{"train_micro_batch_size_per_gpu": -1}',
        "batch-2e62": b'{"train_micro_batch_size_per_gpu": 4611686018427387904}',
        "not-utf8": b'{"a": "\xff\xfe"}',
        "utf16": '{"zero_optimization": {"stage": 1}}'.encode("utf-16"),
        "over-1mib": b'{"a": "' + b"x" * (2 << 20) + b'"}',
        "nan": b'{"gradient_clipping": NaN, "zero_optimization": {"stage": NaN}}',
    }
    cases += [
        _case(f"deepspeed-{name}", _DS, {"ds.json": content}) for name, content in deepspeed.items()
    ]
    cases.append(_case("deepspeed-fifo", _DS, fifos=("ds.json",)))
    cases.append(_case("deepspeed-folder", _DS, {"ds.json/": b""}))
    cases.append(_case("deepspeed-dev-zero", [*_DS[:-1], "/dev/zero"]))
    cases.append(_case("deepspeed-missing", _DS))

    # tokenizer.json files
    tokenizers = {
        "empty": b"",
        "not-json": b"{model",
        "list": b"[]",
        "deep-nesting": b"[" * 100_000 + b"]" * 100_000,
        "invalid-split-regex": _tokenizer_json(pre_tokenizer=_split("(?<=a")),
        "invalid-split-regex-class": _tokenizer_json(pre_tokenizer=_split("[z-a]")),
        "catastrophic-split-regex": _tokenizer_json(pre_tokenizer=_split("(a+)+$")),
        "unknown-model-type": _tokenizer_json(model={"type": "Magic"}),
        "merge-unknown-token": _tokenizer_json(
            model={"type": "BPE", "vocab": {"a": 0}, "merges": ["a zz"]}
        ),
        "vocab-ids-huge": _tokenizer_json(
            model={"type": "BPE", "vocab": {"a": 2**62}, "merges": []}
        ),
        "vocab-ids-negative": _tokenizer_json(
            model={"type": "BPE", "vocab": {"a": -1}, "merges": []}
        ),
        "huge-int": b'{"version": ' + _HUGE_INT + b"}",
        "binary": bytes(range(256)) * 64,
        "normalizer-unknown": _tokenizer_json(normalizer={"type": "Nope"}),
        "added-token-bad": _tokenizer_json(added_tokens=[{"id": "x"}]),
        # a post-processor naming a special token it does not define: a Rust panic on use
        "post-processor-panics": _tokenizer_json(
            post_processor={
                "type": "TemplateProcessing",
                "single": [
                    {"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                    {"Sequence": {"id": "A", "type_id": 0}},
                ],
                "pair": [{"Sequence": {"id": "A", "type_id": 0}}],
                "special_tokens": {},
            }
        ),
    }
    cases += [
        _case(
            f"tokenizer-json-{name}",
            [*_TOKENS_ARGS, "tokenizer.json"],
            {"tokenizer.json": content},
            ok=None if "catastrophic" in name else False,  # Oniguruma runs it on short text
        )
        for name, content in tokenizers.items()
    ]
    cases.append(
        _case(
            "tokenizer-json-a-good-one",
            [*_TOKENS_ARGS, "tokenizer.json"],
            {"tokenizer.json": _tokenizer_json()},
            ok=True,
        )
    )

    # tokenizers inside GGUF files
    huge_array = _gguf_kv(
        b"tokenizer.ggml.tokens", 9, struct.pack("<I", 4) + struct.pack("<Q", 2**40)
    )
    gguf_tokenizers = {
        "array-2e40": _gguf_file(_ARCH, _TOK_MODEL_GPT2, huge_array),
        "strings-claimed-2e40": _gguf_file(
            _ARCH, _TOK_MODEL_GPT2, _gguf_strings(b"tokenizer.ggml.tokens", [b"a"], claimed=2**40)
        ),
        "no-model": _gguf_file(_ARCH),
        "unknown-model": _gguf_file(_ARCH, _gguf_str(b"tokenizer.ggml.model", b"t5"), _TOKENS),
        "tokens-numbers": _gguf_file(
            _ARCH, _TOK_MODEL_GPT2, _gguf_numbers(b"tokenizer.ggml.tokens", 4, "I", [1, 2, 3])
        ),
        "tokens-missing": _gguf_file(_ARCH, _TOK_MODEL_GPT2),
        "merges-missing": _gguf_file(_ARCH, _TOK_MODEL_GPT2, _TOKENS),
        "merges-malformed": _gguf_file(
            _ARCH, _TOK_MODEL_GPT2, _TOKENS, _gguf_strings(b"tokenizer.ggml.merges", [b"ab"])
        ),
        "pre-unknown": _gguf_file(
            _ARCH,
            _TOK_MODEL_GPT2,
            _TOKENS,
            _gguf_strings(b"tokenizer.ggml.merges", [b"a b"]),
            _gguf_str(b"tokenizer.ggml.pre", b"klingon"),
        ),
        "spm-scores-missing": _gguf_file(_ARCH, _TOK_MODEL_SPM, _TOKENS),
        "spm-scores-short": _gguf_file(
            _ARCH, _TOK_MODEL_SPM, _TOKENS, _gguf_numbers(b"tokenizer.ggml.scores", 6, "f", [0.0])
        ),
        "spm-scores-strings": _gguf_file(
            _ARCH,
            _TOK_MODEL_SPM,
            _TOKENS,
            _gguf_strings(b"tokenizer.ggml.scores", [b"x", b"y", b"z"]),
        ),
        "spm-piece-200k": _gguf_file(
            _ARCH,
            _TOK_MODEL_SPM,
            _gguf_strings(b"tokenizer.ggml.tokens", [b"a", b"a" * 200_000]),
            _gguf_numbers(b"tokenizer.ggml.scores", 6, "f", [0.0, 0.0]),
        ),
        "types-short": _gguf_file(
            _ARCH,
            _TOK_MODEL_SPM,
            _TOKENS,
            _gguf_numbers(b"tokenizer.ggml.scores", 6, "f", [0.0, 0.0, 0.0]),
            _gguf_numbers(b"tokenizer.ggml.token_type", 5, "i", [1]),
        ),
        "hf-json-invalid": _gguf_file(_ARCH, _gguf_str(b"tokenizer.huggingface.json", b"{nope")),
        "hf-json-bad-regex": _gguf_file(
            _ARCH,
            _gguf_str(
                b"tokenizer.huggingface.json", _tokenizer_json(pre_tokenizer=_split("(?<=a"))
            ),
        ),
        "not-gguf": b"GGUX" + b"\0" * 100,
    }
    cases += [
        _case(f"tokenizer-gguf-{name}", [*_TOKENS_ARGS, "model.gguf"], {"model.gguf": content})
        for name, content in gguf_tokenizers.items()
    ]
    cases += [
        _case(
            f"tokens-model-gguf-{name}",
            ["tokens", "hi", "--model", "model.gguf"],
            {"model.gguf": content},
        )
        for name, content in GGUF_CASES[:8]
    ]

    # GGUF headers beyond the first corpus
    flood = _gguf_file(
        _ARCH,
        *[_gguf_strings(b"k%d" % i, [b"ab"] * 4096) for i in range(600)],
    )
    more_gguf = {
        "string-array-flood": flood,
        "numeric-array-flood": _gguf_file(
            _ARCH, *[_gguf_numbers(b"n%d" % i, 0, "B", [1] * 4096) for i in range(2000)]
        ),
        "duplicate-key": _gguf_file(_ARCH, _ARCH),
        "nested-array": _gguf_file(
            _ARCH, _gguf_kv(b"x", 9, struct.pack("<I", 9) + struct.pack("<Q", 1))
        ),
        "alignment-three": _gguf_file(
            _ARCH,
            _gguf_numbers(b"x", 4, "I", [1])[:0]
            + _gguf_kv(b"general.alignment", 4, struct.pack("<I", 3)),
        ),
        "key-not-utf8": _gguf_file(_gguf_str(b"\xff\xfe", b"x")),
        "embedding-length-2e40": _gguf_file(
            _ARCH,
            _gguf_kv(b"llama.embedding_length", 10, struct.pack("<Q", 2**40)),
            _gguf_kv(b"llama.block_count", 4, struct.pack("<I", 2)),
            _gguf_kv(b"llama.attention.head_count", 4, struct.pack("<I", 2)),
        ),
        "block-count-2e24": _gguf_file(
            _ARCH,
            _gguf_kv(b"llama.embedding_length", 4, struct.pack("<I", 64)),
            _gguf_kv(b"llama.block_count", 4, struct.pack("<I", 2**24)),
            _gguf_kv(b"llama.attention.head_count", 4, struct.pack("<I", 2)),
            _gguf_kv(b"llama.feed_forward_length", 4, struct.pack("<I", 128)),
            _gguf_kv(b"llama.context_length", 4, struct.pack("<I", 128)),
            _gguf_kv(b"llama.vocab_size", 4, struct.pack("<I", 100)),
        ),
    }
    cases += [
        _case(f"gguf-{name}", ["params", "model.gguf"], {"model.gguf": content})
        for name, content in more_gguf.items()
    ]

    # text on standard input and in files
    _count = ["tokens", "-", "--tokenizer", "cl100k_base"]
    cases += [
        _case("stdin-dev-zero", _count, stdin="zero"),
        _case("stdin-dev-zero-ids", [*_count, "--ids"], stdin="zero"),
        _case("stdin-nul", _count, stdin=b"hello\0world"),
        _case("stdin-not-utf8", _count, stdin=b"hello \xff world"),
        _case("stdin-truncated-utf8", _count, stdin=b"hello \xe2\x82"),
        _case("stdin-over-whole-cap-ids", [*_count, "--ids"], stdin=b"a" * (9 << 20)),
        _case("stdin-4mb-one-word", _count, stdin=b"a" * (4 << 20), ok=True),
        _case("stdin-1mb-newlines", _count, stdin=b"\n" * (1 << 20), ok=True),
        _case(
            "tokens-file-dev-zero", ["tokens", "--file", "/dev/zero", "--tokenizer", "cl100k_base"]
        ),
        _case(
            "tokens-file-folder",
            ["tokens", "--file", "d", "--tokenizer", "cl100k_base"],
            {"d/": b""},
        ),
        _case(
            "tokens-file-fifo",
            ["tokens", "--file", "p", "--tokenizer", "cl100k_base"],
            fifos=("p",),
        ),
        _case(
            "tokens-file-binary",
            ["tokens", "--file", "b.bin", "--tokenizer", "cl100k_base"],
            {"b.bin": bytes(range(256))},
        ),
        _case("tokens-tokenizer-dev-zero", ["tokens", "hi", "--tokenizer", "/dev/zero"]),
        _case(
            "tokens-tokenizer-fifo", ["tokens", "hi", "--tokenizer", "p.json"], fifos=("p.json",)
        ),
    ]

    # command-line values beyond the first corpus
    bad_utf8 = "\udcff\udcfe"  # what Python makes of the bytes ff fe in an argument
    cases += [
        _case(
            "cli-lora-rank-2e40",
            [
                "train",
                MODEL,
                "--method",
                "lora",
                "--recipe",
                "pure-bf16",
                "--lora-rank",
                str(2**40),
            ],
        ),
        _case(
            "cli-cost-context-1e18", ["cost", MODEL, "--device", "h100", "--context", str(10**18)]
        ),
        _case("cli-cost-prompt-1e18", ["cost", MODEL, "--device", "h100", "--prompt", str(10**18)]),
        _case("cli-inference-context-1e18", ["inference", MODEL, "--context", str(10**18)]),
        _case("cli-train-seq-1e18", ["train", MODEL, "--seq", str(10**18)]),
        _case("cli-batch-5000-digits", ["inference", MODEL, "--batch", "9" * 5000]),
        _case("cli-source-not-utf8", ["params", bad_utf8]),
        _case(
            "cli-tokens-text-not-utf8", ["tokens", f"a{bad_utf8}b", "--tokenizer", "cl100k_base"]
        ),
        _case("cli-dtype-not-utf8", ["inference", MODEL, "--dtype", bad_utf8]),
        _case("cli-source-300-chars", ["params", "x" * 300]),
        _case("cli-source-5000-chars-path", ["params", "./" + "x" * 5000 + ".json"]),
        _case("cli-source-nul", ["params", "llama\x00"]),
        _case("cli-memory-huge", ["inference", MODEL, "--memory", "1e400GB"]),
        _case("cli-memory-5000-digits", ["inference", MODEL, "--memory", "9" * 5000 + "GB"]),
        _case("cli-params-size-5000-digits", ["params", "9" * 5000 + "B"]),
        _case("cli-devices-2e40", ["train", MODEL, "--devices", str(2**40)]),
        _case(
            "cli-plan-top-2e40", ["plan", MODEL, "--device", "h100", "--top", str(2**40)], ok=True
        ),
    ]

    # Hub ids (HF_HUB_OFFLINE=1 in the runner: nothing leaves the machine)
    hub_ids = [
        "no-org/no-model",
        "hf://no-org/no-model",
        "hf://",
        "hf://../../etc/passwd",
        "org/" + "x" * 300,
        "o" * 300 + "/x",
        "org/name@" + "r" * 500,
        "org/name@../../x",
        "org//name",
        "-org/name",
        "org/na me",
        "org/name/extra/parts",
        "hf://org/name@",
    ]
    cases += [_case(f"hub-id-{i}", ["params", ref]) for i, ref in enumerate(hub_ids)]
    return cases


HOSTILE_CASES: list[Case] = _hostile_cases()
