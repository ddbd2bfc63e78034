"""dlx's processes keep freed blocks of memory for reuse (dlx.allocator): a 4 MB block, the size of a ResNet's
activations for a batch, comes from the heap instead of a mapping of its own that is faulted in afresh each time."""
from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import ctypes, sys
from dlx.allocator import keep_freed_blocks

class Info(ctypes.Structure):  # glibc's struct mallinfo2: ten size_t fields; hblkhd is the bytes in mappings
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype, libc.malloc.restype, libc.malloc.argtypes = Info, ctypes.c_void_p, [ctypes.c_size_t]
if sys.argv[1] == "kept":
    assert keep_freed_blocks()
before = libc.mallinfo2().hblkhd
block = libc.malloc(4 * 2**20)
print(libc.mallinfo2().hblkhd - before)
"""


def _mapped_bytes(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    return int(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc: Linux")
def test_a_freed_block_is_kept_in_the_heap_once_dlx_sets_the_thresholds():
    try:
        default = _mapped_bytes("default")
    except subprocess.CalledProcessError as e:
        pytest.skip(f"no glibc mallinfo2 here: {e.stderr.strip().splitlines()[-1]}")
    assert default >= 4 * 2**20  # glibc's own default: a mapping of its own
    assert _mapped_bytes("kept") == 0


@pytest.mark.parametrize("variable", ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES"])
def test_the_users_own_malloc_settings_stand(monkeypatch, variable):
    from dlx.allocator import keep_freed_blocks

    monkeypatch.setenv(variable, "131072")
    assert not keep_freed_blocks()
