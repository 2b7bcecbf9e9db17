"""Files, written so that a kill or a full disk never leaves half of one behind.

The base layer of the package (it imports nothing of seqgan but its errors): every file a
run, a cache or an export writes goes through :func:`atomic_write_bytes` (a temporary name
in the same folder, ``fsync``, then ``os.replace``), so a reader sees the old file or the
new one, never a mix. A write that fails (``ENOSPC``, ``EIO``, a read-only disk) removes
its temporary file and raises the ``OSError``; callers that own a run turn it into one
line naming the run. :func:`append_line` appends a record to a log so that a failure
leaves the log as it was (the partial line is cut off again). Readers
(:func:`read_json`, :func:`load_tensors`) report a missing, truncated or corrupt file in
one line. JSON and safetensors only: nothing is ever unpickled.

Tests inject faults at :data:`WRITE_HOOKS`: each callable there is called with the path
before every write of bytes, and may raise.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import SafetensorError
from safetensors.torch import load, load_file, save

from seqgan.errors import UserError

# called with the target path before each write (fault injection in tests)
WRITE_HOOKS: list[Callable[[Path], None]] = []


def _before_write(path: Path) -> None:
    for hook in WRITE_HOOKS:
        hook(path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # mkstemp/mkdtemp create 0600/0700: give the usual modes
DIR_MODE = 0o777 & ~_umask()


# -- atomic primitives -------------------------------------------------------------------
def fsync_dir(path: Path) -> None:
    """``fsync`` a folder so that a rename into it survives a crash; best effort, errors are ignored."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary name, fsync, ``os.replace``)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise UserError(f"{path}: cannot write it, folder {str(path.parent)!r} does not exist")
    _before_write(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as JSON (indent 2, sorted keys, a final newline) to ``path`` atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def atomic_save_tensors(path: str | Path, tensors: dict[str, torch.Tensor],
                        metadata: dict[str, str] | None = None) -> None:
    """Save ``tensors`` (detached, contiguous, on the CPU) and string ``metadata`` as a
    safetensors file at ``path``, atomically."""
    data = save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, metadata=metadata)
    atomic_write_bytes(path, data)


def read_json(path: str | Path) -> Any:
    """The parsed JSON of ``path``; a one-line UserError if it is missing, unreadable, not UTF-8
    or not valid JSON."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: missing") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text (corrupt JSON file)") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: corrupt JSON ({e.msg} at line {e.lineno})") from None


def load_tensors(path: str | Path, data: bytes | None = None) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file (or of its bytes ``data``, already read)."""
    path = Path(path)
    if data is None and not path.is_file():
        raise UserError(f"{path}: missing")
    try:
        return load_file(str(path)) if data is None else load(data)
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise UserError(f"{path}: corrupt or not a safetensors file ({str(e)[:80]})") from None


def dir_identity(path: Path) -> tuple[int, int] | None:
    """``(st_ino, st_mtime_ns)`` of ``path``, to notice a folder swapped or changed meanwhile;
    None if it cannot be stat'ed (e.g. it is missing)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns


def sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def append_line(path: str | Path, line: str) -> None:
    """Append one line (``line`` without its newline) to a log file, durably.

    All or nothing: if the write fails (a full disk), the file is cut back to its old
    length, so the log stays as it was and readable, and the ``OSError`` is raised.
    """
    path = Path(path)
    _before_write(path)
    with open(path, "ab") as f:
        start = f.tell()
        try:
            f.write((line + "\n").encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        except OSError:
            try:
                f.truncate(start)
            except OSError:
                pass
            raise
