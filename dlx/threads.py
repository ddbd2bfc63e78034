"""How many CPU threads a command computes with: the number the user gave, or `auto`.

PyTorch's default takes every core, and on a core another process is using, its threads wait on each other at
every operation: on a busy 2-core machine a small model then trains 25-50x slower than on one thread. `auto`
counts the cores this process may use that other processes leave free now (the kernel's busy time over a short
window; the load average where the kernel does not tell), and on the CPU times the model's own
forward pass on one batch with one thread and with those cores, keeping the extra threads only where they
clearly pay (large operations on idle cores). The number chosen is recorded in the run's config.yaml, so
`dlx train runs/<run>/config.yaml` computes with the same count.
"""
from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from rich.console import Console
from torch import Tensor, nn

from dlx.config import Config
from dlx.data.base import Splits
from dlx.errors import DlxError
from dlx.models.modes import evaluating

AUTO = "auto"
Setting = int | Literal["auto"] | None  # None: PyTorch's own choice (every core)
GAIN = 1.2  # more threads must make the probe this much faster to be chosen
ROUNDS = 5  # timed forward passes per candidate count, interleaved
LONG_PROBE = 0.25  # seconds: a forward pass this long is work enough to time only once per candidate


def cpu_count() -> int:
    """The cores this process may run on (its affinity, which a container or `taskset` may narrow)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def usable_cores() -> int:
    """The cores this process may run on, shared with the other processes of a run on this machine (--nproc)."""
    return max(1, cpu_count() // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


def load_average() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0


BUSY_WINDOW = 0.05  # seconds over which the cores' busy time is sampled


def core_times(cores: set[int]) -> tuple[int, int] | None:
    """(busy, total) clock ticks so far of the given cores, from /proc/stat; None where there is none."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    busy = total = 0
    for line in lines:
        name, *ticks = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cores:
            values = [int(t) for t in ticks[:8]]  # user nice system idle iowait irq softirq steal
            busy += sum(values) - values[3] - values[4]
            total += sum(values)
    return (busy, total) if total else None


def busy_cores(window: float = BUSY_WINDOW) -> float | None:
    """How many of this process's cores other processes keep busy now: their busy share over `window` seconds
    (this process sleeps meanwhile). A busy loop started a second ago shows here; the one-minute load average
    takes a minute to see it."""
    cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(cpu_count()))
    before = core_times(cores)
    if before is None:
        return None
    time.sleep(window)
    after = core_times(cores)
    if after is None or after[1] == before[1]:
        return None
    return len(cores) * (after[0] - before[0]) / (after[1] - before[1])


def free_cores() -> int:
    """Usable cores that other processes leave free now. Without /proc/stat, the load average (the one-minute
    average of runnable processes) stands in, one runnable process being taken for this one, busy before (a bench,
    a sweep worker's previous trial). A core another process takes during training shows in the timed forward
    pass."""
    busy = busy_cores()
    taken = max(0.0, load_average() - 1) if busy is None else busy
    return max(1, min(usable_cores(), round(cpu_count() - taken)))


@dataclass(frozen=True)
class Choice:
    threads: int
    reason: str  # why, for the one line printed

    def line(self) -> str:
        return f"CPU threads: {self.threads} ({self.reason})"


def fastest(probe: Callable[[], object], most: int) -> Choice:
    """1 or `most` threads, by the median time of `probe` (one forward pass) under each, measured interleaved so
    a change in the machine's load hits both; more threads only when GAIN times faster."""
    counts = (1, most)
    seconds: dict[int, list[float]] = {n: [] for n in counts}
    rounds = ROUNDS
    for round_ in range(rounds + 1):  # round 0 warms up (allocations, one-time kernels) and is not counted
        for n in counts:
            torch.set_num_threads(n)
            began = time.perf_counter()
            probe()
            elapsed = time.perf_counter() - began
            if round_:
                seconds[n].append(elapsed)
            elif elapsed > LONG_PROBE:
                rounds = 1
        if round_ >= rounds:
            break
    one, many = (statistics.median(seconds[n]) for n in counts)
    return Choice(most if one > GAIN * many else 1,
                  f"auto: a forward pass took {one * 1e3:.3g} ms on 1 thread, {many * 1e3:.3g} ms on {most}; "
                  f"{usable_cores()} usable cores")


