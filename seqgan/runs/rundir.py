"""The run directory: one folder holds a run so any command can stop and resume it.

::

    RUN/
      config.json                resolved RunConfig, seed, versions, sha256 of the files
                                 written once (data, oracle, generator-mle)
      vocab.json                 Vocabulary
      data.safetensors           train / test token tensors (a run never re-reads its source)
      oracle.safetensors         the oracle's parameters (synthetic data only)
      generator-mle.safetensors  the generator when MLE pretraining ended
      checkpoint/ checkpoint.prev/   see :mod:`seqgan.runs.checkpoints`
      metrics.jsonl              see :mod:`seqgan.runs.metrics_log`
      samples/                   samples.txt, sample-*.mid, piano_roll.png
      snapshots/                 fixed-seed samples every K epochs (:mod:`seqgan.runs.snapshots`)
      .lock                      the writer's lock (:mod:`seqgan.runs.lock`)

:class:`RunDir` opens a run read-only (reading never changes it, so runs can be read while
another process trains them); a writer takes :meth:`RunDir.lock` first. Values read from
config.json are checked against their types and ranges (``validate_config``), so a damaged
or hand-edited file fails with one line naming the key. :func:`create_run_dir` builds a
new run under a temporary name, locked, and renames it into place: all or nothing.
"""
from __future__ import annotations

import glob
import os
import platform
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from seqgan.datasets.vocab import Vocabulary
from seqgan.errors import UserError
from seqgan.files import DIR_MODE, atomic_save_tensors, atomic_write_json, load_tensors, read_json, sha256
from seqgan.models.oracle import Oracle
from seqgan.runs.checkpoints import CKPT_PREV, Checkpoints
from seqgan.runs.config import RunConfig, validate_config
from seqgan.runs.lock import RunLock
from seqgan.runs.metrics_log import MetricsLog, set_aside
from seqgan.version import __version__

# what a run that starts again from scratch moves aside (never deletes)
HISTORY = ("metrics.jsonl", "generator-mle.safetensors", "generator-selected.safetensors", "samples",
           "results.json", "snapshots")


def versions() -> dict[str, str]:
    """The versions of seqgan, torch and Python (recorded in config.json)."""
    return {"seqgan": __version__, "torch": torch.__version__,
            "python": platform.python_version()}


