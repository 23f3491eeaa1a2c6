"""One writer at a time: an exclusive lock on a folder or file that a run writes.

Two ``fit`` runs resuming from one ``checkpoint_dir``, or two loggers appending to one CSV file,
would each believe it owns the files and overwrite the other's. :func:`exclusive_lock` takes an
operating-system lock (``flock``) on a small lock file next to what is written; a second writer,
in this process or another, is refused with a message naming the holder. The kernel drops the
lock when its process ends, even with ``kill -9``, so a dead run never blocks the next one.
A process forked while the lock is held (a ``DataLoader`` worker) does not keep it: its copy of
the lock file is closed as it starts, so workers that outlive a killed run by a few seconds
never block the resume.
Where ``flock`` is not available (Windows, some network file systems), the lock file's
process id is checked instead: a lock whose process is no longer running is taken over.

The holder removes the lock file when it lets go, so a finished run leaves no lock file behind.
A writer that opened the file just before it was removed could lock the removed file; so the
lock counts only when the name still leads to the file locked, and is taken again otherwise.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from .._files import kind_of

__all__ = ["FolderInUseError", "exclusive_lock", "lock_path_for"]

LOCK_NAME = ".cnnzoo.lock"
# The lock files this process holds open. A forked child shares each one's open file, and with
# it the flock, until it closes its copy: it closes them at once, so only this process holds.
_HELD_FDS: set[int] = set()


def _close_held_in_child() -> None:
    for fd in list(_HELD_FDS):
        with contextlib.suppress(OSError):
            os.close(fd)  # the child's copy only: the parent's lock stays (no LOCK_UN here)
    _HELD_FDS.clear()


if hasattr(os, "register_at_fork"):  # POSIX; elsewhere children do not inherit locks so
    os.register_at_fork(after_in_child=_close_held_in_child)


class FolderInUseError(RuntimeError):
    """Another process (or another object of this one) is writing the same files."""


def lock_path_for(target: Path, *, folder: bool) -> Path:
    """The lock file guarding ``target``: inside a folder, or next to a file."""
    return target / LOCK_NAME if folder else target.with_name(f".{target.name}.lock")


@contextlib.contextmanager
def exclusive_lock(target: str | os.PathLike, what: str, *, folder: bool) -> Iterator[None]:
    """Hold the lock on ``target`` for the ``with`` block; refuse when someone else holds it.

    Args:
        target: The folder or file to be written (a folder is created).
        what: What is written there, for the message ("the training state").
        folder: ``target`` is a folder (the lock file goes inside) rather than a file.

    Raises:
        FolderInUseError: Another writer holds the lock; the message names its process.
        ValueError: Something other than a lock file (a symbolic link, a FIFO, a folder)
            stands at the lock file's name.
    """
    target = Path(target)
    path = lock_path_for(target, folder=folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(_ATTEMPTS):
        fd = _open_lock(path, target)
        held = False
        try:
            state = _flock(fd)
            if state != "held":
                holder = _read_holder(fd)
                # flock says taken: the holder is alive by definition. Without flock, the
                # process id decides, so the lock of a process that died is taken over.
                if state == "taken" or (holder is not None and _alive(holder[0])):
                    raise _busy(target, what, holder)
            if not _still_named(fd, path):
                continue  # its holder removed it as we opened it: take the new one
            held = True
            _HELD_FDS.add(fd)
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, _describe_self().encode("utf-8"))
            yield
            return
        finally:
            if held:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, 0)  # released: an empty lock file names nobody
                if _still_named(fd, path):
                    with contextlib.suppress(OSError):
                        path.unlink()  # removed before the lock drops: no stray lock file
            _HELD_FDS.discard(fd)
            os.close(fd)  # closing drops the flock
    raise _busy(target, what, None)


# Tries at a lock file removed and created again under our feet before giving up.
_ATTEMPTS = 5


def _open_lock(path: Path, target: Path) -> int:
    """Open (or create) the lock file, never through a link, refusing anything but a file."""
    # Never through a symbolic link: a planted ".cnnzoo.lock" -> ~/.bashrc would be truncated.
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags, 0o666)  # the umask applies, as to any new file
    except (PermissionError, FileNotFoundError):
        raise  # the folder's permissions (or a read-only disk): the system's message says it
    except OSError as error:
        if error.errno == errno.EROFS:
            raise
        raise _not_a_lock(path, target, f"it cannot be opened ({error.strerror})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise _not_a_lock(path, target, f"it is {kind_of(path)}")
    return fd


def _still_named(fd: int, path: Path) -> bool:
    """``path`` still leads to the open file ``fd`` (not removed, nor replaced)."""
    try:
        named, opened = os.lstat(path), os.fstat(fd)
    except OSError:
        return False
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


def _flock(fd: int) -> str:
    """Try the kernel lock: "held", "taken" (by another open file), or "unsupported"."""
    try:
        import fcntl
    except ImportError:  # Windows: the process id in the file decides
        return "unsupported"
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return "taken"
        return "unsupported"  # a file system without flock (ENOLCK, EOPNOTSUPP)
    return "held"


def _read_holder(fd: int) -> tuple[int, str] | None:
    """The process id and description written by the holder, or None when none is readable."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 4096).decode("utf-8", "replace")
    except OSError:
        return None
    first, _, rest = text.partition(" ")
    if not first.isdigit():
        return None
    return int(first), rest.strip()


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True  # this very process: another object of it holds the lock
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists, owned by someone else
    return True


def _describe_self() -> str:
    command = " ".join(sys.argv)[:200] or "python"
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
    return f"{os.getpid()} on {socket.gethostname()} since {started}: {command}\n"


def _not_a_lock(path: Path, target: Path, problem: str) -> ValueError:
    return ValueError(
        f"{str(path)!r}, the lock file of {str(target)!r}, is not a lock file cnnzoo wrote: "
        f"{problem}. Remove it (nothing else uses that name), or write to another place"
    )


def _busy(target: Path, what: str, holder: tuple[int, str] | None) -> FolderInUseError:
    if holder is None:
        who = "another process"
    elif holder[0] == os.getpid():
        who = "this process (another object of it is writing there)"
    elif not _alive(holder[0]):
        # flock is taken but its writer is gone: a process that writer started still holds
        # the lock file open (not one cnnzoo forked: those close it), and ends with it.
        who = (
            f"a process started by process {holder[0]}, which has ended ({holder[1]}),"
            if holder[1]
            else f"a process started by process {holder[0]}, which has ended,"
        )
    else:
        who = f"process {holder[0]} ({holder[1]})" if holder[1] else f"process {holder[0]}"
    return FolderInUseError(
        f"{str(target)!r} is in use: {who} is writing {what} there, and two writers would "
        "overwrite each other's files. Wait for it to finish (or stop it), or write to another "
        "place"
    )
