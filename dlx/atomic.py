"""Files written whole or not at all: a reader (or a kill) never sees half a file, and a link planted where the file
goes is replaced, not written through. Every file dlx writes goes through here or through plots.save."""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def replacing(path: Path, mode: str = "wb") -> Iterator[IO]:
    """A temporary file beside `path`, open for writing; synced and renamed to `path` when the block ends without
    an error, deleted otherwise. Readers see the old file or the whole new one; a file can be written as it grows."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": ""})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, sync it, then rename: readers see the old file or the new one."""
    with replacing(path) as f:
        f.write(data)


def write_json(path: Path, data: Any) -> Path:
    write_atomic(path, (json.dumps(data, indent=2) + "\n").encode())
    return path