class RunDir:
    """An opened run directory (read-only until :meth:`lock`)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise UserError(f"{str(self.path)!r} is a file, not a run directory")
        if not self.path.is_dir():
            raise UserError(f"run {str(self.path)!r} does not exist; create it with "
                            f"`seqgan pretrain --data SPEC --out {self.path}`")
        for name in ("config.json", "vocab.json", "data.safetensors"):
            if not (self.path / name).is_file():
                raise UserError(f"{self.path} is not a seqgan run (no {name})")
        cpath, vpath = self.path / "config.json", self.path / "vocab.json"
        raw = read_json(cpath)
        if not isinstance(raw, dict) or "config" not in raw:
            raise UserError(f"{cpath}: not a seqgan run configuration")
        for key in ("versions", "checksums"):
            if not isinstance(raw.get(key, {}), dict):
                raise UserError(f"{cpath}: {key!r} is not an object")
        try:
            self.config = RunConfig.from_dict(raw["config"])
            validate_config(self.config)
        except (UserError, TypeError) as e:
            raise UserError(f"{cpath}: {e}") from None
        self.meta = raw
        try:
            self.vocab = Vocabulary.load(vpath)
        except UserError as e:
            raise UserError(str(e) if str(e).startswith(str(vpath)) else f"{vpath}: {e}") from None
        if len(self.vocab) != self.config.generator.vocab_size:
            raise UserError(f"{vpath} has {len(self.vocab)} tokens but {cpath} says vocab_size "
                            f"{self.config.generator.vocab_size}: the files are not of one run")
        self._data: dict[str, torch.Tensor] | None = None
        self.checkpoints = Checkpoints(self.path)
        self.metrics = MetricsLog(self.path / "metrics.jsonl", label=str(self.path))
        self.writer: RunLock | None = None
        # opening a run never changes it (it may be in training in another process); a
        # writer takes lock(), then calls checkpoints.recover() before it resumes

    # data ---------------------------------------------------------------------------
    def data(self) -> dict[str, torch.Tensor]:
        """The run's token tensors {``train``[, ``test``]}, each (N, T) int64 with ids in 0..V-1;
        read and checked once, a UserError naming the file otherwise."""
        if self._data is None:
            p = self.path / "data.safetensors"
            d = self.load_run_tensors("data.safetensors")
            if "train" not in d:
                raise UserError(f"{p}: no 'train' tensor")
            V, T = self.config.generator.vocab_size, self.config.generator.seq_len
            for k, v in d.items():
                if v.dim() != 2 or v.shape[1] != T or v.dtype.is_floating_point or v.is_complex():
                    raise UserError(f"{p}: {k!r} is not an (N, {T}) integer tensor "
                                    f"(got {v.dtype} {tuple(v.shape)})")
                if v.numel() and (int(v.min()) < 0 or int(v.max()) >= V):
                    raise UserError(f"{p}: {k!r} holds token ids outside 0..{V - 1}")
            self._data = {k: v.long() for k, v in d.items()}
        return self._data

    def oracle(self):
        """The run's :class:`~seqgan.models.oracle.Oracle` (synthetic data), or None without one."""
        p = self.path / "oracle.safetensors"
        if not p.is_file():
            return None
        try:
            return Oracle(self.load_run_tensors(p.name), seq_len=self.config.generator.seq_len)
        except UserError as e:
            raise UserError(str(e) if str(e).startswith(str(p)) else f"{p}: {e}") from None

    def load_run_tensors(self, name: str) -> dict[str, torch.Tensor]:
        """Tensors of a file of the run, checked against the sha256 recorded in config.json."""
        p = self.path / name
        digest = self.meta.get("checksums", {}).get(name)
        if digest is not None and p.is_file() and sha256(p) != digest:
            raise UserError(f"{p}: corrupt (checksum does not match config.json)")
        return load_tensors(p)

    def record_checksum(self, name: str) -> None:
        """Record the sha256 of a run file (written once, read later) in config.json."""
        self.meta.setdefault("checksums", {})[name] = sha256(self.path / name)
        self.save_config()

    def save_config(self) -> None:
        """Write the current config back into config.json (its other keys kept), atomically."""
        self.meta["config"] = self.config.to_dict()
        atomic_write_json(self.path / "config.json", self.meta)

    # writing ------------------------------------------------------------------------
    def lock(self) -> "RunDir":
        """Become this run's one writer (see :mod:`seqgan.runs.lock`); re-reads config.json,
        which the previous writer may have changed since the run was opened."""
        if self.writer is None:
            self.writer = RunLock(self.path).acquire()
            fresh = RunDir(self.path)
            self.config, self.meta, self.vocab, self._data = fresh.config, fresh.meta, fresh.vocab, None
        return self

    def unlock(self) -> None:
        """Release the writer's lock if this RunDir holds it."""
        if self.writer is not None:
            self.writer.release()
            self.writer = None

    def has_checkpoint(self) -> bool:
        """Whether the run has a latest checkpoint (``checkpoint/state.json``)."""
        return self.checkpoints.exists()

    def set_aside_history(self) -> list[str]:
        """A run that has to start again from scratch: move its metrics log, MLE generator,
        samples and results aside (``NAME.1``, ...), never delete them; what was moved
        (nothing for a run that never trained)."""
        samples = self.path / "samples"
        had = [n for n in HISTORY if (self.path / n).exists()
               and not (n == "samples" and samples.is_dir() and not any(samples.iterdir()))]
        moved = []
        for name in had:
            dest = set_aside(self.path / name)
            moved.append(f"{name} -> {dest.name}")
        samples.mkdir(exist_ok=True)
        if self.meta.get("checksums", {}).pop("generator-mle.safetensors", None):
            self.save_config()
        return moved


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _remove_dead_creations(path: Path) -> None:
    """Remove ``.NAME.PID.*.creating`` folders that a killed process (PID gone) left behind."""
    prefix = f".{path.name}."
    for d in path.parent.glob(f"{glob.escape(prefix)}*.creating"):
        pid = d.name[len(prefix):].split(".", 1)[0]
        if pid.isdigit() and d.is_dir() and not _pid_alive(int(pid)):
            shutil.rmtree(d, ignore_errors=True)


def create_run_dir(path: str | Path, config: RunConfig, corpus: Any) -> RunDir:
    """Create a run directory atomically: built under a temporary name, then renamed.

    The new run is returned locked for writing (its lock is taken in the temporary folder,
    so no other writer can get in between creation and training)."""
    path = Path(path)
    if path.exists():
        raise UserError(f"{path} already exists")
    validate_config(config)  # a bad value fails here, before anything is written
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_dead_creations(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".creating",
                                dir=path.parent))
    lock = None
    try:
        lock = RunLock(tmp, label=path).acquire()
        corpus.vocab.save(tmp / "vocab.json")
        tensors = {"train": corpus.train.to(torch.int32)}
        if corpus.test is not None:
            tensors["test"] = corpus.test.to(torch.int32)
        atomic_save_tensors(tmp / "data.safetensors", tensors)
        if corpus.oracle is not None:
            atomic_save_tensors(tmp / "oracle.safetensors", corpus.oracle.params())
        checksums = {f.name: sha256(f) for f in (tmp / "data.safetensors", tmp / "oracle.safetensors")
                     if f.is_file()}
        atomic_write_json(tmp / "config.json", {"config": config.to_dict(), "versions": versions(),
                                                "seed": config.train.seed,
                                                "data_info": corpus.info, "checksums": checksums})
        (tmp / "samples").mkdir()
        os.chmod(tmp, DIR_MODE)
        os.replace(tmp, path)
        lock.move(path)
    except BaseException:
        if lock is not None:
            lock.release()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    run = RunDir(path)
    run.writer = lock
    return run
