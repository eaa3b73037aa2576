"""Token questions: count a text's tokens with a tokenizer, and check them against a model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelmem.errors import InvalidValueError, ModelMemError

__all__ = ["DEFAULT_TOKENIZER", "model_tokenizer", "text_tokens_data", "tokens_result"]

# ships offline (the tokens extra) and is what most people mean by "a token" when no model
# is named (OpenAI's GPT-3.5/4 encoding)
DEFAULT_TOKENIZER = "cl100k_base"


def model_tokenizer(model: Any, *, local_files: bool = True) -> Any:
    """The tokenizer a model brings: the one in its GGUF header, a tokenizer.json beside its
    config, else the Hub tokenizer the catalogue names, from the local cache.
    ``local_files=False`` (the web app) never looks beside the model's origin: a pasted
    config has none, and the server's files are not the client's."""
    from modelmem.tokenization import TokenizerError, load_tokenizer

    origin = Path(model.origin)
    if local_files and origin.is_file() and origin.suffix.lower() == ".gguf":
        return load_tokenizer(str(origin))  # the tokenizer embedded in the GGUF header
    if local_files and origin.exists():
        folder = origin if origin.is_dir() else origin.parent
        if (folder / "tokenizer.json").is_file():
            return load_tokenizer(str(folder / "tokenizer.json"))
    if not model.tokenizer:
        raise ModelMemError(
            f"tokenizer: --tokenizer is needed (model {model.label!r} names no tokenizer "
            "and has no tokenizer.json beside its config)"
        )
    try:
        return load_tokenizer(model.tokenizer)
    except TokenizerError as e:
        raise ModelMemError(
            f"tokenizer: --tokenizer is needed (model {model.label!r} uses "
            f"{model.tokenizer!r}: {e.problem})"
        ) from None


def choose_tokenizer(
    tokenizer: str | None, model: Any, *, local_files: bool = True
) -> tuple[Any, str | None]:
    """The tokenizer asked for, else the model's, else cl100k_base (and a note saying so)."""
    from modelmem.tokenization import load_tokenizer

    if tokenizer is not None:
        return load_tokenizer(tokenizer), None
    if model is not None:
        return model_tokenizer(model, local_files=local_files), None
    note = f"tokenizer {DEFAULT_TOKENIZER} (the default; --tokenizer or --model to choose)"
    return load_tokenizer(DEFAULT_TOKENIZER), note


def tokens_result(
    tok: Any,
    count: int,
    ids: list[int] | None,
    model: Any,
    completion: int,
    kv_dtype: str | None,
    show_pieces: bool,
    stream_info: dict[str, Any] | None = None,
    notes: tuple[str, ...] = (),
) -> dict[str, Any]:
    """What `tokens --json` prints (the web and Python APIs return the same for a text)."""
    from modelmem.tokenization import token_budget

    data: dict[str, Any] = {
        "tokenizer": tok.name,
        "tokenizer_kind": tok.kind,
        "tokenizer_origin": tok.origin,
        "count": count,
        "ids": ids,
    }
    if show_pieces and ids is not None:
        data["pieces"] = tok.pieces(ids)
    if stream_info is not None:
        data["stream"] = stream_info
    if tok.notes or notes:
        data["notes"] = [*notes, *tok.notes]
    if model is not None:
        from modelmem.app.formats import cache_format

        kv = cache_format(kv_dtype, "transformers").name if kv_dtype else "bf16"
        budget = token_budget(model.spec, count, completion, kv_dtype=kv)
        data["model"] = model.label
        data.update(budget.to_dict())
    return data


def text_tokens_data(
    text: str,
    *,
    tokenizer: Any,
    model: Any = None,
    completion: int = 0,
    kv_dtype: str | None = None,
    pieces: bool = False,
    special: bool = True,
    notes: tuple[str, ...] = (),
) -> dict[str, Any]:
    """`tokens TEXT --json` for a loaded tokenizer and a resolved model (or None)."""
    if text == "":
        raise InvalidValueError("text", text, "empty")
    if model is None and completion != 0:
        raise InvalidValueError("completion", completion, "needs --model")
    ids = tokenizer.encode(text, special=special)
    return tokens_result(tokenizer, len(ids), ids, model, completion, kv_dtype, pieces, None, notes)
