"""The Python API: each function is a command of the command line, returning a
:class:`~modelmem.app.entry.Result` whose ``to_dict()`` is that command's ``--json``.

Options are named like the command line's long options with ``-`` -> ``_``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["fit", "inference", "measure", "params", "plan", "tokens", "train"]


def _result(data: Any) -> Any:
    from modelmem.app.entry import Result

    return Result(data)


def inference(source: Any, **options: Any) -> Any:
    """The memory to serve ``source``: the JSON of `modelmem inference SOURCE --json`."""
    from modelmem.app.entry import inference_data

    return _result(inference_data(source, options))


def train(source: Any, **options: Any) -> Any:
    """The peak of a training step of ``source``: `modelmem train SOURCE --json`."""
    from modelmem.app.entry import train_data

    return _result(train_data(source, options))


def fit(
    source: Any,
    *,
    device: str,
    count: int = 1,
    reserve: float = 0.05,
    mode: str | None = None,
    **options: Any,
) -> Any:
    """Whether ``source`` fits ``count`` × ``device``: `modelmem fit SOURCE --json`."""
    from modelmem.app.entry import fit_data

    return _result(
        fit_data(source, options, device=device, count=count, reserve=reserve, mode=mode)
    )


def plan(
    source: Any,
    *,
    device: str,
    count: int = 1,
    reserve: float = 0.05,
    goal: str = "inference",
    objective: str | None = None,
    top: int = 5,
    no_offload: bool = False,
    **options: Any,
) -> Any:
    """Configurations of ``source`` that fit: `modelmem plan SOURCE --device D --json`
    (options given are fixed, the rest searched)."""
    from modelmem.app.entry import plan_data

    return _result(
        plan_data(
            source,
            options,
            device=device,
            count=count,
            reserve=reserve,
            goal=goal,
            objective=objective,
            top=top,
            no_offload=no_offload,
        )
    )


def measure(
    source: Any,
    *,
    mode: str | None = None,
    steps: int = 2,
    decode_steps: int | None = None,
    whole: bool = False,
    real: bool = False,
    **options: Any,
) -> Any:
    """The measured tensor peak of the same workload: `modelmem measure SOURCE --json`
    (needs the measure extra)."""
    from modelmem.app.entry import measure_data

    return _result(
        measure_data(
            source,
            options,
            mode=mode,
            steps=steps,
            decode_steps=decode_steps,
            whole=whole,
            real=real,
        )
    )


def params(
    source: Any,
    *,
    dtype: str | None = None,
    optimizer: str = "adamw",
    train_factor: float | None = None,
) -> Any:
    """Parameter count and rule of thumb: `modelmem params SOURCE --json`."""
    from modelmem.app.entry import params_data

    return _result(params_data(source, dtype=dtype, optimizer=optimizer, train_factor=train_factor))


def tokens(
    text: str,
    *,
    tokenizer: str | None = None,
    model: Any = None,
    completion: int = 0,
    kv_dtype: str | None = None,
    pieces: bool = False,
    special: bool = True,
) -> Any:
    """Token ids and count of ``text`` (and the model's limit): `modelmem tokens TEXT --json`."""
    from modelmem.app.models import resolve_model
    from modelmem.app.tokens import choose_tokenizer, text_tokens_data

    resolved = resolve_model(model) if model is not None else None
    tok, note = choose_tokenizer(tokenizer, resolved)
    return _result(
        text_tokens_data(
            text,
            tokenizer=tok,
            model=resolved,
            completion=completion,
            kv_dtype=kv_dtype,
            pieces=pieces,
            special=special,
            notes=(note,) if note else (),
        )
    )
