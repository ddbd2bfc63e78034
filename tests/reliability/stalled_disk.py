"""`python -m tests.reliability.stalled_disk K MARKER dlx-args...`: the dlx command line on a disk that stalls
forever on the K-th sync of a last.pt, after the bytes are written and before the rename. MARKER is created
then, so a test can SIGKILL the process in the middle of that checkpoint write."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def main() -> None:
    stall_at, marker = int(sys.argv[1]), Path(sys.argv[2])
    real_fsync, seen = os.fsync, 0

    def fsync(fd: int) -> None:
        nonlocal seen
        if ".last.pt." in os.readlink(f"/proc/self/fd/{fd}"):  # a temporary file beside last.pt
            seen += 1
            if seen == stall_at:
                marker.touch()
                time.sleep(3600)
        real_fsync(fd)

    os.fsync = fsync
    from dlx.cli import app

    app(sys.argv[3:], prog_name="dlx")


if __name__ == "__main__":
    main()
