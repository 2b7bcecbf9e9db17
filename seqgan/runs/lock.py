"""One writer per run: an exclusive OS lock on the run directory.

Every command that writes to a run (``pretrain``, ``train``, ``run``, ``coevolve``) and the
Python API's writing calls hold :class:`RunLock` for their whole life. The lock is
``fcntl.flock`` on ``RUN/.lock``: the kernel releases it when the process ends, however it
ends, so a SIGKILLed writer never leaves a stale lock behind and the next writer gets it at
once. The file holds, for the error message of a second writer, who has the lock (pid,
host, command, since when); it is never deleted (nothing in a run is). Readers (``sample``,
``export-midi``, ``evaluate``) take no lock: checkpoints are swapped in atomically, so they
always read a consistent one.

A new run is locked while it is still being built under its temporary name: the lock is on
the file, not the name, so it survives the rename into place and no other writer can get
in between.
"""
from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

from seqgan.errors import UserError

LOCK_NAME = ".lock"

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: msvcrt locks a byte range instead
    fcntl = None
    import msvcrt


def _try_lock(fd: int) -> bool:
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:  # pragma: no cover
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except (BlockingIOError, PermissionError):
        return False
    except OSError as e:  # e.g. a file system without locks
        raise UserError(f"{fd}: cannot lock the run ({e.strerror})") from None
    return True


def holder(folder: str | Path) -> str:
    """Who holds (or last held) the lock of a run, in words; '' if nobody ever did."""
    try:
        info = json.loads((Path(folder) / LOCK_NAME).read_text(encoding="utf-8"))
        return (f"pid {int(info['pid'])} on {info['host']} ({info['command']}, since "
                f"{info['since']})")
    except (OSError, ValueError, KeyError, TypeError):
        return ""


class RunLock:
    """The exclusive writer's lock of one run directory; a context manager.

    ``acquire`` never waits: a run another process writes is refused at once with a
    :class:`UserError` naming the run, the holder and what to do.
    """

    def __init__(self, folder: str | Path, label: str | Path | None = None):
        self.folder = Path(folder)
        self.label = str(label if label is not None else folder)  # the name the user knows
        self.fd: int | None = None

    def acquire(self) -> "RunLock":
        """Take the lock without waiting (re-entrant) and write the holder into the lock file; a
        UserError naming the holder when another process has it."""
        if self.fd is not None:
            return self
        path = self.folder / LOCK_NAME
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise UserError(f"{self.label}: cannot open its lock file ({e.strerror})") from None
        if not _try_lock(fd):
            os.close(fd)
            who = holder(self.folder) or "another process"
            raise UserError(f"{self.label} is being written by {who}; wait for it to finish (or "
                            f"stop it) and run the command again; reading commands (sample, "
                            f"evaluate, export-midi) work meanwhile")
        prog = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "command": " ".join(["seqgan" if prog == "__main__.py" else prog, *sys.argv[1:2]]),
                "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        except OSError:
            pass  # a full disk: the lock holds all the same, only the message says less
        self.fd = fd
        return self

    def move(self, folder: str | Path) -> None:
        """The locked folder was renamed to ``folder`` (the lock goes with the file)."""
        self.folder = Path(folder)

    def release(self) -> None:
        """Drop the lock by closing its descriptor; a no-op when it is not held."""
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self.fd is not None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
