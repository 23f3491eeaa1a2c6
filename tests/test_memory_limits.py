"""The memory budget of image folders: sizes that are not finite are refused, the automatic
budget honours a container's memory limit (cgroup v1 and v2) and the address-space limit
(RLIMIT_AS, in a child process), and an in-memory load that cannot be allocated streams."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from PIL import Image

from cnnzoo.data import BUDGET_ENV, ImageTensorDataset, StreamedImageFolder, budget, load_dataset
from cnnzoo.data.budget import parse_size, place

REPO = Path(__file__).resolve().parents[1]
HOST = 64 * 10**9  # a large host, so that the limit under test is the one that binds


@pytest.mark.parametrize("bad", ["inf", "1e999", "1e999GB", "garbage", "nan", "1e30"])
def test_a_budget_that_is_not_a_finite_size_is_a_clear_error(bad, monkeypatch):
    with pytest.raises(ValueError, match=BUDGET_ENV):
        parse_size(bad)
    monkeypatch.setenv(BUDGET_ENV, bad)
    with pytest.raises(ValueError, match=BUDGET_ENV):
        place("auto", 100, 1)
    for number in (float("inf"), float("nan"), 10**400):
        with pytest.raises(ValueError, match="memory_budget"):
            place("auto", 100, 1, budget=number)


def _cgroups(tmp_path: Path, monkeypatch, membership: str, files: dict[str, str]) -> None:
    """Point the budget at a constructed /proc/self/cgroup and /sys/fs/cgroup."""
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(membership)
    root = tmp_path / "sys-fs-cgroup"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    monkeypatch.setattr(budget, "_PROC_CGROUP", str(proc))
    monkeypatch.setattr(budget, "_CGROUP_ROOT", str(root))
    monkeypatch.setattr(budget, "available_host_memory", lambda: HOST)
    monkeypatch.setattr(budget, "_address_space_room", lambda: None)
    monkeypatch.delenv(BUDGET_ENV, raising=False)


def test_cgroup_v2_limit_of_the_container_bounds_the_automatic_budget(tmp_path, monkeypatch):
    _cgroups(
        tmp_path,
        monkeypatch,
        "0::/box/job\n",
        {
            "box/memory.max": f"{10**9}\n",  # a 1 GB container ...
            "box/memory.current": f"{2 * 10**8}\n",  # ... using 200 MB already
            "box/job/memory.max": "max\n",
            "box/job/memory.current": "0\n",
        },
    )
    assert budget.memory_within_limits() == (
        8 * 10**8,
        "free under the container's memory limit (cgroup)",
    )
    # A folder needing 1.6 GB decoded streams, where the host's free memory said "in memory".
    placement = place("auto", 16 * 10**8, 1000, device="cpu")
    assert not placement.in_memory and "container's memory limit" in placement.reason


def test_cgroup_v1_limit_is_read_from_the_memory_hierarchy(tmp_path, monkeypatch):
    # A container sees its own cgroup at the hierarchy's root, though /proc names a path.
    _cgroups(
        tmp_path,
        monkeypatch,
        "5:cpu,cpuacct:/x\n4:memory:/docker/abc\n",
        {
            "memory/memory.limit_in_bytes": f"{10**9}\n",
            "memory/memory.usage_in_bytes": f"{10**8}\n",
        },
    )
    assert budget.memory_within_limits()[0] == 9 * 10**8
    assert place("auto", 10**8, 10, device="cpu").in_memory  # within half of 900 MB


def test_no_cgroup_limit_leaves_the_host_memory(tmp_path, monkeypatch):
    _cgroups(
        tmp_path,
        monkeypatch,
        "4:memory:/\n0::/\n",
        {
            "memory.max": "max\n",
            "memory/memory.limit_in_bytes": "9223372036854771712\n",  # v1's "no limit"
            "memory/memory.usage_in_bytes": "5\n",
        },
    )
    assert budget.memory_within_limits() == (HOST, "host memory free")


def test_the_address_space_limit_bounds_the_budget_and_a_failed_allocation_streams(tmp_path):
    """A child under RLIMIT_AS: the budget sees the limit, and an allocation it cannot make
    (a budget set too high) becomes streaming, or, asked for in memory, a clear error."""
    script = textwrap.dedent(
        """
        import resource, sys
        import torch
        from cnnzoo.data import budget
        from cnnzoo.data.budget import Placement, place
        from cnnzoo.data.folder import allocate_images

        with open("/proc/self/status") as status:
            size = next(int(l.split()[1]) * 1024 for l in status if l.startswith("VmSize:"))
        room = 300 * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (size + room, resource.RLIM_INFINITY))
        free, where = budget.memory_within_limits()
        assert free <= room and "ulimit -v" in where, (free, where)
        placement = place("auto", 400 * 2**20, 100, device="cpu")
        assert not placement.in_memory and "ulimit -v" in placement.reason, placement
        # A budget set too high: the allocation itself fails, and the folder streams.
        granted = Placement(True, "in memory: within the budget of 100 GB (CNNZOO_MEMORY_BUDGET)")
        images, placement = allocate_images(1000, (512, 512), granted, "auto")
        assert images is None and not placement.in_memory, placement
        assert "could not be allocated" in placement.reason, placement
        try:
            allocate_images(1000, (512, 512), granted, True)
        except MemoryError as error:
            assert "in_memory=True" in str(error) and "stream" in str(error)
        else:
            raise AssertionError("in_memory=True allocated beyond the limit")
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_a_folder_whose_images_cannot_be_allocated_streams_and_says_so(
    tmp_path, monkeypatch, caplog
):
    for name, shade in (("dark", 40), ("bright", 200)):
        (tmp_path / "train" / name).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (6, 5), (shade, shade, shade)).save(
                tmp_path / "train" / name / f"{i}.png"
            )
    real_empty = torch.empty

    def empty(*size, **kwargs):  # the allocator's refusal of the folder's tensor, constructed
        if kwargs.get("dtype") is torch.uint8 and tuple(size[0] if len(size) == 1 else size) == (
            6,
            3,
            5,
            6,
        ):
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate")
        return real_empty(*size, **kwargs)

    monkeypatch.setattr(torch, "empty", empty)
    monkeypatch.setattr(logging.getLogger("cnnzoo.data"), "disabled", False)
    with caplog.at_level(logging.WARNING, logger="cnnzoo.data"):
        streamed = load_dataset(tmp_path, "train", memory_budget="1GB")
    assert isinstance(streamed, StreamedImageFolder) and len(streamed) == 6
    assert "could not be allocated" in streamed.placement.reason
    assert "could not be allocated" in caplog.text
    monkeypatch.setattr(torch, "empty", real_empty)
    in_memory = load_dataset(tmp_path, "train", memory_budget="1GB")
    assert isinstance(in_memory, ImageTensorDataset)
    assert torch.equal(streamed.labels, in_memory.labels) and streamed.mean == in_memory.mean
