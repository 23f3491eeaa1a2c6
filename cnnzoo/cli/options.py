"""Options shared by the commands that read a dataset (``train``, ``eval``, ``compare``)."""

from __future__ import annotations

import argparse
from typing import Any

from ..data.budget import InMemoryChoice

__all__ = ["add_in_memory_option", "in_memory_choice", "report_placement"]

# --in-memory's words, as load_dataset's in_memory values.
IN_MEMORY: dict[str, InMemoryChoice] = {"auto": "auto", "yes": True, "no": False}
IN_MEMORY_HELP = (
    "ImageFolder: keep the decoded images in memory (yes), stream them from disk (no), or auto: "
    "in memory when they fit the budget ($CNNZOO_MEMORY_BUDGET, e.g. 8GB; else half the memory "
    "free to the process, within its container's limit and ulimit -v, and half the free CUDA "
    "memory on a GPU)"
)


def add_in_memory_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--in-memory auto|yes|no`` to a parser (read it back with :func:`in_memory_choice`)."""
    parser.add_argument("--in-memory", choices=list(IN_MEMORY), default="auto", help=IN_MEMORY_HELP)


def in_memory_choice(args: argparse.Namespace) -> InMemoryChoice:
    """``load_dataset``'s ``in_memory`` for the parsed ``--in-memory``."""
    return IN_MEMORY[args.in_memory]


def report_placement(data: Any, split: str) -> None:
    """Say where an image folder's images are (in memory or streamed) and why."""
    placement = getattr(data, "placement", None)
    if placement is not None:
        print(f"{split} images {placement}")
