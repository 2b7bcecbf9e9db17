"""Checkpoints of a run: a folder of safetensors files and a ``state.json``, swapped in whole.

::

    RUN/checkpoint/        state.json: phase, counters, metrics_lines, sha256 of every file
                           + the files of the training state (generator, optimizers, rng, ...)
    RUN/checkpoint.prev/   the one before it (the fallback when the latest is damaged)
    RUN/.checkpoint.tmp/   a checkpoint being written

A checkpoint is written whole into ``.checkpoint.tmp`` and swapped in by two renames
(``checkpoint -> checkpoint.prev``, ``.checkpoint.tmp -> checkpoint``), so a kill at any
moment leaves the new or the previous checkpoint intact; ``state.json`` records the sha256
of each file, so a truncated or corrupted file is found when it is read. A write that
fails (a full disk) removes its temporary folder, keeps the previous checkpoint and raises
one line. Reading never changes the folder, so checkpoints can be read while another
process trains; only the writer calls :meth:`Checkpoints.recover`.

Optimizer and RNG states are stored as tensors (:func:`optimizer_tensors`,
:func:`rng_tensors`) with the optimizer's param groups as JSON metadata: no pickle.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable

import torch

from seqgan.errors import UserError
from seqgan.files import atomic_save_tensors, atomic_write_json, dir_identity, fsync_dir, load_tensors, \
    read_json, sha256

CKPT, CKPT_PREV, CKPT_TMP = "checkpoint", "checkpoint.prev", ".checkpoint.tmp"
PHASES = ("mle", "d-pretrain", "adversarial", "done")  # training's phases, in order
REQUIRED = ("generator", "optim-g-mle", "rng")  # files every checkpoint holds


# -- optimizer and RNG state as tensors ---------------------------------------------------
def optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """``({"PID.KEY": tensor}, {"param_groups": JSON})`` of an optimizer's state_dict."""
    sd = opt.state_dict()
    tensors = {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            tensors[f"{pid}.{k}"] = v if torch.is_tensor(v) else torch.tensor(v)
    return tensors, {"param_groups": json.dumps(sd["param_groups"])}


def load_optimizer(opt: torch.optim.Optimizer, path: Path) -> None:
    """Restore an optimizer from a file written from :func:`optimizer_tensors`."""
    from safetensors import safe_open

    tensors = load_tensors(path)
    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
    try:
        groups = json.loads(meta["param_groups"])
    except (KeyError, json.JSONDecodeError):
        raise UserError(f"{path}: optimizer file lacks its param_groups metadata") from None
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, v in tensors.items():
        pid, _, name = key.partition(".")
        state.setdefault(int(pid), {})[name] = v
    try:
        opt.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, KeyError, RuntimeError) as e:
        raise UserError(f"{path}: does not match this model's optimizer ({e})") from None


def rng_tensors() -> dict[str, torch.Tensor]:
    """The CPU RNG state and, when CUDA is in use, every GPU's."""
    out = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            out[f"cuda{i}"] = s
    return out


def restore_rng(tensors: dict[str, torch.Tensor]) -> None:
    """Restore the CPU RNG state, and every GPU's when the tensors hold one per visible GPU."""
    torch.set_rng_state(tensors["torch"])
    if torch.cuda.is_available():
        states = [tensors[f"cuda{i}"] for i in range(torch.cuda.device_count()) if f"cuda{i}" in tensors]
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states)


Files = dict[str, tuple[dict[str, torch.Tensor], "dict[str, str] | None"]]  # name: (tensors, metadata)


def check_pair_state(state: dict[str, Any], where: Path) -> None:
    """The counters of a generator/discriminator pair's ``state.json``, checked."""
    for key in ("mle_epoch", "d_round", "adv_epoch"):
        v = state.get(key, 0)
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise UserError(f"{where}: {key} is {v!r}, not a count")
    if state.get("phase") not in PHASES:
        raise UserError(f"{where}: phase {state.get('phase')!r} is not one of {', '.join(PHASES)}")


