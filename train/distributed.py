"""Multi-process training under ``torchrun`` (gloo on CPU, nccl on GPU); one process by default.

Instead of wrapping the method in ``DistributedDataParallel`` (a method is several modules with
its own optimisers and alternating steps), every rank starts from rank 0's parameters, averages
gradients with ``all_reduce`` before each optimiser step and takes rank 0's BatchNorm buffers after
it — the same arithmetic DDP does, applicable to any ``Method``. Each rank reads a disjoint shard
of every batch stream (see ``train.sampling``); only rank 0 logs and writes files.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialised_here: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device_kind: str) -> DistContext:
    """Join the process group if launched by torchrun (``WORLD_SIZE`` > 1), else single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    here = False
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_kind == "cuda" else "gloo")
        here = True
    if device_kind == "cuda":
        torch.cuda.set_device(local)
    return DistContext(rank, world, local, here)


def teardown(ctx: DistContext) -> None:
    if ctx.enabled and ctx.initialised_here and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_module(module: nn.Module, ctx: DistContext) -> None:
    """Copy rank 0's parameters and buffers to every rank (start of training, after each step)."""
    if not ctx.enabled:
        return
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)


def broadcast_buffers(module: nn.Module, ctx: DistContext) -> None:
    if not ctx.enabled:
        return
    for b in module.buffers():
        dist.broadcast(b.data, src=0)


def make_grad_sync(ctx: DistContext):
    """A function averaging the gradients of the given parameters across ranks (no-op alone)."""
    def sync(params: Iterable[nn.Parameter]) -> None:
        if not ctx.enabled:
            return
        for p in params:
            if p.grad is not None:
                dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
                p.grad.div_(ctx.world_size)
    return sync
