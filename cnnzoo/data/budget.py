"""Whether an image folder's decoded images are kept in memory or streamed from disk.

``load_dataset(folder, in_memory="auto")`` keeps the decoded ``uint8`` images in memory when
they fit a budget and streams them from disk otherwise. The budget, in bytes:

* ``memory_budget=`` when given (bytes, or a size such as ``"2GB"``, ``"512MiB"``);
* else the environment variable ``CNNZOO_MEMORY_BUDGET`` (same forms);
* else half of the memory this process can still take: the host's available memory
  (``MemAvailable``), or less where the process is confined: its container's memory limit
  (cgroup v2 ``memory.max`` or v1 ``memory.limit_in_bytes``, less what the container uses) or
  its address-space limit (``ulimit -v``, ``RLIMIT_AS``, less what the process has mapped);
  and, when ``fit`` would put the images on a CUDA device (one is available), also at most half
  of that device's free memory: the other half is left to the model, its activations and the
  optimizer.

Should the in-memory tensor still fail to allocate, an "auto" folder is streamed instead (the
reason says so): streaming never needs the whole folder in memory.

The choice and its reason are kept on the dataset (``placement``; shown in its ``repr``) and
logged on the ``cnnzoo.data`` logger.
"""

from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

__all__ = ["BUDGET_ENV", "DEVICE_SHARE", "HOST_SHARE", "InMemoryChoice", "Placement", "parse_size"]

BUDGET_ENV = "CNNZOO_MEMORY_BUDGET"
HOST_SHARE = 0.5
DEVICE_SHARE = 0.5

InMemoryChoice = bool | Literal["auto"]
log = logging.getLogger("cnnzoo.data")

_UNITS = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "kb": 10**3,
    "m": 10**6,
    "mb": 10**6,
    "g": 10**9,
    "gb": 10**9,
    "t": 10**12,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


@dataclass(frozen=True)
class Placement:
    """Where a folder's decoded images live, and why.

    Attributes:
        in_memory: True: one ``uint8`` tensor in memory; False: decoded from disk per batch.
        reason: One sentence saying which was chosen and why.
    """

    in_memory: bool
    reason: str

    def __str__(self) -> str:
        return self.reason


def parse_size(value: int | float | str, what: str = BUDGET_ENV) -> int:
    """A size in bytes from ``1000000``, ``"1e9"``, ``"2GB"``, ``"512MiB"`` or ``"1.5 g"``.

    Raises:
        ValueError: Not a size, or a negative one.
    """
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a size in bytes (e.g. 2GB, 512MiB), got {value!r}")
    if isinstance(value, int | float):
        number, unit = float(min(value, _MAX_BYTES)), ""  # 10**400 cannot become a float
    else:
        found = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][0-9]+)?)\s*([a-zA-Z]*)\s*", str(value))
        if found is None or found.group(2).lower() not in _UNITS:
            raise ValueError(
                f"{what} must be a size in bytes such as 2000000000, 2GB or 512MiB, got {value!r}"
            )
        number, unit = float(found.group(1)), found.group(2).lower()
    if not math.isfinite(number) or number * _UNITS[unit] >= _MAX_BYTES:
        raise ValueError(
            f"{what} must be a finite size in bytes below 2**63 (e.g. 2GB, 512MiB), got "
            f"{value!r:.80}; leave it unset for half of the free memory"
        )
    if number < 0:
        raise ValueError(f"{what} must not be negative, got {value!r}")
    return int(number * _UNITS[unit])


def place(
    in_memory: InMemoryChoice,
    needed: int,
    count: int,
    *,
    budget: int | float | str | None = None,
    device: str | torch.device | None = None,
) -> Placement:
    """Decide where ``count`` decoded images of ``needed`` bytes in all should live.

    Args:
        in_memory: True, False, or "auto" (compare ``needed`` with the budget).
        needed: Bytes the decoded images take as one ``uint8`` tensor.
        count: How many images (for the message).
        budget: The budget in bytes (or a size string); None: see the module docstring.
        device: Where ``fit`` will put in-memory images; None: a CUDA device when one is
            available (``fit``'s ``device="auto"``), else the host only.

    Returns:
        The :class:`Placement`.

    Raises:
        ValueError: ``in_memory`` is not True, False or "auto"; a budget that is not a size.
    """
    size = _bytes(needed)
    if in_memory is True:
        return _logged(Placement(True, f"in memory (in_memory=True): {count} images, {size}"))
    if in_memory is False:
        return _logged(
            Placement(False, f"streamed from disk (in_memory=False): {count} images, {size}")
        )
    if in_memory != "auto":
        raise ValueError(f"in_memory must be True, False or 'auto', got {in_memory!r}")
    limit, source = _budget(budget, device)
    if needed <= limit:
        reason = (
            f"in memory: {count} images need {size} decoded, within the budget of "
            f"{_bytes(limit)} ({source})"
        )
        return _logged(Placement(True, reason))
    reason = (
        f"streamed from disk: {count} images need {size} decoded, over the budget of "
        f"{_bytes(limit)} ({source}); in_memory=True (--in-memory yes) or a larger "
        f"{BUDGET_ENV} keeps them in memory"
    )
    return _logged(Placement(False, reason))


