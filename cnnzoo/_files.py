"""Files cnnzoo reads back: what stands at a path, and one bounded, validated JSON reader.

Every JSON file cnnzoo reads back (a comparison's settings and rows, a leaderboard, a training
state's manifest, a saved folder's ``config.json``) is read here, so none can make it allocate
without bound or recurse without bound: its size is checked before it is read (and the read
stops there even when the size lied, as for a file growing under us), nesting is limited,
integers longer than a 64-bit count are refused while parsing (Python would otherwise build a
400-digit number, or raise a raw error at 4,300 digits), and ``NaN`` and infinities are refused
unless the writer is known to write them.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import Any

__all__ = ["JSON_MAX_BYTES", "kind_of", "loads_json", "read_json"]

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISREG, "a regular file"),
)
# cnnzoo's own JSON files are kilobytes; a manifest with a long history a few hundred.
JSON_MAX_BYTES = 16 * 1024 * 1024
_MAX_DEPTH = 32
_MAX_INT_DIGITS = 20  # 2**64 has 20 digits: every count cnnzoo writes fits


def kind_of(path: str | os.PathLike) -> str:
    """``"a directory"``, ``"a FIFO (named pipe)"``, ``"a socket"``, ... or ``"nothing"``."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "nothing"
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def read_json(
    path: str | os.PathLike,
    what: str,
    *,
    max_bytes: int = JSON_MAX_BYTES,
    allow_nan: bool = False,
) -> Any:
    """Read a JSON file cnnzoo wrote, bounded in size, depth and numbers.

    Args:
        path: The file.
        what: What it should be, for messages ("a comparison's row").
        max_bytes: The largest file accepted.
        allow_nan: Accept ``NaN`` and ``Infinity`` (a training history may hold a NaN loss).

    Returns:
        The parsed value (any JSON kind: the caller checks the kinds it expects).

    Raises:
        FileNotFoundError: Nothing is at ``path``.
        ValueError: Not a regular file, too large, not UTF-8, not JSON, nested too deep, an
            integer too long or a number that is not finite; the message names the file.
    """
    path = Path(path)
    # O_NONBLOCK: a FIFO planted at the name is refused below rather than blocking the open.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {str(path)!r} (expected {what})") from None
    except OSError as error:
        raise ValueError(f"cannot read {str(path)!r} ({what}): {error.strerror}") from None
    with os.fdopen(fd, "rb") as file:
        mode = os.fstat(file.fileno()).st_mode
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
            raise ValueError(f"{str(path)!r} is {kind}, not {what}")
        size = os.fstat(file.fileno()).st_size
        raw = file.read(max_bytes + 1) if size <= max_bytes else b""
    if size > max_bytes or len(raw) > max_bytes:
        raise ValueError(
            f"{str(path)!r} is {max(size, len(raw)):,} bytes long, more than the "
            f"{max_bytes:,} of {what}: it is not a file cnnzoo wrote"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{str(path)!r} is not UTF-8 text, so not {what}") from None
    try:
        return loads_json(text, allow_nan=allow_nan)
    except ValueError as error:
        raise ValueError(f"{str(path)!r} is not {what}: {error}") from None


def loads_json(text: str, *, allow_nan: bool = False) -> Any:
    """Parse JSON text with the bounds of :func:`read_json` (the caller bounds its length).

    Raises:
        ValueError: Not JSON, nested deeper than 32, an integer of more than 20 digits, or
            (unless ``allow_nan``) ``NaN`` or an infinity.
    """
    try:
        value = json.loads(
            text,
            parse_int=_bounded_int,
            parse_float=float if allow_nan else _finite_float,
            parse_constant=float if allow_nan else _constant,
        )
    except RecursionError:
        raise ValueError(f"it is nested deeper than {_MAX_DEPTH} levels") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"it is not valid JSON ({error})") from None
    if _depth(value) > _MAX_DEPTH:
        raise ValueError(f"it is nested deeper than {_MAX_DEPTH} levels")
    return value


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > _MAX_INT_DIGITS:
        raise ValueError(f"it holds an integer of {len(digits.lstrip('-'))} digits")
    return int(digits)


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # 1e999
        raise ValueError(f"it holds {text}, not a finite number")
    return number


def _constant(name: str) -> float:
    raise ValueError(f"it holds {name}, not a finite number")


def _depth(value: Any) -> int:
    """How deep lists and objects nest in ``value`` (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if not isinstance(item, dict | list):
            continue
        children = item.values() if isinstance(item, dict) else item
        deepest = max(deepest, level)
        if deepest > _MAX_DEPTH:
            break
        stack.extend((child, level + 1) for child in children)
    return deepest
