"""Write a file so that readers see all of it or none of it, and a crash leaves no part.

The content goes to a hidden ``.*.tmp`` name in the target's directory (so
the rename cannot cross file systems and no glob for the real names matches
it), is fsynced, gets its mode, and is renamed over the target; the
directory is then fsynced so that the rename itself is durable.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def write_atomically(path: Path, fill: Callable[[BinaryIO], object], *, mode: int) -> None:
    """Create or replace ``path`` with what ``fill`` writes to the open file."""
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as tmp:
            fill(tmp)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
