"""A collapse alert's message in the ``cnnzoo`` command's words: flags instead of arguments.

``fit`` records and warns its alerts in the Python API's words (``lr=``,
``History.alerts``), and checks a saved alert against them when it reads one back; the command
prints the same alert with the fixes it takes (``--lr``, ``--epochs``).
"""

from __future__ import annotations

import re

from .collapse import MESSAGE_END

__all__ = ["cli_wording"]

# The advice of fit's alert messages (see .collapse) in the command's words.
_CLI_WORDS = (
    (re.compile(r"try lr=(\S+?),"), r"try --lr \1,"),
    (re.compile(r"given by lr="), "given by --lr"),
    (re.compile(r"\(more epochs or data\)"), "(a larger --epochs, or more data)"),
    (
        re.compile(r"or pick a rate with (cnnzoo\.lr_find\(\w+, \w+\))"),
        r"or pick a --lr with \1 in Python",
    ),
    (
        re.compile(r"or find one with (cnnzoo\.lr_find\(\w+, \w+\))"),
        r"or find one with \1 in Python",
    ),
    (
        re.compile(re.escape(MESSAGE_END)),
        "Training goes on as asked; the run's metrics record it.",
    ),
)


def cli_wording(message: str) -> str:
    """An alert's message as the ``cnnzoo`` command prints it: ``--lr``, not ``lr=``.

    The message ``fit`` records (and checks when it reads one back) stays the Python API's.
    """
    for pattern, replacement in _CLI_WORDS:
        message = pattern.sub(replacement, message)
    return message
