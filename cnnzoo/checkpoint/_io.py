"""Safe file I/O for checkpoints: atomic writes, device checks and validated, pickle-free reads.

Every reader here either returns plain tensors or raises ``FileNotFoundError`` / ``ValueError``
with a message that names the file and what is wrong with it. A safetensors file is validated
byte-for-byte against its header *before* the safetensors library sees it, so a truncated,
mutated or foreign file can never surface as a raw library error (or a Rust panic).

Longer than 450 lines because the atomic writers (one file, or a folder of files renamed as a
whole) and the validating readers share their temporary-file, umask and lock conventions: split,
a writer and the reader that must recognise its leftovers would live apart.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import stat
import struct
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import torch

from .._files import kind_of
from ._layout import canonicalise_header

__all__ = [
    "atomic_files",
    "atomic_write",
    "read_safetensors",
    "read_state_dict",
    "read_torch_state_dict",
    "write_json_atomic",
    "write_safetensors",
    "write_safetensors_atomic",
]

PathLike = str | os.PathLike

# safetensors' own limit on the JSON header (100 MB); a larger length means "not safetensors".
_MAX_HEADER_BYTES = 100_000_000
_DTYPE_SIZES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E5M2": 1,
    "F8_E4M3": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
}
_ZIP_MAGIC = b"PK\x03\x04"
# torch.save's legacy (pre-1.6) format is a pickle stream: protocol 2+ starts with 0x80.
_PICKLE_MAGIC = b"\x80"
# Without file locks (Windows), a temporary file this old is taken as orphaned by a dead writer.
_ORPHAN_AGE_SECONDS = 3600.0
_UMASK_LOCK = threading.Lock()


# -- writing --------------------------------------------------------------------------------------
@contextlib.contextmanager
def _atomic_replace(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success, fsync it and rename it over ``path``.

    A crash or exception part-way leaves ``path`` untouched (old content or absent), never half
    written: readers see either the previous file or the complete new one. The file gets the
    permissions any program's new file gets (``0o666`` minus the umask), or keeps those of the
    file it replaces; temporary files left by an earlier write that was killed are removed.
    """
    path = Path(path)
    _check_folder_on_the_way(path.parent)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_orphans(path)
    mode = _mode_for(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        _lock(fd)  # while held, a concurrent write to ``path`` leaves this file alone
        yield Path(tmp_name)
        # The writer may have put a new file there (safetensors renames its own temporary over
        # it, created 0600): lock that one too, give it its permissions, and make it durable.
        with open(tmp_name, "rb+") as f:
            _lock(f.fileno())
            os.chmod(tmp_name, mode)  # mkstemp's and safetensors' files are 0600
            os.fsync(f.fileno())  # writers such as safetensors do not fsync
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    finally:
        os.close(fd)
    _fsync_directory(path.parent)


def _check_folder_on_the_way(folder: Path) -> None:
    """Refuse a file (or FIFO, ...) standing where a folder of the destination should be."""
    existing = folder.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(
            f"cannot write into {str(folder)!r}: {str(existing)!r} is {kind_of(existing)}, not a "
            "folder; choose another path"
        )


def _mode_for(path: Path) -> int:
    """The permission bits for a file written at ``path``, as ``open(path, "w")`` gives them.

    Those of the file it replaces, or ``0o666`` minus the umask for a new file.
    """
    with contextlib.suppress(OSError):
        existing = path.lstat()  # a link's target is not the file being replaced
        if stat.S_ISREG(existing.st_mode):
            return stat.S_IMODE(existing.st_mode)
    return 0o666 & ~_current_umask()


def _current_umask() -> int:
    """The process umask, read without changing it where the system allows (Linux)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    # Elsewhere the only way is to set it and put it back; a lock keeps our own threads from
    # interleaving, and 0o022 (not 0) is what another thread's file would get meanwhile.
    with _UMASK_LOCK:
        umask = os.umask(0o022)
        os.umask(umask)
    return umask


def _lock(fd: int) -> None:
    try:
        import fcntl
    except ImportError:  # Windows: orphans are recognised by age instead
        return
    with contextlib.suppress(OSError):  # a file system without locks: nothing to protect
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _remove_orphans(path: Path) -> None:
    """Delete ``.<name>.*.tmp`` files of earlier writes to ``path`` whose writer is gone.

    A writer holds a lock on its temporary file until the rename, and the lock dies with the
    process (even with ``kill -9``), so a file we can lock belongs to nobody. Without locks
    (Windows), only files untouched for an hour are taken as orphans.
    """
    try:
        candidates = list(path.parent.glob(f".{_glob_escape(path.name)}.*.tmp"))
    except OSError:
        return
    for candidate in candidates:
        with contextlib.suppress(OSError):
            if _is_orphan(candidate):
                candidate.unlink()


def _glob_escape(name: str) -> str:
    """``name`` with the glob wildcards ``*?[`` escaped."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def _is_orphan(candidate: Path) -> bool:
    if not candidate.is_file():
        return False
    try:
        import fcntl
    except ImportError:
        return time.time() - candidate.stat().st_mtime > _ORPHAN_AGE_SECONDS
    fd = os.open(candidate, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # a live writer holds it
    finally:
        os.close(fd)
    return True


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = "wb", newline: str | None = None) -> Iterator[IO[Any]]:
    """Open a file that replaces ``path`` atomically once the ``with`` block succeeds.

    A symbolic link at ``path`` is replaced by the file, never followed.

    Args:
        path: Destination file; its parent directories are created.
        mode: ``"wb"`` or ``"w"`` (text, UTF-8).
        newline: For text: as ``open``'s (``""`` for the csv module).

    Yields:
        The open temporary file.
    """
    encoding = None if "b" in mode else "utf-8"
    with (
        _atomic_replace(path) as tmp,
        open(tmp, mode, encoding=encoding, newline=newline) as f,
    ):
        yield f


@contextlib.contextmanager
def atomic_files(paths: list[Path]) -> Iterator[list[Path]]:
    """Yield temporary paths for several files that replace ``paths`` together.

    Every file is written completely (and made durable) before the first one replaces its
    destination, and the renames follow each other at once: a crash while writing leaves every
    old file as it was. Renames of several files cannot be one atomic step on any file system,
    so readers of such a folder also check that its files come from one save (the weights file
    and ``config.json`` of ``save_pretrained`` share a save id).
    """
    with contextlib.ExitStack() as stack:
        # Entered in order, so exited (renamed) in reverse: the last path is renamed first.
        yield [stack.enter_context(_atomic_replace(path)) for path in paths]


def write_safetensors_atomic(
    path: PathLike, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str]
) -> None:
    """Write ``tensors`` and string ``metadata`` to a safetensors file, atomically.

    The tensors must be contiguous CPU tensors that share no memory (see ``_tensors``).
    """
    with _atomic_replace(path) as tmp:
        write_safetensors(tmp, tensors, metadata, shown=path)


def write_safetensors(
    path: PathLike,
    tensors: Mapping[str, torch.Tensor],
    metadata: Mapping[str, str],
    *,
    shown: PathLike | None = None,
) -> None:
    """Write a safetensors file in place (callers make it atomic), with the system's errors.

    safetensors reports a failed write (a full disk, a quota, a read-only disk) as its own
    ``SafetensorError``, not an ``OSError``; it is raised here as the ``OSError`` it is, so
    the message says "no space left on device" and what to do.

    Raises:
        OSError: The file could not be written (``errno`` set, ``filename`` the destination).
    """
    from safetensors.torch import save_file

    try:
        save_file(dict(tensors), str(path), metadata=dict(metadata))
    except Exception as error:
        if type(error).__name__ != "SafetensorError":
            raise
        found = re.search(r"os error (\d+)", str(error))
        code = int(found.group(1)) if found else errno.EIO
        raise OSError(code, os.strerror(code), str(shown or path)) from None
    canonicalise_header(path)


def write_json_atomic(path: PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    text = json.dumps(obj, indent=2, allow_nan=True) + "\n"
    with atomic_write(path, "w") as f:
        f.write(text)


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable on POSIX; not possible (nor needed) on Windows.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# -- devices --------------------------------------------------------------------------------------
# -- reading --------------------------------------------------------------------------------------
def _existing_file(path: PathLike) -> Path:
    path = Path(path)
    if path.is_dir():
        hint = (
            " It looks like a save_pretrained directory: use cnnzoo.from_pretrained(directory)."
            if (path / "model.safetensors").is_file()
            else ""
        )
        raise IsADirectoryError(f"{str(path)!r} is a directory, not a weights file.{hint}")
    check_regular_file(path, "weights file")
    return path


def check_regular_file(path: PathLike, what: str) -> None:
    """Refuse a missing path, or one that is not a regular file, before anything opens it.

    Opening a FIFO for reading would block forever, and a device or socket is never a file
    cnnzoo wrote, so they are named for what they are rather than called missing.

    Raises:
        FileNotFoundError: Nothing exists at ``path``.
        ValueError: ``path`` exists but is not a regular file (a directory, FIFO, device...).
    """
    path = Path(path)
    if path.is_file():
        return
    if path.exists():
        raise ValueError(f"{str(path)!r} is {kind_of(path)}, not a {what}; pass a {what}'s path")
    raise FileNotFoundError(f"no such {what}: {str(path)!r}")


def _invalid(path: Path, problem: str) -> ValueError:
    return ValueError(f"cannot read {str(path)!r}: {problem}")


def inspect_safetensors(path: PathLike) -> tuple[dict[str, Any], dict[str, str]]:
    """Validate a safetensors file's structure without loading its tensors.

    Args:
        path: The file.

    Returns:
        ``(entries, metadata)``: the header's tensor entries and its string metadata.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The file is truncated, corrupted or not a safetensors file (the message
            says which).
    """
    path = _existing_file(path)
    size = path.stat().st_size
    not_safetensors = "it is not a safetensors file (or its first bytes are corrupted)"
    if size < 8:
        raise _invalid(path, f"the file is only {size} bytes long: it is empty or truncated")
    with open(path, "rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        if header_len == 0 or header_len > _MAX_HEADER_BYTES:
            raise _invalid(path, not_safetensors)
        if header_len > size - 8:
            raise _invalid(
                path,
                f"the file is truncated: its header alone should be {header_len} bytes but only "
                f"{size - 8} follow",
            )
        raw_header = f.read(header_len)
    try:
        header = json.loads(raw_header.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise _invalid(path, f"its header is not valid JSON: {not_safetensors}") from None
    if not isinstance(header, dict):
        raise _invalid(path, f"its header is not a JSON object: {not_safetensors}")

    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise _invalid(path, "its __metadata__ is not a mapping of strings to strings")

    data_len = size - 8 - header_len
    spans = []
    for name, entry in header.items():
        spans.append((*_checked_span(path, name, entry), name))
    expected_start = 0
    for begin, end, name in sorted(spans):
        if begin != expected_start:
            raise _invalid(path, f"tensor {name!r} overlaps another or leaves a gap: corrupted")
        expected_start = end
    if expected_start > data_len:
        raise _invalid(
            path,
            f"the file is truncated: its header describes {expected_start} bytes of tensor data "
            f"but only {data_len} are present",
        )
    if expected_start < data_len:
        raise _invalid(
            path, f"{data_len - expected_start} unexpected bytes follow the tensor data: corrupted"
        )
    return header, metadata


def _checked_span(path: Path, name: str, entry: Any) -> tuple[int, int]:
    """Check one header entry (dtype, shape, offsets agree) and return its byte span."""
    bad = _invalid(path, f"the header entry for tensor {name!r} is malformed: corrupted file")
    if not isinstance(entry, dict):
        raise bad
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if dtype not in _DTYPE_SIZES:
        raise _invalid(path, f"tensor {name!r} has unsupported dtype {dtype!r}")
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        raise bad
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(map(_is_count, offsets)):
        raise bad
    begin, end = offsets
    if end < begin or end - begin != math.prod(shape) * _DTYPE_SIZES[dtype]:
        raise bad
    return begin, end


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def read_safetensors(path: PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a safetensors file into CPU tensors after validating it.

    Returns:
        ``(tensors, metadata)``.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The file is not a valid, complete safetensors file.
    """
    from safetensors.torch import load_file

    path = _existing_file(path)
    _, metadata = inspect_safetensors(path)
    try:
        tensors = load_file(str(path), device="cpu")
    except Exception as err:  # already validated; anything left is still the file's fault
        raise _invalid(path, f"safetensors could not decode it ({err})") from None
    except BaseException as err:  # a Rust panic (pyo3's PanicException) is a BaseException
        if type(err).__name__ != "PanicException":
            raise
        raise _invalid(path, "safetensors could not decode it: corrupted file") from None
    return tensors, metadata


def read_torch_state_dict(path: PathLike) -> dict[str, torch.Tensor]:
    """Read a PyTorch ``.pth``/``.pt`` state dict with ``torch.load(weights_only=True)``.

    Accepts a flat mapping of names to tensors, or such a mapping under a ``"state_dict"`` key
    (the layout of many training checkpoints). Nothing is ever unpickled beyond tensors and
    plain containers.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The file is not a readable PyTorch file, or does not hold a state dict.
    """
    path = _existing_file(path)
    try:
        with open(path, "rb") as f:  # a file object: torch.load dispatches on the name
            obj = torch.load(f, map_location="cpu", weights_only=True)
    except Exception as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise _invalid(
            path,
            "it is not a readable PyTorch state dict (torch.load with weights_only=True failed: "
            f"{reason}). cnnzoo never unpickles arbitrary objects; save plain state dicts "
            "(torch.save(model.state_dict(), path)) or use cnnzoo.save",
        ) from None
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    ):
        raise _invalid(
            path,
            "it does not hold a state dict (a mapping of parameter names to tensors); save "
            "model.state_dict(), not the model or a training checkpoint",
        )
    return dict(obj)


def read_state_dict(path: PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read weights from a safetensors file or a PyTorch state-dict file.

    The format is read from the file's first bytes, never from its name: ``cnnzoo.save(model,
    "m.pt")`` writes safetensors, and a torchvision ``.pth`` renamed ``.safetensors`` is still a
    PyTorch file.

    Returns:
        ``(tensors, metadata)``; PyTorch files carry no metadata (an empty dict).

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The file is neither format, or is corrupted.
    """
    path = _existing_file(path)
    kind = sniff_format(path)
    if kind == "torch":
        return read_torch_state_dict(path), {}
    if kind == "unknown":
        raise _invalid(
            path,
            "it is not a safetensors file, and not a readable PyTorch state dict either: its "
            "first bytes match neither format (it is corrupted, or a file of another kind)",
        )
    return read_safetensors(path)


def sniff_format(path: PathLike) -> str:
    """What wrote ``path``, from its first bytes: ``"safetensors"``, ``"torch"`` or ``"unknown"``.

    A safetensors file starts with its header's length (8 bytes) and then ``{``; that is checked
    first, since the length's first byte may look like a pickle's. ``torch.save`` writes a zip
    archive (or, before torch 1.6, a pickle stream). A file too short to tell is left to the
    safetensors reader, which says how long it is.
    """
    with open(path, "rb") as f:
        head = f.read(9)
    if len(head) < 9 or head[8:9] == b"{":
        return "safetensors"
    if head[:4] == _ZIP_MAGIC or head[:1] == _PICKLE_MAGIC:
        return "torch"
    return "unknown"
