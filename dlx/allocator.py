"""How the C library hands memory to PyTorch on the CPU: freed blocks are kept for the next tensor.

glibc's malloc serves every block above 128 KB with a fresh mapping from the kernel and unmaps it when it is
freed, until some freed block happens to raise that threshold. A forward pass's activations are such blocks, so in
a process that had not yet raised it every pass faulted in new, zeroed pages: LIME on a ResNet-20 (1000 sub-images
of 32x32) took 0.50 s instead of 0.24 s. Blocks up to MAPPED_FROM are kept in the heap for reuse, and the heap is
given back to the kernel only when more than TRIM_FROM lies free at its top. Where the C library is not glibc
(macOS, musl), or the environment already sets glibc's thresholds (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_
or GLIBC_TUNABLES), nothing changes.
"""
from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt's parameters, from glibc's malloc.h
MAPPED_FROM = 16 * 2**20  # blocks at least this large still get a mapping of their own, returned when freed
TRIM_FROM = 64 * 2**20
USERS_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")


def keep_freed_blocks() -> bool:
    """Set glibc's thresholds for this process; whether they were set."""
    if not sys.platform.startswith("linux") or any(name in os.environ for name in USERS_SETTINGS):  # theirs stand
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt  # glibc's name: looking it up costs every command 1 ms
    except (OSError, AttributeError):  # another C library
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_TRIM_THRESHOLD, TRIM_FROM)) and bool(mallopt(M_MMAP_THRESHOLD, MAPPED_FROM))
