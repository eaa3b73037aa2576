"""Where a model comes from: a catalogue name, a config.json, a safetensors checkpoint, a
GGUF file, a PEFT adapter, a Hugging Face Hub repo, or a size.

``resolve(text)`` tries, in order: an existing path (a folder, ``config.json``,
``*.safetensors`` / ``model.safetensors.index.json``, ``*.gguf``, ``adapter_config.json``),
a catalogue name (or alias or Hub id in the catalogue), a Hub repo id (``org/name``,
``org/name@revision``; ``hf://org/name`` skips the catalogue), then a plain parameter
count such as ``7B``. Anything else is an error that says what SOURCE may be.

Where weight files are read, their headers are the ground truth for the weights: the
checkpoint's parameter count is set beside the config's, and a mismatch is reported.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelmem.errors import InvalidValueError, ModelMemError, SourceError, shown
from modelmem.model.params import ParamCount, count_params
from modelmem.model.sources.catalogue import find_entry, spec_from_entry
from modelmem.model.sources.hf_config import read_config_file, spec_from_config
from modelmem.model.spec import ModelSpec
from modelmem.units import parse_count

if TYPE_CHECKING:  # imported where used: a catalogue name needs neither at start-up
    from modelmem.model.adapter import AdapterConfig
    from modelmem.model.checkpoint import Checkpoint

ADAPTER_FILE = "adapter_config.json"
HUB_PREFIX = "hf://"


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    """A model as the commands see it: an architecture if known, and its counts."""

    label: str
    kind: str  # "catalogue" | "config" | "size"
    spec: ModelSpec | None  # None for a plain size: no architecture is known
    params: ParamCount
    origin: str  # where the description came from
    context_length: int | None = None
    tokenizer: str | None = None
    config: dict[str, Any] | None = None  # the config.json mapping the spec was read from
    checkpoint: Checkpoint | None = None  # the weight files' headers, where they were read
    adapter: AdapterConfig | None = None  # a PEFT LoRA adapter on this (base) model
    notes: tuple[str, ...] = ()
    shipped_dtype: str | None = None  # weight scheme of the release (catalogue), if stated
    shipped_note: str | None = None  # one line naming that scheme and its source


def _from_spec(
    spec: ModelSpec,
    kind: str,
    origin: str,
    tokenizer: str | None,
    config: dict[str, Any],
    checkpoint: Checkpoint | None = None,
    notes: tuple[str, ...] = (),
) -> ResolvedModel:
    params = count_params(spec)
    notes = (*spec.notes, *notes)  # the spec's own: which path counted it, defaults applied
    if checkpoint is not None:
        from modelmem.model.sources.safetensors_file import compare_counts

        notes = (*notes, compare_counts(checkpoint, params.total).note(), *checkpoint.notes)
    return ResolvedModel(
        label=spec.name,
        kind=kind,
        spec=spec,
        params=params,
        origin=origin,
        context_length=spec.context_length if spec.attention is not None else None,
        tokenizer=tokenizer,
        config=config,
        checkpoint=checkpoint,
        notes=notes,
    )


def size_only(total: int, label: str, checkpoint: Checkpoint | None = None) -> ResolvedModel:
    """A plain parameter count: enough for rules of thumb, not for a breakdown."""
    params = ParamCount(total=total, active=total, components=(("total", total),), text=total)
    kind = "size" if checkpoint is None else checkpoint.file_format
    return ResolvedModel(
        label=label, kind=kind, spec=None, params=params, origin=label, checkpoint=checkpoint
    )


# An adapter's base model may itself be an adapter; PEFT never stacks them deeper than
# this, and a chain that comes back to an adapter already on it is a loop.
MAX_ADAPTER_CHAIN = 4


# The adapters whose base models led to the source being resolved, outermost first.
_ADAPTER_CHAIN: ContextVar[tuple[str, ...]] = ContextVar("adapter_chain", default=())


def resolve(source: str, *, allow_hub: bool = True, local_files: bool = True) -> ResolvedModel:
    """Resolve SOURCE text to a model (``allow_hub=False``: never touch the network;
    ``local_files=False``: never read a file or folder the text names, as in the web app)."""
    text = source.strip()
    if not text:
        raise InvalidValueError("source", source, "empty")
    path = Path(text).expanduser()
    if local_files and not text.startswith(HUB_PREFIX) and _exists(path):
        return _from_path(path, allow_hub)
    entry = find_entry(text) if not text.startswith(HUB_PREFIX) else None
    if entry is not None:
        model = _from_spec(
            spec_from_entry(entry), "catalogue", entry.source, entry.tokenizer, entry.config
        )
        return replace(model, shipped_dtype=entry.shipped_dtype, shipped_note=entry.shipped_note)
    from modelmem.model.sources.hub import parse_hub_ref

    ref = parse_hub_ref(text)
    if ref is not None and (text.startswith(HUB_PREFIX) or "/" in text):
        if not allow_hub:
            raise SourceError(text, "not a catalogue model, and Hub access is off here")
        return _from_hub(ref)
    if any(sep in text for sep in ("/", "\\")) or text.endswith((".json", ".gguf", ".safetensors")):
        raise SourceError(text, "no such file or folder, and not a catalogue model or Hub repo id")
    try:
        return size_only(parse_count(text, field="source"), text)
    except ModelMemError:
        from modelmem.errors import closest_names, did_you_mean
        from modelmem.model.sources.catalogue import load_catalogue

        close = closest_names(text, [e.name for e in load_catalogue().values()])
        hint = f"{did_you_mean(close)} " if close else ""
        raise InvalidValueError(
            "source",
            text,
            f"{hint}not a config.json, model folder, .safetensors, .gguf, adapter, catalogue "
            "model (`modelmem models` lists them all), Hub repo id or size such as 7B",
        ) from None


# --------------------------------------------------------------------------- local paths


def _from_path(path: Path, allow_hub: bool) -> ResolvedModel:
    from modelmem.model.sources.adapter import read_adapter_file

    if path.is_file() and path.suffix.lower() == ".gguf":
        return _from_gguf(path)
    if path.is_file() and path.name == ADAPTER_FILE:
        return _with_adapter(read_adapter_file(path), _key(path), allow_hub)
    if path.is_dir():
        if not (path / "config.json").is_file() and (path / ADAPTER_FILE).is_file():
            return _with_adapter(read_adapter_file(path), _key(path / ADAPTER_FILE), allow_hub)
        ggufs = sorted(path.glob("*.gguf"))
        if not (path / "config.json").is_file() and len(ggufs) == 1:
            return _from_gguf(ggufs[0])
    from modelmem.model.sources.safetensors_file import is_safetensors_path

    if path.is_file() and is_safetensors_path(path):
        return _from_safetensors(path)
    config = read_config_file(path)
    folder = path if path.is_dir() else path.parent
    name = folder.name or "model"
    spec = spec_from_config(config, name=name, where=str(path))
    checkpoint = _local_checkpoint(folder, config) if _has_weights(folder) else None
    return _from_spec(spec, "config", str(path), None, config, checkpoint)


def _has_weights(folder: Path) -> bool:
    from modelmem.model.sources.safetensors_file import is_safetensors_path

    return is_safetensors_path(folder)


def _local_checkpoint(target: Path, config: dict[str, Any] | None) -> Checkpoint:
    from modelmem.model.sources.safetensors_file import (
        quantization_from_config,
        read_local_checkpoint,
    )

    return read_local_checkpoint(target, quantization_from_config(config))


def _from_safetensors(path: Path) -> ResolvedModel:
    """A .safetensors file or index: with its folder's config.json where there is one."""
    config_path = path.parent / "config.json"
    if config_path.is_file():
        config = read_config_file(config_path)
        spec = spec_from_config(config, name=path.parent.name or "model", where=str(config_path))
        checkpoint = _local_checkpoint(path, config)
        return _from_spec(spec, "safetensors", str(path), None, config, checkpoint)
    checkpoint = _local_checkpoint(path, None)
    model = size_only(checkpoint.total_params, path.name, checkpoint)
    note = "no config.json beside it: parameters from the headers, no architecture"
    return _replace(model, origin=str(path), notes=(note, *checkpoint.notes))


