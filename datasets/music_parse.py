"""Loading a music source's tunes: :func:`parse_tunes`, the entry point, and the options.

:func:`parse_tunes` checks the options (``OPTIONS``, documented in
:mod:`seqgan.datasets.music`), lists the source's items and picks the ``max_tunes``
sample (:mod:`seqgan.datasets.music_readers`), returns the cached :class:`TuneSet` when
there is one (:mod:`seqgan.datasets.music_cache`), else parses the items, in worker
processes when there are many (:mod:`seqgan.datasets.music_workers`), and caches them.
"""
from __future__ import annotations

import logging
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from seqgan.datasets.music_cache import cache_key, cache_path, default_cache_dir, load_tuneset, save_tuneset
from seqgan.datasets.music_readers import PARSERS, TuneSet, source_items
from seqgan.datasets.music_workers import parse_all
from seqgan.datasets.options import (boolean, check_options, choice, either, int_pair, integer, number,
                                     string)
from seqgan.errors import UserError

log = logging.getLogger("seqgan.music")

# all options of a music source, parsing and windowing (see seqgan.datasets.music)
OPTIONS = {
    "steps_per_quarter": 4, "window": 32, "stride": None, "min_notes": 1, "transpose": "c",
    "key": "auto", "pitch_range": None, "max_tunes": None, "test_fraction": 0.05,
    "instrument": None, "cache": True, "cache_dir": None, "workers": None, "progress": True,
    "parser": "music21",
}
TRANSPOSE = ("c", "none", "augment")
KEY_MODES = ("auto", "signature", "tonic", "estimate")
# a MIDI file has at most 32767 ticks per quarter note; seqgan.datasets.midi writes 480 or
# 120 * steps_per_quarter of them, so every grid up to this one can be exported (96 = 480 / 5)
MAX_STEPS_PER_QUARTER = 96
MAX_WORKERS = 256
MAX_WINDOW = 100_000  # steps: a window is an (N, T) row, and T is the model's sequence length


def _option_checks() -> dict[str, Any]:
    """One check per option of ``OPTIONS``."""
    return {
        "steps_per_quarter": integer(1, MAX_STEPS_PER_QUARTER), "window": integer(2, MAX_WINDOW),
        "stride": integer(1, null=True), "min_notes": integer(1), "transpose": choice(TRANSPOSE),
        "key": choice(KEY_MODES), "max_tunes": integer(1, null=True),
        "pitch_range": int_pair(0, 127, min_span=11, what="MIDI pitches", null=True),
        "test_fraction": number(0, 1, hi_open=True),
        "instrument": either(integer(0), string(), null=True), "cache": boolean(),
        "cache_dir": string(null=True), "workers": integer(1, MAX_WORKERS, null=True),
        "progress": boolean(), "parser": choice(PARSERS),
    }


def _options(options: dict[str, Any] | None) -> dict[str, Any]:
    """``DataConfig.options`` checked and merged with ``OPTIONS`` (documented in music.py)."""
    return check_options("music", options, OPTIONS, _option_checks())


def _check_instrument(instrument: Any, items: list, source: str, arg: str) -> None:
    """``instrument`` picks a MIDI instrument or MusicXML part: refuse it for ABC-only sources."""
    if instrument is not None and not any(kind in ("midi", "xml") for kind, _, _ in items):
        where = f"music21:{arg or 'essen'}" if source == "music21" else repr(arg)
        raise UserError(f"option instrument={instrument!r} picks a MIDI instrument or MusicXML "
                        f"part, but {where} has only ABC tunes (one melody each); remove it")


def parse_tunes(source: str, arg: str, options: dict[str, Any] | None = None) -> tuple[TuneSet, dict]:
    """Parse and quantise every tune of a source (cached); returns ``(tunes, info)``.

    ``info`` says whether the cache was used and how long parsing took. Raises
    :class:`UserError` when the source yields no melody at all.
    """
    opts = _options(options)
    spq = opts["steps_per_quarter"]
    items, content_id = source_items(source, arg, opts["parser"])
    _check_instrument(opts["instrument"], items, source, arg)
    n_all = len(items)
    max_tunes = opts["max_tunes"]
    if max_tunes is not None and max_tunes < n_all:
        # a fixed sample (independent of the run's seed) so that it is cacheable and
        # representative: Essen's files are grouped by region
        keep = sorted(random.Random(12345).sample(range(n_all), max_tunes))
        items = [items[i] for i in keep]
    key_obj = cache_key(source, arg, content_id, spq, max_tunes, opts["instrument"])
    cache_file = None
    if opts["cache"]:
        cache_dir = Path(opts["cache_dir"]) if opts["cache_dir"] else default_cache_dir()
        cache_file = cache_path(cache_dir, key_obj, source, arg)
        t0 = time.perf_counter()
        cached = load_tuneset(cache_file) if cache_file.is_file() else None
        if cached is not None:
            return cached, {"cached": True, "cache_file": str(cache_file),
                            "parse_seconds": round(time.perf_counter() - t0, 3)}
    workers = opts["workers"]
    if workers is None:
        workers = min(8, os.cpu_count() or 1) if len(items) >= 400 else 1
    t0 = time.perf_counter()
    desc = f"parsing {source}:{arg or 'essen'}"
    results = parse_all(items, spq, opts["instrument"], workers, opts["progress"], desc)
    grids, meta, skipped = [], [], []
    for name, grid, m, err in results:
        if err is not None:
            skipped.append(f"{name}: {err}")
        else:
            grids.append(np.asarray(grid, dtype=np.int16))
            meta.append(m)
    seconds = time.perf_counter() - t0
    if not grids:
        if source == "music-file" and len(skipped) == 1:
            raise UserError(f"cannot read a melody from {arg!r}: {skipped[0].split(': ', 1)[-1]}")
        where = f"{source}:{arg}" if source == "music21" else repr(arg)
        first = f" (first: {skipped[0]})" if skipped else ""
        raise UserError(f"no melody could be read from {where}: all {len(items)} tunes/files "
                        f"failed{first}")
    tunes = TuneSet(grids, meta, skipped, spq, f"{source}:{arg}")
    info = {"cached": False, "parse_seconds": round(seconds, 3),
            "seconds_per_tune": round(seconds / max(1, len(items)), 5), "workers": workers}
    if cache_file is not None:
        try:
            save_tuneset(cache_file, tunes)
            info["cache_file"] = str(cache_file)
        except OSError as e:
            log.warning("could not write music cache %s (%s)", cache_file, e)
    return tunes, info
