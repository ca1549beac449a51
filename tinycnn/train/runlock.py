"""The lock of a run directory: one ``tinycnn train`` at a time writes to a run.

A training run holds an advisory lock (``flock``) on ``train.lock`` in its directory for as long
as it trains.  A second ``tinycnn train --resume`` of that run is refused at once, naming the
process that holds it, and ``--resume`` without a directory passes over runs that are training
now.  The operating system drops the lock when its process ends, however it ends (Ctrl-C, a
kill, a crash, a power cut), so no stale lock is ever left to delete by hand; a run that ends
normally also deletes the file.  Where there is no ``fcntl`` (Windows) runs are not locked.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # not on POSIX
    fcntl = None

LOCK_FILE = "train.lock"


class RunBusy(RuntimeError):
    """The run directory is locked by another ``tinycnn train``; ``pid``: that process, if
    it said."""

    def __init__(self, run: Path, pid: int | None):
        self.run, self.pid = run, pid
        by = f"process {pid}" if pid else "another process"
        super().__init__(f"{run} is being trained by {by} now")


def _holder(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii").strip()
        return int(text) if text.isdigit() else None
    except (OSError, UnicodeDecodeError):
        return None


def _try_lock(run: Path) -> int:
    """The open, locked ``train.lock`` of ``run``; :class:`RunBusy` if another holds it.

    A holder deletes the file when it is done, so the file locked may have been unlinked
    between opening and locking it: then it is opened afresh, until the lock taken is on the
    file that is there."""
    path = run / LOCK_FILE
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                return fd
        except BlockingIOError:
            pid = _holder(fd)
            os.close(fd)
            raise RunBusy(run, pid) from None
        except FileNotFoundError:
            pass  # unlinked by the holder that was just done: open the new one
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


@contextlib.contextmanager
def holding(run: str | os.PathLike):
    """Hold the lock of the run directory ``run`` for the ``with`` block, writing this
    process's id into it; raises :class:`RunBusy` at once when another process holds it.
    The lock file is deleted at the end (a process killed outright leaves it behind,
    unlocked, for the next run to take)."""
    run = Path(run)
    if fcntl is None:
        yield
        return
    fd = _try_lock(run)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(run / LOCK_FILE)  # still locked: a newcomer opens a new file
        os.close(fd)  # closing the descriptor drops the lock


def busy(run: str | os.PathLike) -> RunBusy | None:
    """:class:`RunBusy` if a process trains in ``run`` now, else ``None``."""
    if fcntl is None:
        return None
    run = Path(run)
    try:
        fd = os.open(run / LOCK_FILE, os.O_RDONLY)
    except OSError:  # no lock file: no run is training there
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return RunBusy(run, _holder(fd))
    finally:
        os.close(fd)
    return None  # a file left by a process killed outright: nobody holds it
