"""The run directory: one folder holds a run so any command can stop and resume it.

::

    RUN/
      config.json                resolved RunConfig, seed, versions (written at creation)
      vocab.json                 Vocabulary
      data.safetensors           train / test token tensors (a run never re-reads its source)
      oracle.safetensors         the oracle's parameters (synthetic data only)
      generator-mle.safetensors  the generator when MLE pretraining ended
      checkpoint/                the latest consistent checkpoint:
        state.json               phase, counters, metrics_lines, sha256 of every file
        generator.safetensors  discriminator.safetensors  rollout.safetensors
        optim-g.safetensors  optim-d.safetensors  rng.safetensors
      checkpoint.prev/           the one before it (kept as a fallback)
      metrics.jsonl              one JSON object per evaluation
      samples/

Safety: weights and optimizer state are safetensors, everything else JSON; nothing is
pickled and nothing in a run is ever imported or executed. Every file is written to a
temporary name and ``os.replace``d. A checkpoint is written whole into a temporary folder
and swapped in by renames, so a kill at any moment leaves either the new or the previous
checkpoint intact; ``state.json`` records the sha256 of each file so truncation or
corruption is detected on load.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from seqgan.errors import UserError

CKPT, CKPT_PREV, CKPT_TMP = "checkpoint", "checkpoint.prev", ".checkpoint.tmp"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()  # mkstemp/mkdtemp create 0600/0700: give the usual modes
_DIR_MODE = 0o777 & ~_umask()


# -- atomic primitives -------------------------------------------------------------------
def _fsync_dir(path: Path) -> None:
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
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def atomic_save_tensors(path: str | Path, tensors: dict[str, torch.Tensor],
                        metadata: dict[str, str] | None = None) -> None:
    data = save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, metadata=metadata)
    atomic_write_bytes(path, data)


def read_json(path: str | Path) -> Any:
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


def load_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: missing")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise UserError(f"{path}: corrupt or not a safetensors file ({str(e)[:80]})") from None


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# -- optimizer and RNG state as tensors ---------------------------------------------------
def optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    sd = opt.state_dict()
    tensors = {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            tensors[f"{pid}.{k}"] = v if torch.is_tensor(v) else torch.tensor(v)
    return tensors, {"param_groups": json.dumps(sd["param_groups"])}


def load_optimizer(opt: torch.optim.Optimizer, path: Path) -> None:
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
    out = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            out[f"cuda{i}"] = s
    return out


def restore_rng(tensors: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(tensors["torch"])
    if torch.cuda.is_available():
        states = [tensors[f"cuda{i}"] for i in range(torch.cuda.device_count()) if f"cuda{i}" in tensors]
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states)


# -- the run -----------------------------------------------------------------------------
def versions() -> dict[str, str]:
    import seqgan

    return {"seqgan": seqgan.__version__, "torch": torch.__version__,
            "python": platform.python_version()}


class Run:
    """An opened run directory."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_dir():
            raise UserError(f"run {str(self.path)!r} does not exist; create it with "
                            f"`seqgan pretrain --data SPEC --out {self.path}`")
        for name in ("config.json", "vocab.json", "data.safetensors"):
            if not (self.path / name).is_file():
                raise UserError(f"{self.path} is not a seqgan run (no {name})")
        from seqgan.config import RunConfig
        from seqgan.datasets.vocab import Vocabulary

        raw = read_json(self.path / "config.json")
        if not isinstance(raw, dict) or "config" not in raw:
            raise UserError(f"{self.path / 'config.json'}: not a seqgan run configuration")
        try:
            self.config = RunConfig.from_dict(raw["config"])
        except UserError as e:
            raise UserError(f"{self.path / 'config.json'}: {e}") from None
        self.meta = raw
        self.vocab = Vocabulary.load(self.path / "vocab.json")
        self._data: dict[str, torch.Tensor] | None = None
        self._recover_checkpoint_dirs()

    # data ---------------------------------------------------------------------------
    def data(self) -> dict[str, torch.Tensor]:
        if self._data is None:
            d = load_tensors(self.path / "data.safetensors")
            if "train" not in d or d["train"].dim() != 2:
                raise UserError(f"{self.path / 'data.safetensors'}: no (N, T) 'train' tensor")
            self._data = {k: v.long() for k, v in d.items()}
        return self._data

    def oracle(self):
        p = self.path / "oracle.safetensors"
        if not p.is_file():
            return None
        from seqgan.oracle import Oracle

        return Oracle(load_tensors(p), seq_len=self.config.generator.seq_len)

    def save_config(self) -> None:
        self.meta["config"] = self.config.to_dict()
        atomic_write_json(self.path / "config.json", self.meta)

    # checkpoints --------------------------------------------------------------------
    def _recover_checkpoint_dirs(self) -> None:
        """Finish or undo a checkpoint swap that a kill interrupted."""
        ck, prev, tmp = (self.path / n for n in (CKPT, CKPT_PREV, CKPT_TMP))
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if not ck.exists() and prev.exists():
            os.replace(prev, ck)

    def has_checkpoint(self) -> bool:
        return (self.path / CKPT / "state.json").is_file()

    def save_checkpoint(self, state: dict[str, Any], files: dict[str, tuple[dict, dict | None]]) -> None:
        """Write ``files`` ({name: (tensors, metadata)}) and ``state`` as one checkpoint."""
        tmp = self.path / CKPT_TMP
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        digests = {}
        for name, (tensors, meta) in files.items():
            atomic_save_tensors(tmp / f"{name}.safetensors", tensors, meta)
            digests[f"{name}.safetensors"] = sha256(tmp / f"{name}.safetensors")
        state = dict(state, files=digests, metrics_lines=self.metrics_lines())
        atomic_write_json(tmp / "state.json", state)
        _fsync_dir(tmp)
        ck, prev = self.path / CKPT, self.path / CKPT_PREV
        if ck.exists():
            shutil.rmtree(prev, ignore_errors=True)
            os.replace(ck, prev)
        os.replace(tmp, ck)
        _fsync_dir(self.path)

    def _read_checkpoint(self, folder: Path) -> tuple[dict, dict[str, Path]]:
        state = read_json(folder / "state.json")
        if not isinstance(state, dict) or not isinstance(state.get("files"), dict):
            raise UserError(f"{folder / 'state.json'}: not a checkpoint state")
        paths = {}
        for fname, digest in state["files"].items():
            p = folder / fname
            if not p.is_file():
                raise UserError(f"{p}: missing from the checkpoint")
            if sha256(p) != digest:
                raise UserError(f"{p}: corrupt (checksum does not match state.json)")
            paths[fname.removesuffix(".safetensors")] = p
        return state, paths

    def load_checkpoint(self, warn=print) -> tuple[dict, dict[str, Path]] | None:
        """The latest good checkpoint as (state, {name: path}), or None if there is none.

        A corrupt latest checkpoint is reported (one line naming the file) and the
        previous one is used when it is intact.
        """
        ck, prev = self.path / CKPT, self.path / CKPT_PREV
        if not ck.exists():
            return None
        try:
            return self._read_checkpoint(ck)
        except UserError as e:
            if prev.exists():
                try:
                    got = self._read_checkpoint(prev)
                except UserError:
                    raise e from None
                warn(f"warning: {e}; falling back to the previous checkpoint")
                return got
            raise

    # metrics ------------------------------------------------------------------------
    def metrics_lines(self) -> int:
        return len(self.read_metrics())

    def read_metrics(self) -> list[dict]:
        p = self.path / "metrics.jsonl"
        if not p.exists():
            return []
        out = []
        for line in p.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                break  # a line cut by a kill: everything after it is not trusted
            if isinstance(rec, dict):
                out.append(rec)
        return out

    def truncate_metrics(self, n: int) -> None:
        """Keep the first ``n`` records (those the restored checkpoint had seen)."""
        recs = self.read_metrics()
        if len(recs) != n or (self.path / "metrics.jsonl").exists():
            text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in recs[:n])
            atomic_write_bytes(self.path / "metrics.jsonl", text.encode())

    def log_metrics(self, record: dict) -> None:
        with open(self.path / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())


def create_run(path: str | Path, config, corpus) -> Run:
    """Create a run directory atomically: built under a temporary name, then renamed."""
    path = Path(path)
    if path.exists():
        raise UserError(f"{path} already exists")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".creating", dir=path.parent))
    try:
        atomic_write_json(tmp / "config.json", {"config": config.to_dict(), "versions": versions(),
                                                "seed": config.train.seed,
                                                "data_info": corpus.info})
        corpus.vocab.save(tmp / "vocab.json")
        tensors = {"train": corpus.train.to(torch.int32)}
        if corpus.test is not None:
            tensors["test"] = corpus.test.to(torch.int32)
        atomic_save_tensors(tmp / "data.safetensors", tensors)
        if corpus.oracle is not None:
            atomic_save_tensors(tmp / "oracle.safetensors", corpus.oracle.params())
        (tmp / "samples").mkdir()
        os.chmod(tmp, _DIR_MODE)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Run(path)
