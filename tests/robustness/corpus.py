"""Bad inputs for every entry point, as data: each must give one clear line, exit code 2
(HTTP 4xx), no traceback, bounded memory, and an answer.

The per-reader fuzz tests (tests/unit/test_*_fuzz.py, tests/web/test_schema_fuzz.py) mutate
one parser at a time; this corpus goes through the entry points a person uses.
"""

from __future__ import annotations

import json
import struct
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
