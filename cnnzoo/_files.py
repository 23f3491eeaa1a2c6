"""What stands at a path that is not a regular file, in words, for messages that refuse it."""

from __future__ import annotations

import os
import stat

__all__ = ["kind_of"]

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISREG, "a regular file"),
)


def kind_of(path: str | os.PathLike) -> str:
    """``"a directory"``, ``"a FIFO (named pipe)"``, ``"a socket"``, ... or ``"nothing"``."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "nothing"
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")
