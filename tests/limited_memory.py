"""`python -m tests.limited_memory MB DATA_MB ARGS...`: dlx ARGS in a process whose address space may grow by only
MB megabytes (RLIMIT_AS), set once torch and what training imports are loaded; before training it shows that the
data's float32 form, DATA_MB megabytes, cannot be allocated."""
from __future__ import annotations

import resource
import sys
import threading

import torch
import torchmetrics  # noqa: F401  (imported before the limit: what training imports is no data)
from torch.utils import tensorboard  # noqa: F401

from dlx.cli import run


def mapped() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))


if __name__ == "__main__":
    headroom, data = int(sys.argv[1]) * 2**20, int(sys.argv[2]) * 2**20
    # a thread reserves address space for its stack, and glibc a heap arena per thread (64 MB each): reservations,
    # not memory used, which RLIMIT_AS counts all the same; the test sets MALLOC_ARENA_MAX=1 and a fixed mmap threshold
    # (large blocks go back to the system when freed, instead of fragmenting the heap)
    threading.stack_size(1 << 20)
    resource.setrlimit(resource.RLIMIT_AS, (mapped() + headroom, resource.RLIM_INFINITY))
    try:
        torch.empty(data // 4, dtype=torch.float32)
        sys.exit("the limit does not hold: the data's float32 form was allocated")
    except (RuntimeError, MemoryError):
        print(f"the limit holds: {data // 2**20} MB cannot be allocated", flush=True)
    sys.argv = ["dlx", *sys.argv[3:]]
    run()
