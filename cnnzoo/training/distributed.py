"""``torch.distributed`` for fit: set up under ``torchrun``, reduce metrics, rank 0 decides.

``fit`` calls :func:`setup` once. Outside ``torchrun`` (no ``WORLD_SIZE`` > 1 in the
environment and no process group already made by the user) everything here is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from .feed import Shard

__all__ = ["Distributed", "setup"]


@dataclass
class Distributed:
    """This process's place in the run.

    Attributes:
        rank: Global rank (0 when not distributed).
        world_size: Number of processes.
        local_rank: Rank on this machine (picks the GPU).
        owns_group: True when ``fit`` created the process group (and destroys it at the end).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def enabled(self) -> bool:
        """True when more than one process trains."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that prints and writes files."""
        return self.rank == 0

    @property
    def shard(self) -> Shard:
        """This rank's share of the data."""
        return Shard(self.rank, self.world_size)

    def device(self, requested: torch.device) -> torch.device:
        """One GPU per process: ``cuda:<local_rank>`` when training on CUDA."""
        if self.enabled and requested.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return requested

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """Wrap ``model`` in DistributedDataParallel when distributed."""
        if not self.enabled:
            return model
        device_ids = [device.index] if device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over ranks, in place (no-op when not distributed)."""
        if self.enabled:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def sync_buffers(self, model: nn.Module) -> None:
        """Copy rank 0's buffers (BatchNorm statistics) to every rank.

        DDP broadcasts buffers at the start of each forward, so after an epoch's last step the
        ranks' statistics differ by that step; validation and the final model need one copy.
        """
        if self.enabled:
            for buffer in model.buffers():
                dist.broadcast(buffer, src=0)

    def broadcast_flag(self, flag: bool, device: torch.device) -> bool:
        """Rank 0's value of ``flag`` on every rank (stop decisions must agree)."""
        if not self.enabled:
            return flag
        value = torch.tensor([1.0 if flag else 0.0], device=device)
        dist.broadcast(value, src=0)
        return bool(value.item())

    def barrier(self) -> None:
        """Wait for every rank."""
        if self.enabled:
            dist.barrier()

    def teardown(self) -> None:
        """Destroy the process group if ``fit`` created it."""
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
            self.owns_group = False


def setup(device: torch.device) -> Distributed:
    """Join the process group ``torchrun`` describes, or reuse the user's.

    Args:
        device: The device training runs on (nccl for CUDA, gloo otherwise).

    Returns:
        A :class:`Distributed`; ``world_size == 1`` when not under ``torchrun``.
    """
    if not dist.is_available():
        return Distributed()
    if dist.is_initialized():
        return Distributed(
            dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0))
        )
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend)  # reads MASTER_ADDR/PORT, RANK, WORLD_SIZE
    return Distributed(dist.get_rank(), dist.get_world_size(), local_rank, owns_group=True)
