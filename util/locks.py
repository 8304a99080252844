"""Advisory file locks (POSIX flock) that several processes writing into one folder share.

Why our own: the standard library has only the raw fcntl calls, and the lock must be shared (many
shards write one HiPS at once) as well as exclusive (one run checks and records the settings, or
clears the folder). flock locks belong to an open file and vanish with the process, so a killed
run never leaves a stale lock behind; the lock files themselves are never deleted (a process
holding a lock on a deleted file would no longer exclude one that opens a new file of that name).
"""
from __future__ import annotations

import errno
import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock; runs are then not protected from each other
    fcntl = None


class FileLock:
    """One lock file, held shared or exclusive by this process (`mode` is None when not held)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.mode: str | None = None
        self._fd: int | None = None

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        return self._fd

    def acquire(self, mode: str, wait: bool = True) -> bool:
        """Take (or convert to) 'shared' or 'exclusive'; False when wait=False and another process holds a
        conflicting lock. A conversion is not atomic (flock drops the old lock first)."""
        fd = self._open()
        if fcntl is None:
            self.mode = mode
            return True
        flags = fcntl.LOCK_SH if mode == "shared" else fcntl.LOCK_EX
        try:
            fcntl.flock(fd, flags | (0 if wait else fcntl.LOCK_NB))
        except OSError as err:
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                if self.mode is not None:  # flock dropped the lock we had before failing to convert it
                    self.mode = None
                return False
            raise
        self.mode = mode
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the file drops its lock
            self._fd = None
        self.mode = None

    def __enter__(self) -> "FileLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()
