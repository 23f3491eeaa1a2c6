"""The ``cnnzoo`` command: list, inspect, train, evaluate and run the zoo's models.

Every expected failure (unknown model, missing data, bad checkpoint, a full disk, a folder that
cannot be written) prints its whole message, starting with ``cnnzoo: error:``, and exits with
status 2; tracebacks are for bugs only. A closed pipe (``cnnzoo list | head``) ends the command
quietly with status 0, as other Unix tools do.

The commands live in one module per job: :mod:`.browse` (``list``, ``info``, ``summary``),
:mod:`.train` (``train``), :mod:`.compare` (``compare``), :mod:`.inference` (``eval``,
``predict``) and :mod:`.export` (``export``).
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
import warnings
from collections.abc import Sequence
from typing import TextIO

from .._advice import cli_message
from .._version import __version__
from ..training.collapse import TrainingCollapseWarning
from .browse import add_browse_commands
from .compare import add_compare_command
from .errors import CommandError
from .export import add_export_command
from .help import polish_help
from .inference import add_inference_commands
from .train import add_training_commands

__all__ = ["build_parser", "main"]

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser (exposed for the docs and the tests)."""
    parser = argparse.ArgumentParser(
        prog="cnnzoo",
        description="The classic CNNs in PyTorch: list, inspect, train, compare, evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"cnnzoo {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_browse_commands(sub)
    add_training_commands(sub)
    add_compare_command(sub)
    add_inference_commands(sub)
    add_export_command(sub)
    polish_help(parser, sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``cnnzoo`` command.

    Args:
        argv: Arguments without the program name; defaults to ``sys.argv[1:]``.

    Returns:
        The exit status: 0 on success (or when the reader of the output went away), 2 on an
        expected error, 130 when interrupted.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():
            # cnnzoo's own warnings (a collapsing run) read as one line, as the errors do.
            warnings.showwarning = _show_warning
            # They say what fit goes on doing: -W error (PYTHONWARNINGS=error), meant for a
            # program's own code, must not end a training run with a traceback.
            warnings.simplefilter("default", TrainingCollapseWarning)
            args.run(args)
        sys.stdout.flush()  # a closed pipe shows here rather than at exit
    except BrokenPipeError:
        _discard_stdout()
        return 0
    except (CommandError, ValueError, OSError, RuntimeError, FloatingPointError) as error:
        print(f"cnnzoo: error: {describe(error)}", file=sys.stderr)
        return EXIT_USAGE
    except Warning as warning:  # another library's warning, made an error by -W error
        print(
            f"cnnzoo: error: {describe(warning)} (a {type(warning).__name__}, made an error by "
            "-W error or PYTHONWARNINGS)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("cnnzoo: interrupted", file=sys.stderr)
        return 130
    return 0


def describe(error: BaseException) -> str:
    """The whole message of ``error`` in the command's words.

    An error worded for the command line too (:func:`cnnzoo._advice.for_cli`) gives that
    wording: flags and commands instead of Python arguments and functions. The machine's own
    failures (a full disk) get what to do.
    """
    worded = cli_message(error)
    if worded is not None:
        return worded
    if isinstance(error, OSError) and error.errno in _MACHINE_FAILURES and error.strerror:
        where = f": {error.filename}" if error.filename else ""
        return f"{error.strerror.lower()}{where}; {_MACHINE_FAILURES[error.errno]}"
    message = str(error).strip()
    return message or type(error).__name__


# What to do when the machine, not the command, is at fault.
_MACHINE_FAILURES = {
    errno.ENOSPC: "free some space, or write to another disk (--out)",
    errno.EDQUOT: "free some space within your quota, or write elsewhere (--out)",
    errno.EROFS: "the disk is read-only: write somewhere else (--out)",
    errno.EACCES: "check the permissions, or use another path",
    errno.EPERM: "check the permissions, or use another path",
}


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """Print a warning as ``cnnzoo: warning: ...`` (no file name or source line).

    A warning worded for the command line too (a collapsing run's advice) gives that wording.
    """
    worded = cli_message(message) if isinstance(message, Warning) else None
    print(f"cnnzoo: warning: {worded or message}", file=file or sys.stderr)


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so the flush at exit does not hit the closed pipe again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real stdout (captured): nothing to do
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
