"""Module-path patterns of LoRA adapters (PEFT's target_modules as a string, rank_pattern,
alpha_pattern, exclude_modules), compiled to match in bounded time. A pure piece of the
model layer: the adapter reader checks patterns with it when it reads them, and the LoRA
pricing in memory/ matches module paths with it.
"""

from __future__ import annotations

import importlib
import re
from functools import lru_cache
from typing import Any, Final, Protocol

from modelmem.errors import InvalidValueError

__all__ = ["MAX_LIST_ENTRIES", "MAX_PATTERNS", "ModuleRegex", "module_regex", "tail_pattern"]

# Regexes in an adapter config (target_modules as a string, rank_pattern, alpha_pattern,
# exclude_modules) are matched against module paths like
# "model.layers.31.self_attn.q_proj"; real patterns are a few dozen characters.
MAX_PATTERN_CHARS: Final = 1_000
# Without RE2, Python's backtracking engine runs the pattern: it is accepted only with at
# most this many repeat operators and none nested, which keeps a match over a module path
# (under 200 characters) polynomial and small.
MAX_FALLBACK_REPEATS: Final = 3
# Entries of rank_pattern and alpha_pattern (each a regex compiled when read), and of the
# name lists (target_modules, exclude_modules, modules_to_save, layers_to_transform):
# PEFT writes one entry per module at most, and a 126-layer model has under 1,000 Linear
# modules.
MAX_PATTERNS: Final = 4_096
MAX_LIST_ENTRIES: Final = 65_536


class ModuleRegex(Protocol):
    """What modelmem asks of a compiled pattern (both ``re2`` and ``re`` provide it)."""

    def match(self, text: str) -> Any: ...

    def fullmatch(self, text: str) -> Any: ...


def _re2() -> Any:
    """Google's RE2 (linear time in the text, no catastrophic backtracking), or None."""
    try:
        return importlib.import_module("re2")
    except ImportError:
        return None


@lru_cache(maxsize=4 * MAX_PATTERNS)
def module_regex(field_name: str, pattern: str) -> ModuleRegex:
    """``pattern`` compiled for matching module paths in bounded time: by RE2 when it is
    installed and supports the pattern, else by :mod:`re` after refusing what can
    backtrack without end (nested or many repeats, backreferences)."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise InvalidValueError(
            field_name, pattern[:60] + "...", f"longer than {MAX_PATTERN_CHARS:,} characters"
        )
    re2 = _re2()
    if re2 is not None:
        options = re2.Options()
        options.log_errors = False  # RE2 would print its own error lines on stderr
        try:
            return re2.compile(pattern, options)  # type: ignore[no-any-return]
        except re2.error:
            pass  # invalid, or Python-only syntax (lookaround): the checked fallback says
    try:
        parsed = _sre_parse(pattern)
    except re.error as e:
        raise InvalidValueError(
            field_name, pattern, f"not a valid regular expression ({e.msg})"
        ) from None
    except RecursionError:
        raise InvalidValueError(field_name, pattern[:60], "nested too deeply") from None
    _refuse_backtracking(field_name, pattern, parsed)
    return re.compile(pattern)


def _sre_parse(pattern: str) -> Any:
    parser = importlib.import_module("re._parser")
    return parser.parse(pattern)


_REPEATS: Final = frozenset({"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"})


def _refuse_backtracking(field_name: str, pattern: str, parsed: Any) -> None:
    """Refuse the shapes that make a backtracking engine exponential or a high polynomial:
    a repeat inside a repeat, backreferences, more than MAX_FALLBACK_REPEATS repeats."""
    repeats = 0

    def walk(items: Any, inside_repeat: bool) -> None:
        nonlocal repeats
        for op, arg in items:
            name = str(op)
            if name in ("GROUPREF", "GROUPREF_EXISTS"):
                raise InvalidValueError(field_name, pattern, "backreferences are not supported")
            if name in _REPEATS:
                low, high, sub = arg
                if high != low:
                    repeats += 1
                    if inside_repeat:
                        raise InvalidValueError(
                            field_name,
                            pattern,
                            "nested repeats can take exponential time; install google-re2 "
                            "or simplify the pattern",
                        )
                walk(sub, inside_repeat or high != low)
            elif name == "SUBPATTERN":
                walk(arg[-1], inside_repeat)
            elif name == "BRANCH":
                for branch in arg[1]:
                    walk(branch, inside_repeat)
            elif name in ("ASSERT", "ASSERT_NOT"):
                walk(arg[1], inside_repeat)

    walk(parsed, False)
    if repeats > MAX_FALLBACK_REPEATS:
        raise InvalidValueError(
            field_name,
            pattern,
            f"more than {MAX_FALLBACK_REPEATS} repeats; install google-re2 or simplify it",
        )


def tail_pattern(pattern: str) -> str:
    """PEFT's get_pattern_key regex: ``pattern`` matching the tail of a module path."""
    return rf"(.*\.)?({pattern})$"