def _from_gguf(path: Path) -> ResolvedModel:
    try:
        from modelmem.model.sources.gguf_file import read_gguf
    except ImportError as e:
        raise SourceError(
            str(path), f"reading GGUF needs the gguf package: pip install 'modelmem[gguf]' ({e})"
        ) from None
    gguf = read_gguf(path)
    model = _from_spec(
        gguf.spec, "gguf", str(path), gguf.tokenizer_model, gguf.config, gguf.checkpoint
    )
    return _replace(model, context_length=gguf.context_length)


def _exists(path: Path) -> bool:
    """Whether ``path`` names something; a name too long for the system names nothing."""
    try:
        return path.exists()
    except (OSError, ValueError):  # ENAMETOOLONG, or a NUL byte in the name
        return False


def _key(path: Path) -> str:
    """One name per adapter file, however the path to it is spelled."""
    try:
        return str(path.resolve())
    except (OSError, RuntimeError):  # a symlink loop: the spelling will do
        return str(path)


def _with_adapter(adapter: AdapterConfig, key: str, allow_hub: bool) -> ResolvedModel:
    """The adapter's base model (a path, the catalogue or the Hub), adapter on."""
    base = adapter.base_model
    if base is None:
        raise SourceError(adapter.origin, "base_model_name_or_path is not set: name the base model")
    chain = _ADAPTER_CHAIN.get()
    if key in chain:
        raise SourceError(
            adapter.origin,
            f"base model {shown(repr(base))}: adapters whose base models form a loop",
        )
    if len(chain) >= MAX_ADAPTER_CHAIN:
        raise SourceError(
            adapter.origin,
            f"base model {shown(repr(base))}: more than {MAX_ADAPTER_CHAIN} adapters stacked",
        )
    token = _ADAPTER_CHAIN.set((*chain, key))
    try:
        model = resolve(base, allow_hub=allow_hub)
    except ModelMemError as e:
        raise SourceError(adapter.origin, f"base model {shown(repr(base))}: {e}") from None
    finally:
        _ADAPTER_CHAIN.reset(token)
    if model.spec is None:
        raise SourceError(adapter.origin, f"base model {shown(repr(base))} has no architecture")
    return _replace(model, kind=f"adapter+{model.kind}", adapter=adapter)


# ------------------------------------------------------------------------------ the Hub


def _from_hub(ref: Any) -> ResolvedModel:
    from modelmem.model.sources.adapter import adapter_from_dict
    from modelmem.model.sources.hub import read_hub_repo
    from modelmem.model.sources.safetensors_file import (
        checkpoint_from_metadata,
        quantization_from_config,
    )

    files = read_hub_repo(ref)
    if files.config is None:
        assert files.adapter_config is not None
        adapter = adapter_from_dict(files.adapter_config, origin=f"{ref}/{ADAPTER_FILE}")
        return _with_adapter(adapter, f"{HUB_PREFIX}{ref}", allow_hub=True)
    spec = spec_from_config(files.config, name=ref.repo_id, where=f"{ref}/config.json")
    checkpoint = None
    if files.safetensors is not None:
        quant = quantization_from_config(files.config)
        checkpoint = checkpoint_from_metadata(files.safetensors, str(ref), quant)
    return _from_spec(spec, "hub", str(ref), None, files.config, checkpoint, files.notes)


def _replace(model: ResolvedModel, **changes: Any) -> ResolvedModel:
    from dataclasses import replace

    return replace(model, **changes)
