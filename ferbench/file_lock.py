"""``FileLock``: an exclusive ``flock`` on a lock file that dies with its process."""

from __future__ import annotations

import os
from pathlib import Path


class FileLock:
    """An exclusive ``flock`` on a lock file (a job's ``.<run name>.lock``, a board's ``.<db>.lock``);
    released (and the file removed) by ``release``, or by the kernel when the process dies. ``acquire(blocking=False)`` returns False
    when another process holds it. Without ``fcntl`` (not POSIX) it always succeeds."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.fd: int | None = None

    def acquire(self, blocking: bool = True) -> bool:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                os.close(fd)
                return False
            except BaseException:
                os.close(fd)
                raise
            # the holder before us may have removed the file: then we hold a lock nobody else sees
            try:
                st, now = os.fstat(fd), os.stat(self.path)
                same = (st.st_ino, st.st_dev) == (now.st_ino, now.st_dev)
            except FileNotFoundError:
                same = False
            if same:
                self.fd = fd
                return True
            os.close(fd)

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> "FileLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
