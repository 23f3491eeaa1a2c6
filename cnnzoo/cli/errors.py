"""The exception a command raises for an expected failure (reported without a traceback)."""

from __future__ import annotations

__all__ = ["CommandError"]


class CommandError(Exception):
    """An expected failure of a command: ``main`` prints its message and exits with status 2."""