def _budget(budget: int | float | str | None, device: str | torch.device | None) -> tuple[int, str]:
    """The budget in bytes and where it came from."""
    if budget is not None:
        return parse_size(budget, "memory_budget"), "memory_budget"
    if os.environ.get(BUDGET_ENV, "").strip():
        return parse_size(os.environ[BUDGET_ENV]), BUDGET_ENV
    host, where = memory_within_limits()
    limit, source = int(host * HOST_SHARE), f"{HOST_SHARE:.0%} of the {_bytes(host)} {where}"
    free = _free_device_memory(device)
    if free is not None and int(free * DEVICE_SHARE) < limit:
        limit = int(free * DEVICE_SHARE)
        source = f"{DEVICE_SHARE:.0%} of the {_bytes(free)} free on the CUDA device"
    return limit, source


def available_host_memory() -> int:
    """Bytes of host memory available to new allocations (Linux ``MemAvailable``)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:  # other Unixes: free physical pages
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30  # unknown (Windows): assume a modest machine


def memory_within_limits() -> tuple[int, str]:
    """Bytes this process can still allocate, and what bounds them, in words.

    The least of the host's available memory, the room left under the container's memory
    limit (cgroup v2 or v1), and the room left under the process's address-space limit
    (``RLIMIT_AS``): a container of 1 GB on a host with 64 GB free has 1 GB, less what it uses.
    """
    choices = [(available_host_memory(), "host memory free")]
    container = _cgroup_room()
    if container is not None:
        choices.append((container, "free under the container's memory limit (cgroup)"))
    address_space = _address_space_room()
    if address_space is not None:
        choices.append((address_space, "free under the address-space limit (ulimit -v)"))
    return min(choices, key=lambda choice: choice[0])


# Where the kernel shows this process's control groups (tests point these elsewhere).
_PROC_CGROUP = "/proc/self/cgroup"
_CGROUP_ROOT = "/sys/fs/cgroup"
_MAX_BYTES = 2**63  # cgroup v1 writes "no limit" as a number near this


def _cgroup_room() -> int | None:
    """Bytes left under the tightest memory limit of this process's cgroups, or None."""
    try:
        with open(_PROC_CGROUP, encoding="utf-8") as lines:
            entries = [line.rstrip("\n").split(":", 2) for line in lines]
    except OSError:
        return None
    rooms = []
    for entry in entries:
        if len(entry) != 3:
            continue
        _, controllers, path = entry
        if controllers == "":  # v2: one unified hierarchy
            rooms += _rooms(Path(_CGROUP_ROOT), path, "memory.max", "memory.current")
        elif "memory" in controllers.split(","):  # v1: the memory controller's hierarchy
            root = Path(_CGROUP_ROOT) / "memory"
            rooms += _rooms(root, path, "memory.limit_in_bytes", "memory.usage_in_bytes")
    return min(rooms) if rooms else None


def _rooms(root: Path, path: str, limit_name: str, usage_name: str) -> list[int]:
    """The room under the limit of the cgroup at ``path`` and of each cgroup above it.

    A container usually sees its own cgroup as ``/``; a limit set on a parent applies too.
    """
    rooms = []
    parts = [part for part in path.split("/") if part and part not in (".", "..")]
    for depth in range(len(parts), -1, -1):
        folder = root.joinpath(*parts[:depth])
        limit = _read_count(folder / limit_name)
        if limit is None or limit >= _MAX_BYTES // 2:
            continue  # "max", unreadable, or v1's "no limit"
        used = _read_count(folder / usage_name) or 0
        rooms.append(max(limit - used, 0))
    return rooms


def _read_count(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() and len(text) <= 20 else None


def _address_space_room() -> int | None:
    """Bytes left under ``RLIMIT_AS`` (``ulimit -v``), or None without such a limit."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY or soft < 0:
        return None
    mapped = 0
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    mapped = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    return max(soft - mapped, 0)


def _free_device_memory(device: str | torch.device | None) -> int | None:
    if device is None:
        if not torch.cuda.is_available():
            return None
        device = torch.device("cuda", torch.cuda.current_device())
    device = torch.device(device)
    if device.type != "cuda":
        return None
    free, _ = torch.cuda.mem_get_info(device)
    return int(free)


def _bytes(count: float) -> str:
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{int(count)} bytes"


def _logged(placement: Placement) -> Placement:
    log.info("image folder %s", placement.reason)
    return placement
