"""Where ``fit`` writes, checked when its options are, before any data is read or step taken.

A checkpoint path that is a directory, a state directory that is a file, a folder this process
cannot write to, or a state directory holding another run's state would otherwise surface only
after the first epoch, or (the last) silently overwrite that run.
"""

from __future__ import annotations

import os
from pathlib import Path

from .._advice import for_cli
from ..checkpoint import peek_training_state

__all__ = ["check_outputs", "check_writable", "refuse_overwrite"]


def check_outputs(
    checkpoint: str | os.PathLike | None,
    checkpoint_dir: str | os.PathLike | None,
    resume: bool,
) -> None:
    """Refuse outputs that cannot be written, or would overwrite another run's state.

    Args:
        checkpoint: ``fit``'s ``checkpoint`` (a file path, possibly with ``{epoch}`` fields).
        checkpoint_dir: ``fit``'s ``checkpoint_dir``.
        resume: ``fit``'s ``resume``.

    Raises:
        ValueError: ``checkpoint`` is a directory, ``checkpoint_dir`` a file, or
            ``checkpoint_dir`` holds a state and ``resume`` is off (or an incomplete one).
        PermissionError: A folder that cannot be written to.
    """
    if checkpoint is not None:
        path = Path(os.fspath(checkpoint)).expanduser()
        if "{" not in str(path):  # a Keras-style template names files yet to come
            if path.is_dir():
                raise ValueError(
                    f"checkpoint={str(path)!r} is a directory; checkpoint is the file that "
                    f"receives the best weights, e.g. {str(path / 'best.safetensors')!r} (to keep "
                    "a resumable training state in a directory, pass checkpoint_dir=)"
                )
            if path.exists() and not path.is_file():
                raise ValueError(
                    f"checkpoint={str(path)!r} is not a regular file (a FIFO, device or "
                    "socket); pass the path of a .safetensors file"
                )
        check_writable(path.parent, "checkpoint")
    if checkpoint_dir is not None:
        directory = Path(os.fspath(checkpoint_dir)).expanduser()
        if directory.exists() and not directory.is_dir():
            raise ValueError(
                f"checkpoint_dir={str(directory)!r} is a file, not a directory; pass the "
                "directory that keeps the training state (it is created if needed), or "
                "checkpoint= for a file of best weights"
            )
        check_writable(directory, "checkpoint_dir")
        found = peek_training_state(directory)  # also refuses tensors without a manifest
        if found is not None and not resume:
            raise refuse_overwrite(directory, found.epoch)


def check_writable(directory: Path, what: str) -> None:
    """Refuse a directory (existing or to be created) this process cannot write in.

    The nearest existing folder on the way decides: it must be a directory, and writable.

    Raises:
        ValueError: A file stands where a folder on the way should be.
        PermissionError: The folder cannot be written to (permissions, a read-only disk).
    """
    existing = Path(directory).absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(
            f"cannot write {what} under {str(directory)!r}: {str(existing)!r} is a file, not a "
            "folder; choose another path"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(
            f"cannot write {what} to {str(directory)!r}: {str(existing)!r} is not writable "
            "(permissions, or a read-only disk); choose a folder you can write to"
        )


def refuse_overwrite(directory: str | os.PathLike, epoch: int) -> ValueError:
    """The error refusing to start afresh over the state of another run in ``directory``."""
    where = str(Path(directory))
    found = (
        f"{where!r} already holds the training state of a run (finished up to epoch "
        f"{epoch + 1}); starting afresh would overwrite it."
    )
    error = ValueError(
        f"{found} Pass resume=True to continue that run, or delete {where!r} or choose another "
        "checkpoint_dir to start a new one"
    )
    return for_cli(
        error,
        f"{found} Pass --resume to continue that run, or delete {where!r} or choose another "
        "--out to start a new one",
    )
