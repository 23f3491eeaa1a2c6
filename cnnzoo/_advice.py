"""Errors worded twice: the Python advice for callers of the API, the CLI's for the command.

An error whose fix names a Python argument (``resume=True``, ``max_params``) or function
(``cnnzoo.models.list_models()``) reads wrong at the shell, where the fix is a flag
(``--resume``) or a command (``cnnzoo list``). The raising code knows both fixes; it raises the
Python message and attaches the command's with :func:`for_cli`. ``cnnzoo`` prints
:func:`cli_message` where there is one, the Python API never sees it: one mechanism instead of
rewriting messages after the fact.
"""

from __future__ import annotations

from typing import TypeVar

__all__ = ["cli_message", "for_cli", "resize_flag"]

_ATTRIBUTE = "cnnzoo_cli_message"

E = TypeVar("E", bound=BaseException)


def for_cli(error: E, message: str) -> E:
    """Give ``error`` the message the ``cnnzoo`` command prints instead of ``str(error)``.

    Args:
        error: The exception to raise (its own message is the Python API's).
        message: The same problem with the fix in the command's words: flags and commands.

    Returns:
        ``error`` itself, to be raised: ``raise for_cli(ValueError(...), "...")``.
    """
    setattr(error, _ATTRIBUTE, message)
    return error


def cli_message(error: BaseException) -> str | None:
    """The message for the command line that :func:`for_cli` attached to ``error``, if any."""
    message = getattr(error, _ATTRIBUTE, None)
    return message if isinstance(message, str) else None


def resize_flag(size: tuple[int, int]) -> str:
    """How to resize images to ``size`` at the shell (``--image-size`` makes squares only)."""
    if size[0] == size[1]:
        return f"pass --image-size {size[0]} to resize them"
    return f"resize the images to {size[0]}x{size[1]} (--image-size makes squares only)"
