"""The ``cnnzoo`` command: list, inspect, train, evaluate and run the zoo's models.

Every expected failure (unknown model, missing data, bad checkpoint) prints a message starting
with ``cnnzoo: error:`` and exits with status 2; tracebacks are for bugs only.

The commands live in one module per job: :mod:`.browse` (``list``, ``info``, ``summary``),
:mod:`.train` (``train``) and :mod:`.inference` (``eval``, ``predict``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .._version import __version__
from .browse import add_browse_commands
from .errors import CommandError
from .help import polish_help
from .inference import add_inference_commands
from .train import add_training_commands

__all__ = ["build_parser", "main"]

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser (exposed for the docs and the tests)."""
    parser = argparse.ArgumentParser(
        prog="cnnzoo", description="The classic CNNs in PyTorch: list, inspect, train, evaluate."
    )
    parser.add_argument("--version", action="version", version=f"cnnzoo {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_browse_commands(sub)
    add_training_commands(sub)
    add_inference_commands(sub)
    polish_help(parser, sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``cnnzoo`` command.

    Args:
        argv: Arguments without the program name; defaults to ``sys.argv[1:]``.

    Returns:
        The exit status: 0 on success, 2 on an expected error.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except (CommandError, ValueError, OSError, RuntimeError, FloatingPointError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"cnnzoo: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("cnnzoo: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
