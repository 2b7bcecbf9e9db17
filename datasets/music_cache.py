"""The parse cache of music sources: where a :class:`TuneSet` is stored, under which key,
and how it is written and read back (safetensors with JSON metadata, never pickle).

Files are ``cache_dir/music/<source>-<name of arg>-<hash>.safetensors``, the hash (see
:func:`cache_key`) over the parser version, the source and its argument, its files (paths,
sizes, mtimes) or music21 version, ``steps_per_quarter``, ``max_tunes`` and
``instrument``. Tensors ``grid`` (int16, all tunes' grids concatenated) and ``lengths``
(int64, one per tune); metadata ``format`` (``"seqgan-music-tunes"``), ``version``
(``PARSER_VERSION``), ``tunes`` and ``skipped`` (JSON lists), ``steps_per_quarter`` and
``source``. A file of another format or version, or one that cannot be read, is ignored
(and re-made by the caller). ``cache_dir`` defaults to ``$SEQGAN_CACHE_DIR``, else
``$XDG_CACHE_HOME/seqgan`` or ``~/.cache/seqgan``.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from seqgan.datasets.music_readers import PARSER_VERSION, TuneSet

# torch and safetensors are imported where a file is written or read, so that importing the
# music data modules stays cheap

log = logging.getLogger("seqgan.music")

FORMAT = "seqgan-music-tunes"


def default_cache_dir() -> Path:
    """``$SEQGAN_CACHE_DIR``, else ``$XDG_CACHE_HOME/seqgan``, else ``~/.cache/seqgan``."""
    env = os.environ.get("SEQGAN_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "seqgan"


def cache_key(source: str, arg: str, content: dict[str, Any], spq: int, max_tunes: int | None,
              instrument: Any) -> dict[str, Any]:
    """What a cache entry depends on (``content`` comes from ``music_readers.source_items``)."""
    return {"v": PARSER_VERSION, "source": source, "arg": arg, "content": content,
            "spq": spq, "max_tunes": max_tunes, "instrument": instrument}


def cache_path(cache_dir: Path, key_obj: dict[str, Any], source: str, arg: str) -> Path:
    """``cache_dir/music/<source>-<arg's name>-<hash>.safetensors``; the hash is 20 hex digits
    of sha256 over ``key_obj`` (sorted JSON), the stem sanitised and cut to 60 characters."""
    digest = hashlib.sha256(json.dumps(key_obj, sort_keys=True).encode()).hexdigest()[:20]
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{source}-{Path(arg).name or arg or 'default'}")[:60]
    return cache_dir / "music" / f"{stem}-{digest}.safetensors"


def save_tuneset(path: Path, ts: TuneSet) -> None:
    """Write ``ts`` to ``path`` atomically (tensors ``grid``, ``lengths`` and the metadata
    of the module docstring), creating its folder."""
    import torch

    from seqgan.files import atomic_save_tensors

    path.parent.mkdir(parents=True, exist_ok=True)
    lengths = [len(g) for g in ts.grids]
    grid = np.concatenate(ts.grids) if ts.grids else np.zeros(0, np.int16)
    tensors = {"grid": torch.from_numpy(grid.astype(np.int16)),
               "lengths": torch.tensor(lengths, dtype=torch.int64)}
    meta = {"format": FORMAT, "version": str(PARSER_VERSION),
            "tunes": json.dumps(ts.meta), "skipped": json.dumps(ts.skipped),
            "steps_per_quarter": str(ts.steps_per_quarter), "source": ts.source}
    atomic_save_tensors(path, tensors, metadata=meta)


def load_tuneset(path: Path) -> TuneSet | None:
    """The tunes stored at ``path``, or None for a file of another format or version, or a
    damaged one."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("format") != FORMAT or meta.get("version") != str(PARSER_VERSION):
                return None
            grid = f.get_tensor("grid").numpy()
            lengths = f.get_tensor("lengths").tolist()
        bounds = np.cumsum([0] + lengths)
        grids = [grid[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
        return TuneSet(grids=grids, meta=json.loads(meta["tunes"]), skipped=json.loads(meta["skipped"]),
                       steps_per_quarter=int(meta["steps_per_quarter"]), source=meta.get("source", ""))
    except Exception as e:  # a damaged cache file is re-made, never trusted
        log.warning("ignoring unreadable music cache %s (%s)", path, e)
        return None