def choose(setting: Setting, probe: Callable[[], object] | None, reserved: int = 0) -> Choice:
    """Set torch's thread count from a setting and return it. `probe` runs the model once (None: no model on the
    CPU to time, so `auto` takes the free cores); `reserved` cores will be busy with this run's own worker
    processes (streaming data), which start after the probe and so cannot show in it."""
    if setting is None:
        return Choice(torch.get_num_threads(), "PyTorch's default")
    free = max(1, free_cores() - reserved) if setting == AUTO else 0
    taken = f", {reserved} kept for the data's reading workers" if reserved else ""
    if setting != AUTO:
        choice = Choice(setting, "as given")
    elif free == 1 or probe is None:
        choice = Choice(free, f"auto: {free} of {usable_cores()} usable cores free{taken}")
    else:
        choice = fastest(probe, free)
    torch.set_num_threads(choice.threads)
    return choice


def forward_probe(model: nn.Module, batch: Tensor | tuple[Tensor, ...]) -> Callable[[], object] | None:
    """One forward pass of `batch` (a tuple: the model's arguments, e.g. an encoder-decoder's source and target) in
    eval mode and without gradients (no dropout drawn, no batch-norm statistic changed); None when the model is not
    on the CPU."""
    inputs = batch if isinstance(batch, tuple) else (batch,)
    if inputs[0].device.type != "cpu":
        return None

    def probe() -> None:
        with evaluating(model):
            model(*inputs)

    return probe


def training_batch(data: Splits, batch_size: int) -> Tensor:
    """`batch_size` copies of the first training example: the work of one training step's forward pass."""
    first = data.first("train", 1)[0]
    return first.expand(batch_size, *first.shape[1:]).contiguous()


def reading_workers(data: Splits, batch: Tensor | tuple[Tensor, ...]) -> int:
    """The worker processes that will read streamed data beside a model trained on the CPU (0 for data in memory).
    The main process's threads would share their cores: each small operation of a parallel region then waited for a
    thread the kernel had given a worker's turn, and a streamed epoch of 28x28 images took 0.6 s instead of 0.3."""
    from dlx.data.stream import StreamSplits, workers

    on_cpu = (batch if isinstance(batch, Tensor) else batch[0]).device.type == "cpu"
    return workers() if isinstance(data, StreamSplits) and on_cpu else 0


def settle(config: Config, model: nn.Module, data: Splits, console: Console,
           model_input: Callable[[Tensor], Tensor] = lambda x: x) -> Config:
    """The Trainer's thread count, set and printed in one line; returns the config with `auto` replaced by the
    number chosen, which is what the run saves. `model_input` makes a batch of examples what the model's forward
    takes (a generator's noise; see Objective.graph_input)."""
    with torch.random.fork_rng(devices=[]):  # the probe draws nothing, and if a model did, training would not see it
        batch = model_input(training_batch(data, config.train.batch_size))
        choice = choose(config.train.threads, forward_probe(model, batch), reading_workers(data, batch))
    console.print(choice.line(), highlight=False, soft_wrap=True)
    if config.train.threads != AUTO:
        return config
    return config.model_copy(update={"train": config.train.model_copy(update={"threads": choice.threads})})


def parse(text: str, option: str = "--threads") -> int | Literal["auto"]:
    """A command-line thread count: a number from 1 to 1024 or auto."""
    if text == AUTO:
        return AUTO
    if text.isdigit() and 1 <= int(text) <= 1024:
        return int(text)
    raise DlxError(f"{option} {text}: give a number of threads from 1 to 1024, or auto")