class Checkpoints:
    """The checkpoints of the run directory ``path`` (``label``: its name in messages).

    ``folder`` names them (``checkpoint`` for the pair; ``population`` for a coevolution):
    the latest in ``FOLDER/``, its fallback in ``FOLDER.prev/``, one being written in
    ``.FOLDER.tmp/``. ``required`` files must be listed in every state; ``check`` validates
    the rest of a ``state.json`` (raising a UserError naming ``where``).
    """

    def __init__(self, path: Path, label: str | None = None, folder: str = CKPT,
                 required: tuple[str, ...] = REQUIRED,
                 check: Callable[[dict[str, Any], Path], None] = check_pair_state):
        self.path = Path(path)
        self.label = label or str(path)
        self.names = (folder, f"{folder}.prev", f".{folder}.tmp")
        self.required, self.check = required, check
        self.latest_damaged = False  # load() fell back to .prev: replace, not rotate, the latest

    def exists(self) -> bool:
        """Whether the latest checkpoint folder holds a ``state.json``."""
        return (self.path / self.names[0] / "state.json").is_file()

    def any(self) -> bool:
        """A checkpoint or its fallback is there (even a damaged one)."""
        return (self.path / self.names[0]).exists() or (self.path / self.names[1]).exists()

    def recover(self) -> None:
        """Undo what a kill left half done; only the process about to write the run calls it.

        Removes a partly written checkpoint folder and temporary files of interrupted atomic
        writes, and puts the previous checkpoint back if a kill came between the two
        renames of a checkpoint swap.
        """
        ck, prev, tmp = (self.path / n for n in self.names)
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        for stale in self.path.glob(".*.tmp"):
            if stale.is_file():
                stale.unlink(missing_ok=True)
        if not ck.exists() and prev.exists():
            os.replace(prev, ck)

    def save(self, state: dict[str, Any], files: Files, metrics_lines: int) -> None:
        """Write ``files`` and ``state`` (with the sha256 of each file and the number of
        metrics lines it has seen) as one checkpoint, swapped in whole.

        On an ``OSError`` (a full disk) the temporary folder is removed, the previous
        checkpoint stays in place, and a :class:`UserError` names the run and the error.
        A checkpoint written by several processes is the same three steps split between
        them: one calls :meth:`begin`, each :meth:`write_files` its own files into the
        temporary folder, and one :meth:`commit` s the manifest of every file's digest.
        """
        self.begin()
        self.commit(state, self.write_files(files), metrics_lines)

    def _failed(self, e: OSError) -> UserError:
        """Clean up after a failed write; the one-line error to raise."""
        self.abort()
        where = f" ({e.filename})" if getattr(e, "filename", None) else ""
        return UserError(f"{self.label}: could not write a checkpoint: {e.strerror or e}{where}; "
                         f"the previous checkpoint and the metrics log are intact; free some "
                         f"space and run the same command again to resume")

    def abort(self) -> None:
        """Remove a partly written checkpoint; put the previous one back if a swap was cut."""
        shutil.rmtree(self.path / self.names[2], ignore_errors=True)
        ck, prev = self.path / self.names[0], self.path / self.names[1]
        if not ck.exists() and prev.exists():
            try:
                os.replace(prev, ck)
            except OSError:
                pass  # recover() puts it back on the next start

    def begin(self) -> None:
        """An empty temporary folder for the next checkpoint."""
        tmp = self.path / self.names[2]
        try:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
        except OSError as e:
            raise self._failed(e) from None

    def write_files(self, files: Files) -> dict[str, str]:
        """Write ``files`` into the temporary folder; their sha256 digests by file name."""
        tmp = self.path / self.names[2]
        digests = {}
        try:
            for name, (tensors, meta) in files.items():
                atomic_save_tensors(tmp / f"{name}.safetensors", tensors, meta)
                digests[f"{name}.safetensors"] = sha256(tmp / f"{name}.safetensors")
        except OSError as e:
            raise self._failed(e) from None
        return digests

    def commit(self, state: dict[str, Any], digests: dict[str, str], metrics_lines: int) -> None:
        """Write ``state.json`` (with every file's digest) and swap the checkpoint in."""
        tmp = self.path / self.names[2]
        try:
            atomic_write_json(tmp / "state.json", dict(state, files=digests, metrics_lines=metrics_lines))
            fsync_dir(tmp)
            ck, prev = self.path / self.names[0], self.path / self.names[1]
            if ck.exists() and self.latest_damaged:
                shutil.rmtree(ck)  # training resumed from .prev: keep that as the fallback
            elif ck.exists():
                shutil.rmtree(prev, ignore_errors=True)
                os.replace(ck, prev)
            self.latest_damaged = False
            os.replace(tmp, ck)
            fsync_dir(self.path)
        except OSError as e:
            raise self._failed(e) from None

    def _read(self, folder: Path) -> tuple[dict, dict[str, Path]]:
        state = read_json(folder / "state.json")
        where = folder / "state.json"
        if not isinstance(state, dict) or not isinstance(state.get("files"), dict):
            raise UserError(f"{where}: not a checkpoint state")
        v = state.get("metrics_lines", 0)
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise UserError(f"{where}: metrics_lines is {v!r}, not a count")
        self.check(state, where)
        sec = state.get("seconds", 0.0)
        if isinstance(sec, bool) or not isinstance(sec, (int, float)) or not 0 <= sec < float("inf"):
            raise UserError(f"{where}: seconds is {sec!r}, not a duration")
        for name in self.required:
            if f"{name}.safetensors" not in state["files"]:
                raise UserError(f"{where}: lists no {name}.safetensors")
        paths = {}
        for fname, digest in state["files"].items():
            p = folder / fname
            try:
                actual = sha256(p)
            except OSError:
                raise UserError(f"{p}: missing from the checkpoint") from None
            if actual != digest:
                raise UserError(f"{p}: corrupt (checksum does not match state.json)")
            paths[fname.removesuffix(".safetensors")] = p
        return state, paths

    def load(self, warn: Callable[[str], Any] = print) -> tuple[dict, dict[str, Path]] | None:
        """The latest good checkpoint as (state, {name: path}), or None if there is none.

        A corrupt latest checkpoint is reported (one line naming the file) and the
        previous one is used when it is intact. Safe while a writer swaps checkpoints.
        """
        ck, prev = self.path / self.names[0], self.path / self.names[1]
        for _ in range(3):
            ident = dir_identity(ck)
            if ident is None:
                # none yet, or a swap cut between its two renames (checkpoint -> .prev,
                # .tmp -> checkpoint): then .prev holds the latest complete checkpoint
                if not prev.exists():
                    return None
                try:
                    return self._read(prev)
                except UserError:
                    if dir_identity(ck) is not None:
                        continue  # a writer finished its swap meanwhile
                    raise
            try:
                return self._read(ck)
            except UserError as e:
                if dir_identity(ck) != ident:
                    continue  # a writer swapped in a newer checkpoint while we read it
                if prev.exists():
                    try:
                        got = self._read(prev)
                    except UserError as e2:
                        raise UserError(f"{e}; the previous checkpoint is damaged too ({e2})") from None
                    warn(f"warning: {e}; falling back to the previous checkpoint")
                    self.latest_damaged = True
                    return got
                raise
        raise UserError(f"{ck}: changed on every attempt to read it; is another process "
                        f"training this run?")

    def read_tensors(self, name: str, warn: Callable[[str], Any] = print
                     ) -> tuple[dict[str, torch.Tensor], Path] | None:
        """One checkpoint file's tensors and path (see :meth:`read`), or None."""
        got = self.read(lambda state: [name], warn)
        return None if got is None else (got[1][name], got[2][name])

    def read(self, names: Callable[[dict[str, Any]], list[str]], warn: Callable[[str], Any] = print
             ) -> tuple[dict, dict[str, dict[str, torch.Tensor]], dict[str, Path]] | None:
        """``(state, {name: tensors}, {name: path})`` of the files ``names(state)`` of one
        and the same checkpoint, or None if there is none. Safe while a trainer swaps
        checkpoints: the bytes checked against state.json are the bytes loaded, and a swap
        in between is retried."""
        for _ in range(5):
            ck = self.load(warn=warn)
            if ck is None:
                return None
            state, paths = ck
            tensors, where = {}, {}
            for name in names(state):
                if name not in paths:
                    raise UserError(f"{self.path / self.names[0]}: holds no {name}.safetensors")
                try:
                    data = paths[name].read_bytes()
                except OSError:
                    break  # swapped away after it was checked
                if hashlib.sha256(data).hexdigest() != state["files"][f"{name}.safetensors"]:
                    break
                tensors[name], where[name] = load_tensors(paths[name], data), paths[name]
            else:
                return state, tensors, where
        raise UserError(f"{self.path / self.names[0]}: changed on every attempt to read it; is another "
                        f"process training this run?")
