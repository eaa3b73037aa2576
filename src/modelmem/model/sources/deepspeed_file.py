"""Reading a DeepSpeed config file (``ds_config.json``): bounded and refused in one line.
What its keys mean for a training step is :mod:`modelmem.memory.deepspeed`'s business."""

from __future__ import annotations

import json
import os
import stat
from typing import Any, Final

from modelmem.errors import SourceError

__all__ = ["MAX_DEEPSPEED_CONFIG_BYTES", "read_deepspeed_config"]

MAX_DEEPSPEED_CONFIG_BYTES: Final = 1 << 20  # real configs are a few kilobytes


def read_deepspeed_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A ``ds_config.json`` file parsed into a mapping, refused in one line when it is not a
    regular file (a FIFO would block the read), over MAX_DEEPSPEED_CONFIG_BYTES, not UTF-8
    JSON, nested too deeply, holds an integer of over 4,300 digits, or is not an object."""
    where = os.fspath(path)
    try:
        # O_NONBLOCK: opening a FIFO with no writer must not wait for one
        fd = os.open(where, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise SourceError(where, f"cannot read: {exc.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SourceError(where, "not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as f:
            raw = f.read(MAX_DEEPSPEED_CONFIG_BYTES + 1)
    except OSError as exc:
        raise SourceError(where, f"cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(raw) > MAX_DEEPSPEED_CONFIG_BYTES:
        raise SourceError(where, f"DeepSpeed config over {MAX_DEEPSPEED_CONFIG_BYTES:,} bytes")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise SourceError(where, "not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise SourceError(where, f"not JSON: {exc.msg} at line {exc.lineno}") from None
    except RecursionError:
        raise SourceError(where, "not JSON: nested too deeply") from None
    except ValueError:  # an integer of more digits than Python converts
        raise SourceError(where, "not JSON: an integer of over 4,300 digits") from None
    if not isinstance(data, dict):
        raise SourceError(where, "a DeepSpeed config must be a JSON object")
    return data
