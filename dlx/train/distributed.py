"""Data-parallel training across processes started by torchrun (or `dlx train --nproc N`).

Every rank holds all the data and draws the same shuffled order; each takes its slice of every
global batch, so `train.batch_size` stays the global batch size. Only rank 0 writes the run folder.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor

from dlx import limits
from dlx.errors import DlxError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def shard(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, float]:
        """This rank's slice of a global batch, and the factor that makes the ranks' averaged gradients
        equal to the gradient of the whole batch's mean loss even when the slices differ in size."""
        xs, ys = x.tensor_split(self.size)[self.rank], y.tensor_split(self.size)[self.rank]
        return xs, ys, self.size * len(xs) / len(x)

    def agree(self, verdict: int, device: torch.device) -> int:
        """The largest of the ranks' verdicts, on every rank: ranks must agree on when to stop."""
        if not self.distributed:
            return verdict
        value = torch.tensor(verdict, device=device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return int(value.item())

    def mean(self, value: Tensor) -> Tensor:
        """The mean of a tensor over the ranks."""
        if not self.distributed:
            return value
        value = value.clone()
        dist.all_reduce(value)
        return value / self.size

    def leave(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()


def join_world() -> World:
    """The process group set up by torchrun's environment, or a world of one."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def device_for(world: World, device: torch.device) -> torch.device:
    """Each rank on its own GPU; CPU ranks share the CPU."""
    if world.distributed and device.type == "cuda":
        torch.cuda.set_device(world.local_rank)
        return torch.device("cuda", world.local_rank)
    return device


def launch(nproc: int, dlx_args: list[str]) -> int:
    """`dlx train ... --nproc N`: start N ranks of the same command under torch.distributed's runner."""
    if nproc < 1:
        raise DlxError(f"--nproc {nproc}: give at least 1 process")
    limits.check("--nproc", nproc, limits.PROCESSES, "processes")
    command = [sys.executable, "-c", "import sys; from dlx.train.distributed import torchrun; torchrun(sys.argv[1:])",
               "--standalone", f"--nproc_per_node={nproc}", "-m", "dlx", *dlx_args]
    return subprocess.run(command).returncode


def torchrun(argv: list[str]) -> None:
    """torch.distributed's runner, ending as the failed rank did: that rank already said why in one line, so no
    ChildFailedError traceback follows it."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)  # its failure report repeats the rank's
    try:
        run(parse_args(argv))
    except ChildFailedError as e:
        _, failure = e.get_first_failure()
        sys.exit(failure.exitcode if failure.exitcode > 0 else 1)  # below 0: killed by a signal
