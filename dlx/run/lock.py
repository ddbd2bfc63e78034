"""One writer per run folder: whoever trains, resumes, evaluates into or deletes a run holds an exclusive flock on
its lock file. The kernel releases it when the process ends, however it ends (kill -9 too), so a lock is never
left behind by a dead process and never needs cleaning up. The file stays: removing it would let a second process
lock a new file while the first still holds the old one."""
from __future__ import annotations

import fcntl
import os
import socket
import sys
import weakref
from pathlib import Path

from dlx.atomic import FILE_MODE
from dlx.errors import DlxError

NAME = ".dlx.lock"
MARK = "dlx run lock"  # the file's first line: dlx wrote this folder (see dlx.run.folder.is_run)


def process_id(pid: int, host: str) -> str:
    return f"pid {pid} on {host}"


def holder(folder: Path) -> str:
    """Who holds (or last held) the lock, as its file says: 'pid N on HOST: dlx train ...'; '' when unknown."""
    try:
        lines = (folder / NAME).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return lines[1] if len(lines) > 1 and lines[0] == MARK else ""


_HELD: weakref.WeakSet[RunLock] = weakref.WeakSet()  # the locks this process holds


def _let_go_in_child() -> None:
    """A forked child (a DataLoader worker, a pool process) closes its copies of the locks at once: a flock belongs
    to the open file, which the child shares, so a child that kept it would hold the run locked after its parent's
    kill -9, until the child noticed and ended."""
    for lock in list(_HELD):
        if lock._fd is not None:
            os.close(lock._fd)
            lock._fd = None
    _HELD.clear()


os.register_at_fork(after_in_child=_let_go_in_child)


class RunLock:
    """The lock of one run folder, held from `acquire` until `release` (or the process's end)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, doing: str) -> None:
        """Take the lock, or raise a DlxError naming the process that has it; `doing` completes 'cannot ...'."""
        if self._fd is not None:
            return
        path = self.folder / NAME
        if path.is_symlink():  # a link planted in a run folder from elsewhere would lock (and write) its target
            path.unlink()
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            who = holder(self.folder)
            raise DlxError(f"{self.folder}: cannot {doing}: another dlx process is writing to this run"
                           f"{f' ({who})' if who else ''}; wait for it to end, or stop it") from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        command = " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]])[:200]
        os.write(fd, f"{MARK}\n{process_id(os.getpid(), socket.gethostname())}: {command}\n".encode())
        self._fd = fd
        _HELD.add(self)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        _HELD.discard(self)

