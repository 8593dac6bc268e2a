"""Writing a file so that it is whole or absent: a temporary name in the same folder, flushed to
the disk, renamed into place (a full disk, a crash or a kill leaves no half file under the real
name, and the temporary one is removed when the write fails)."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

#: "no space left", "quota exceeded", "file too large": the machine's trouble, not the record's.
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def disk_full(exc: BaseException) -> OSError | None:
    """The "disk full" error behind *exc* (itself, or what it was raised from), if any."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return None
        if isinstance(seen, OSError) and seen.errno in _DISK_FULL:
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def write_atomically(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write *data* to *path*: whole or not at all (see the module docstring)."""
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
