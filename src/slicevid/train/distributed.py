"""Multi-process training under ``torchrun``: process group, sharding, gathering.

Run any training entry point unchanged with ``torchrun --nproc_per_node=N``. Each process
reads its rank from the environment torchrun sets; the backend is NCCL on CUDA and gloo on
CPU. Only rank 0 logs and writes files; validation predictions are gathered from every
rank (and de-duplicated) before metrics are computed, so all ranks take the same
learning-rate and early-stopping decisions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistributedContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def is_main_process() -> bool:
    """Whether this process is rank 0 (or the only one): the one that prints and writes files."""
    return int(os.environ.get("RANK", "0")) == 0


def setup_distributed(device: torch.device) -> DistributedContext:
    """Join the process group torchrun describes (no-op for a single process)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistributedContext()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistributedContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def gather_tensors(context: DistributedContext, *tensors: torch.Tensor) -> list[torch.Tensor]:
    """Concatenate each tensor across ranks (sizes may differ per rank)."""
    if not context.enabled:
        return list(tensors)
    gathered = []
    for tensor in tensors:
        parts: list = [None] * context.world_size
        dist.all_gather_object(parts, tensor.detach().cpu())
        gathered.append(torch.cat(parts))
    return gathered


def all_ranks_agree(context: DistributedContext, flag: bool) -> bool:
    """True only if ``flag`` holds on every rank (e.g. "the loss is finite")."""
    if not context.enabled:
        return flag
    value = torch.tensor([1.0 if flag else 0.0])
    if dist.get_backend() == "nccl":
        value = value.cuda()
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item() > 0)


def broadcast_buffers(context: DistributedContext, module: torch.nn.Module) -> None:
    """Give every rank rank 0's buffers (BatchNorm running statistics).

    DDP syncs buffers at the start of each forward, so after the last step of an epoch
    each rank holds its own statistics; this makes the saved and restored weights agree.
    """
    if context.enabled:
        for buffer in module.buffers():
            dist.broadcast(buffer.data, src=0)
