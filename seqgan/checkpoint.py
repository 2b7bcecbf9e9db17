"""The run directory: one folder holds a run so any command can stop and resume it.

::

    RUN/
      config.json                resolved RunConfig, seed, versions, sha256 of the files
                                 written once (data, oracle, generator-mle)
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
corruption is detected on load. Opening a run (``Run``, ``load_checkpoint``) never changes
it, so runs can be read while another process trains them; only the trainer calls
``Run.recover`` to clear what a kill left half done. Values read from config.json are
checked against their types and ranges (``validate_config``), so a damaged or hand-edited
file fails with one line naming the key.
"""
from __future__ import annotations

import glob
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
from safetensors.torch import load, load_file, save

from seqgan.config import validate_config
from seqgan.errors import UserError

CKPT, CKPT_PREV, CKPT_TMP = "checkpoint", "checkpoint.prev", ".checkpoint.tmp"
PHASES = ("mle", "d-pretrain", "adversarial", "done")  # training's phases, in order


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
    if not path.parent.is_dir():
        raise UserError(f"{path}: cannot write it, folder {str(path.parent)!r} does not exist")
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


def load_tensors(path: str | Path, data: bytes | None = None) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file (or of its bytes ``data``, already read)."""
    path = Path(path)
    if data is None and not path.is_file():
        raise UserError(f"{path}: missing")
    try:
        return load_file(str(path)) if data is None else load(data)
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise UserError(f"{path}: corrupt or not a safetensors file ({str(e)[:80]})") from None


def _dir_identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns


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
        if self.path.exists() and not self.path.is_dir():
            raise UserError(f"{str(self.path)!r} is a file, not a run directory")
        if not self.path.is_dir():
            raise UserError(f"run {str(self.path)!r} does not exist; create it with "
                            f"`seqgan pretrain --data SPEC --out {self.path}`")
        for name in ("config.json", "vocab.json", "data.safetensors"):
            if not (self.path / name).is_file():
                raise UserError(f"{self.path} is not a seqgan run (no {name})")
        from seqgan.config import RunConfig
        from seqgan.datasets.vocab import Vocabulary

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
        self._latest_damaged = False  # load_checkpoint fell back to .prev: replace, not rotate, it
        # opening a run never changes it (it may be in training in another process); the
        # trainer calls recover() before it resumes

    # data ---------------------------------------------------------------------------
    def data(self) -> dict[str, torch.Tensor]:
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
        p = self.path / "oracle.safetensors"
        if not p.is_file():
            return None
        from seqgan.oracle import Oracle

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
        self.meta["config"] = self.config.to_dict()
        atomic_write_json(self.path / "config.json", self.meta)

    # checkpoints --------------------------------------------------------------------
    def recover(self) -> None:
        """Undo what a kill left half done; only the process about to write the run calls it.

        Removes a partly written checkpoint folder and temporary files of interrupted atomic
        writes, and puts the previous checkpoint back if a kill came between the two
        renames of a checkpoint swap.
        """
        ck, prev, tmp = (self.path / n for n in (CKPT, CKPT_PREV, CKPT_TMP))
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        for stale in self.path.glob(".*.tmp"):
            if stale.is_file():
                stale.unlink(missing_ok=True)
        if not ck.exists() and prev.exists():
            os.replace(prev, ck)

    _recover_checkpoint_dirs = recover

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
        if ck.exists() and self._latest_damaged:
            shutil.rmtree(ck)  # training resumed from .prev: keep that as the fallback
        elif ck.exists():
            shutil.rmtree(prev, ignore_errors=True)
            os.replace(ck, prev)
        self._latest_damaged = False
        os.replace(tmp, ck)
        _fsync_dir(self.path)

    def _read_checkpoint(self, folder: Path) -> tuple[dict, dict[str, Path]]:
        state = read_json(folder / "state.json")
        if not isinstance(state, dict) or not isinstance(state.get("files"), dict):
            raise UserError(f"{folder / 'state.json'}: not a checkpoint state")
        for key in ("mle_epoch", "d_round", "adv_epoch", "metrics_lines"):
            v = state.get(key, 0)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise UserError(f"{folder / 'state.json'}: {key} is {v!r}, not a count")
        if state.get("phase") not in PHASES:
            raise UserError(f"{folder / 'state.json'}: phase {state.get('phase')!r} is not one of "
                            f"{', '.join(PHASES)}")
        sec = state.get("seconds", 0.0)
        if isinstance(sec, bool) or not isinstance(sec, (int, float)) or not 0 <= sec < float("inf"):
            raise UserError(f"{folder / 'state.json'}: seconds is {sec!r}, not a duration")
        for name in ("generator", "optim-g-mle", "rng"):
            if f"{name}.safetensors" not in state["files"]:
                raise UserError(f"{folder / 'state.json'}: lists no {name}.safetensors")
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

    def load_checkpoint(self, warn=print) -> tuple[dict, dict[str, Path]] | None:
        """The latest good checkpoint as (state, {name: path}), or None if there is none.

        A corrupt latest checkpoint is reported (one line naming the file) and the
        previous one is used when it is intact.
        """
        ck, prev = self.path / CKPT, self.path / CKPT_PREV
        for _ in range(3):
            ident = _dir_identity(ck)
            if ident is None:
                # none yet, or a swap cut between its two renames (checkpoint -> .prev,
                # .tmp -> checkpoint): then .prev holds the latest complete checkpoint
                if not prev.exists():
                    return None
                try:
                    return self._read_checkpoint(prev)
                except UserError:
                    if _dir_identity(ck) is not None:
                        continue  # a writer finished its swap meanwhile
                    raise
            try:
                return self._read_checkpoint(ck)
            except UserError as e:
                if _dir_identity(ck) != ident:
                    continue  # a writer swapped in a newer checkpoint while we read it
                if prev.exists():
                    try:
                        got = self._read_checkpoint(prev)
                    except UserError as e2:
                        raise UserError(f"{e}; the previous checkpoint is damaged too ({e2})") from None
                    warn(f"warning: {e}; falling back to the previous checkpoint")
                    self._latest_damaged = True
                    return got
                raise
        raise UserError(f"{ck}: changed on every attempt to read it; is another process "
                        f"training this run?")

    def read_checkpoint_tensors(self, name: str, warn=print) -> tuple[dict[str, torch.Tensor], Path] | None:
        """One checkpoint file's tensors, safe while a trainer swaps checkpoints: the bytes
        checked against state.json are the bytes loaded, and a swap in between is retried."""
        for _ in range(5):
            ck = self.load_checkpoint(warn=warn)
            if ck is None:
                return None
            state, paths = ck
            if name not in paths:
                raise UserError(f"{self.path / CKPT}: holds no {name}.safetensors")
            try:
                data = paths[name].read_bytes()
            except OSError:
                continue  # swapped away after it was checked
            if hashlib.sha256(data).hexdigest() == state["files"][f"{name}.safetensors"]:
                return load_tensors(paths[name], data), paths[name]
        raise UserError(f"{self.path / CKPT}: changed on every attempt to read it; is another "
                        f"process training this run?")

    # metrics ------------------------------------------------------------------------
    def _metric_lines(self) -> list[dict | None]:
        """Each line of metrics.jsonl as a record, None where it is damaged (a line cut by a
        kill, or bytes changed on disk); a damaged line costs only itself."""
        p = self.path / "metrics.jsonl"
        if not p.exists():
            return []
        out: list[dict | None] = []
        for line in p.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                rec = None
            out.append(rec if isinstance(rec, dict) else None)
        return out

    def metrics_lines(self) -> int:
        return len(self._metric_lines())

    def read_metrics(self) -> list[dict]:
        return [r for r in self._metric_lines() if r is not None]

    def truncate_metrics(self, n: int) -> int:
        """Keep the records of the first ``n`` lines (those the restored checkpoint had
        seen), dropping damaged lines; rewrites the file only if that changes it.
        Returns how many of those ``n`` lines were damaged or missing."""
        lines = self._metric_lines()
        kept = [r for r in lines[:n] if r is not None]
        if len(kept) != len(lines):
            text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in kept)
            atomic_write_bytes(self.path / "metrics.jsonl", text.encode())
        return n - len(kept)

    def log_metrics(self, record: dict) -> None:
        with open(self.path / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())


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


def create_run(path: str | Path, config, corpus) -> Run:
    """Create a run directory atomically: built under a temporary name, then renamed."""
    path = Path(path)
    if path.exists():
        raise UserError(f"{path} already exists")
    validate_config(config)  # a bad value fails here, before anything is written
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_dead_creations(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".creating",
                                dir=path.parent))
    try:
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
        os.chmod(tmp, _DIR_MODE)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Run(path)
