"""Files written whole or not at all: a reader (or a kill) never sees half a file, and a link planted where the file
goes is replaced, not written through. Every file dlx writes goes through here (figures through dlx.plots)."""
from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


def _umask() -> int:
    """The process's umask, read once at import (setting it back at once: os.umask can only read by writing)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # what open() would give a new file; mkstemp's own 0600 would hide configs from the group


# write_atomic's temporaries: .<name>.<mkstemp's 8 characters>.tmp; a file of the user's like .notes.tmp is not one
TEMPORARY = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


@contextmanager
def replacing(path: Path, mode: str = "wb") -> Iterator[IO]:
    """A temporary file beside `path`, open for writing; synced and renamed to `path` when the block ends without
    an error, deleted otherwise: readers see the old file or the whole new one, and a file can be written as it
    grows. A failure (a full disk, no permission) leaves the earlier file as it was and names `path`, not the
    temporary."""
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": ""})) as f:
            os.fchmod(f.fileno(), FILE_MODE)
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise OSError(e.errno, f"{e.strerror or e}; the earlier file, if any, is unchanged", str(path)) from None
        raise


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` whole or not at all (see `replacing`)."""
    with replacing(path) as f:
        f.write(data)


def write_json(path: Path, data: Any) -> Path:
    write_atomic(path, (json.dumps(data, indent=2) + "\n").encode())
    return path
