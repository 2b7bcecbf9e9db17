"""Music files → time grids: the readers, parsing workers and the parse cache.

Each tune becomes notes (onset, duration in quarter notes, MIDI pitch), quantised to
``steps_per_quarter`` (a note keeps at least one step; of notes sounding at once the
highest wins) with leading and trailing silence trimmed: an int16 grid where a MIDI
pitch (>= 0) starts a note, ``G_HOLD`` continues it and ``G_REST`` is silence. ABC is read
with music21's tokenizer (no streams), MIDI with pretty_midi, MusicXML with music21; how a
melody is picked out of each is described in :mod:`seqgan.datasets.music`.

Workers: with ``workers`` > 1, :func:`_run_workers` starts that many child Pythons that
load *this file* by path (``spec_from_file_location``, so nothing at module level may
import torch or the package: only numpy and :mod:`seqgan.errors`) and run
:func:`_worker_main`. Each reads one JSON job ``{"spq", "instrument", "items": [[i, kind,
name, payload], ...]}`` from stdin and writes one JSON line ``[i, name, grid | null, meta,
error | null]`` per item. Nothing is pickled; items a crashed worker leaves unanswered are
parsed serially by the caller.

Cache: ``cache_dir/music/<source>-<name of arg>-<hash>.safetensors`` (never pickle), the
hash over the parser version, the source and its argument, its files (paths, sizes,
mtimes) or music21 version, ``steps_per_quarter``, ``max_tunes`` and ``instrument``.
Tensors ``grid`` (int16, all tunes' grids concatenated) and ``lengths`` (int64, one per
tune); metadata ``format`` (``"seqgan-music-tunes"``), ``version`` (``PARSER_VERSION``),
``tunes`` and ``skipped`` (JSON lists), ``steps_per_quarter`` and ``source``. A file of
another format or version, or one that cannot be read, is ignored and re-made.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from seqgan.errors import UserError

# nothing more at module level (no torch, no seqgan.datasets): workers load this file alone
# and start in half a second; torch, music21 and the rest are imported where they are used

log = logging.getLogger("seqgan.music")

# grid codes inside a parsed tune (int16): >= 0 a note onset of that MIDI pitch
G_REST, G_HOLD = -1, -2

PARSER_VERSION = 1
MIDI_SUFFIXES = {".mid", ".midi"}
XML_SUFFIXES = {".xml", ".musicxml", ".mxl"}
ABC_SUFFIXES = {".abc"}
MUSIC21_CORPORA = {"essen": "essenFolksong", "oneills": "oneills1850", "bach": "bach"}
# all options of a music source, parsing and windowing (see seqgan.datasets.music)
OPTIONS = {
    "steps_per_quarter": 4, "window": 32, "stride": None, "min_notes": 1, "transpose": "c",
    "key": "auto", "pitch_range": None, "max_tunes": None, "test_fraction": 0.05,
    "instrument": None, "cache": True, "cache_dir": None, "workers": None, "progress": True,
}
TRANSPOSE = ("c", "none", "augment")
KEY_MODES = ("auto", "signature", "tonic", "estimate")
# a MIDI file has at most 32767 ticks per quarter note; seqgan.datasets.midi writes 480 or
# 120 * steps_per_quarter of them, so every grid up to this one can be exported (96 = 480 / 5)
MAX_STEPS_PER_QUARTER = 96
MAX_WORKERS = 256


# ---------------------------------------------------------------------------------------
# parsed tunes
# ---------------------------------------------------------------------------------------
@dataclass
class TuneSet:
    """Parsed, quantised tunes of one source (what the cache stores).

    ``grids[i]`` is an int16 array over grid steps: a MIDI pitch (>= 0) starts a note,
    ``G_HOLD`` continues it, ``G_REST`` is silence. ``meta[i]`` holds ``name``,
    ``time_signature`` ("3/4" or None), ``sig_pc`` (pitch class of the relative-major tonic
    of a declared key signature, or None) and ``tonic_pc`` (declared tonic, or None).
    """

    grids: list[np.ndarray]
    meta: list[dict[str, Any]]
    skipped: list[str] = field(default_factory=list)  # "name: reason"
    steps_per_quarter: int = 4
    source: str = ""


def _notes_to_grid(notes: Sequence[tuple[float, float, int]], spq: int) -> np.ndarray:
    """Notes ``(onset_ql, dur_ql, midi)`` → grid (int16, leading/trailing silence cut).

    Onsets and ends round to the nearest step; a note keeps at least one step; where
    notes overlap the highest sounds (ties: the later note), and a lower note that
    sounds again after a higher one ends is re-struck.
    """
    if not notes:
        return np.zeros(0, dtype=np.int16)
    arr = np.asarray(notes, dtype=np.float64)  # (n, 3)
    on = np.floor(arr[:, 0] * spq + 0.5).astype(np.int64).clip(min=0)
    end = np.floor((arr[:, 0] + arr[:, 1]) * spq + 0.5).astype(np.int64)
    end = np.maximum(end, on + 1)
    pitch = arr[:, 2].astype(np.int64)
    key = np.full(int(end.max()), -1, dtype=np.int64)  # (L,) pitch << 20 | note index
    for i in range(len(arr)):
        seg = key[on[i]:end[i]]
        np.maximum(seg, (pitch[i] << 20) | i, out=seg)
    sounding = key >= 0
    idx = np.where(sounding, key & ((1 << 20) - 1), -1)
    prev = np.concatenate([[-1], idx[:-1]])
    onset = sounding & (idx != prev)
    grid = np.where(~sounding, G_REST, np.where(onset, key >> 20, G_HOLD)).astype(np.int16)
    nz = np.flatnonzero(grid != G_REST)
    return grid[nz[0]:nz[-1] + 1] if len(nz) else grid[:0]


# -- ABC (fast path: music21's ABC tokenizer, without building music21 streams) ---------
def _m21_pitch_to_midi(name: str) -> int:
    m = re.fullmatch(r"([A-G])([#\-n~`]*)(-?\d+)", name)
    if m is None:
        raise ValueError(f"unreadable pitch {name!r}")
    step, acc, octave = m.groups()
    return 12 * (int(octave) + 1) + "C D EF G A B".index(step) + acc.count("#") - acc.count("-")


_MODE_OFFSET = {None: 0, "": 0, "major": 0, "ionian": 0, "minor": 9, "aeolian": 9,
                "dorian": 2, "phrygian": 4, "lydian": 5, "mixolydian": 7, "locrian": 11}


def _abc_notes(text: str) -> tuple[list[tuple[float, float, int]], dict[str, Any]]:
    """One ABC tune → melody notes and key / meter metadata (music21's tokenizer)."""
    from music21 import abcFormat

    handler = abcFormat.ABCHandler()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        handler.process(text)
    notes: list[tuple[float, float, int]] = []
    t, meta = 0.0, {"time_signature": None, "sig_pc": None, "tonic_pc": None}
    voice = first_voice = None
    for tok in handler.tokens:
        if isinstance(tok, abcFormat.ABCMetadata):
            if tok.isVoice():
                words = tok.data.split()
                voice = words[0] if words else ""
                first_voice = voice if first_voice is None else first_voice
            elif tok.isMeter() and meta["time_signature"] is None:
                params = tok.getTimeSignatureParameters()
                if params is not None:
                    meta["time_signature"] = f"{params[0]}/{params[1]}"
            elif tok.isKey() and meta["sig_pc"] is None:
                sharps, mode = tok.getKeySignatureParameters()
                sig = (7 * sharps) % 12
                meta["sig_pc"] = sig
                meta["tonic_pc"] = (sig + _MODE_OFFSET.get((mode or "").lower(), 0)) % 12
            continue
        if (voice is not None and voice != first_voice) or not isinstance(tok, abcFormat.ABCNote):
            continue
        if tok.inGrace:
            continue
        ql = float(tok.quarterLength)
        if tok.activeTuplet is not None:
            ql *= float(tok.activeTuplet.tupletMultiplier())
        if ql <= 0:
            continue
        if isinstance(tok, abcFormat.ABCChord):
            ps = [_m21_pitch_to_midi(s.pitchName) for s in tok.subTokens if s.pitchName]
            pitch = max(ps) if ps else None
        else:
            pitch = None if tok.isRest else _m21_pitch_to_midi(tok.pitchName)
        if pitch is not None:
            if tok.tie in ("stop", "continue") and notes and notes[-1][2] == pitch \
                    and abs(notes[-1][0] + notes[-1][1] - t) < 1e-6:
                on, dur, _ = notes[-1]
                notes[-1] = (on, dur + ql, pitch)
            else:
                notes.append((t, ql, pitch))
        t += ql
    return notes, meta


def _split_abc(text: str, label: str) -> list[tuple[str, str]]:
    """An ABC file → ``[(name, tune text)]``; the file header's fields go before each tune."""
    parts = re.split(r"(?m)^(?=X:)", text)
    header = "".join(line for line in parts[0].splitlines(keepends=True)
                     if re.match(r"[A-Za-z]:", line)) if parts else ""
    out = []
    for part in parts[1:]:
        ref = part[2:part.find("\n")].strip() if "\n" in part else part[2:].strip()
        title = re.search(r"(?m)^T:\s*(.*)$", part)
        name = f"{label}#{ref}" + (f" ({title.group(1).strip()})" if title else "")
        out.append((name, header + part))
    return out


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    for bom, codec in ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if data.startswith(bom):  # a byte-order mark says the encoding
            try:
                return data.decode(codec)
            except UnicodeDecodeError:
                break
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


# -- MIDI and MusicXML ---------------------------------------------------------------
def _choose_midi_instrument(pm: Any, want: Any) -> Any:
    import pretty_midi

    insts = pm.instruments
    if want is None:
        for inst in insts:
            if not inst.is_drum and inst.notes:
                return inst
        raise ValueError("no non-drum instrument with notes")
    if isinstance(want, int) or (isinstance(want, str) and want.isdigit()):
        i = int(want)
        if not 0 <= i < len(insts):
            raise ValueError(f"instrument {i} not in 0..{len(insts) - 1}")
        return insts[i]
    w = str(want).lower()
    for inst in insts:
        gm = pretty_midi.program_to_instrument_name(inst.program).lower()
        if w in (inst.name or "").lower() or w in gm:
            return inst
    raise ValueError(f"no instrument matching {want!r}")


def _midi_notes(path: Path, instrument: Any) -> tuple[list, dict[str, Any]]:
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(str(path))
    inst = _choose_midi_instrument(pm, instrument)
    res = float(pm.resolution)
    notes = []
    for n in inst.notes:
        on = pm.time_to_tick(n.start) / res
        notes.append((on, pm.time_to_tick(n.end) / res - on, int(n.pitch)))
    meta: dict[str, Any] = {"time_signature": None, "sig_pc": None, "tonic_pc": None}
    if pm.time_signature_changes:
        ts = pm.time_signature_changes[0]
        meta["time_signature"] = f"{ts.numerator}/{ts.denominator}"
    if pm.key_signature_changes:
        k = pm.key_signature_changes[0].key_number  # 0-11 major tonic, 12-23 minor tonic
        meta["tonic_pc"] = k % 12
        meta["sig_pc"] = k if k < 12 else (k - 12 + 3) % 12
    return notes, meta


def _xml_notes(path: Path, instrument: Any) -> tuple[list, dict[str, Any]]:
    from music21 import converter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # never music21's pickle cache: it would unpickle files from a shared scratch folder
        score = converter.parse(str(path), forceSource=True, storePickle=False)
    parts = list(getattr(score, "parts", [])) or [score]
    want = str(instrument).lower() if instrument is not None else "soprano"
    chosen = next((p for p in parts if want in (p.partName or "").lower()), None)
    if chosen is None:
        if instrument is not None:
            raise ValueError(f"no part matching {instrument!r}")
        chosen = parts[0]
    part = chosen.stripTies()
    notes = []
    for el in part.flatten().notes:
        ql = float(el.quarterLength)
        if ql <= 0 or el.duration.isGrace:
            continue
        midis = [p.midi for p in getattr(el, "pitches", ())]
        if midis:
            notes.append((float(el.offset), ql, max(midis)))
    meta: dict[str, Any] = {"time_signature": None, "sig_pc": None, "tonic_pc": None}
    ts = next(iter(part.recurse().getElementsByClass("TimeSignature")), None)
    if ts is not None:
        meta["time_signature"] = ts.ratioString
    ks = next(iter(part.recurse().getElementsByClass("KeySignature")), None)
    if ks is not None:
        meta["sig_pc"] = (7 * ks.sharps) % 12
        tonic = getattr(ks, "tonic", None)
        meta["tonic_pc"] = tonic.pitchClass if tonic is not None else None
    return notes, meta


def _parse_item(item: tuple[str, str, str], spq: int, instrument: Any) -> tuple:
    """Parse one unit of work → ``(name, grid as list | None, meta, error | None)``.

    ``item`` is ``(kind, name, payload)``: kind ``abc`` (payload = tune text), ``midi`` or
    ``xml`` (payload = path). Module-level so that worker processes can run it; it returns
    JSON-able lists and dicts only.
    """
    kind, name, payload = item
    try:
        if kind == "abc":
            notes, meta = _abc_notes(payload)
        elif kind == "midi":
            notes, meta = _midi_notes(Path(payload), instrument)
        else:
            notes, meta = _xml_notes(Path(payload), instrument)
        grid = _notes_to_grid(notes, spq)
        if not (grid >= 0).any():
            return name, None, {}, "no melody notes"
        meta["name"] = name
        return name, grid.tolist(), meta, None
    except Exception as e:  # a tune that cannot be parsed is skipped and counted
        msg = " ".join(str(e).split())[:160] or (
            "the file ends early (truncated or corrupt)" if isinstance(e, EOFError) else "no details")
        return name, None, {}, f"{type(e).__name__}: {msg}"


# ---------------------------------------------------------------------------------------
# sources → units of work
# ---------------------------------------------------------------------------------------
def _items_from_files(files: Iterable[Path], root: Path | None = None) -> list[tuple[str, str, str]]:
    items = []
    for f in files:
        label = str(f.relative_to(root)) if root is not None else f.name
        suffix = f.suffix.lower()
        if suffix in ABC_SUFFIXES or (root is None and ".abc" in [s.lower() for s in f.suffixes]):
            items += [("abc", n, t) for n, t in _split_abc(_read_text(f), label)]
        elif suffix in MIDI_SUFFIXES:
            items.append(("midi", label, str(f)))
        elif suffix in XML_SUFFIXES:
            items.append(("xml", label, str(f)))
    return items


def _music21_files(name: str) -> list[Path]:
    try:
        from music21 import corpus
    except ImportError:
        raise UserError("music21 is not installed; pip install music21") from None
    composer = MUSIC21_CORPORA.get(name, name)
    paths = [Path(p) for p in corpus.getComposer(composer)] if composer else []
    if name == "bach":
        paths = [p for p in paths if p.parent.name == "bach" and p.suffix.lower() in XML_SUFFIXES]
    paths = sorted(p for p in paths if p.suffix.lower() in ABC_SUFFIXES | XML_SUFFIXES | MIDI_SUFFIXES)
    if not paths:
        raise UserError(f"music21 corpus {name!r} not found or empty; use one of: "
                        f"{', '.join(MUSIC21_CORPORA)} (or a name music21.corpus.getComposer "
                        f"knows)")
    return paths


def _source_items(source: str, arg: str) -> tuple[list[tuple[str, str, str]], dict[str, Any]]:
    """The units of work of a source and what identifies its content for the cache."""
    if source == "music21":
        name = arg or "essen"
        import music21

        files = _music21_files(name)
        return _items_from_files(files), {"corpus": name, "music21": music21.__version__,
                                          "files": len(files)}
    path = Path(arg)
    if source == "abc":
        if not path.is_file():
            raise UserError(f"ABC file {arg!r} not found")
        items = [("abc", n, t) for n, t in _split_abc(_read_text(path), path.name)]
        if not items:
            raise UserError(f"ABC file {arg!r} has no tunes (no 'X:' lines)")
        return items, {"files": _stat_list([path])}
    if source == "music-file":
        if not path.is_file():
            raise UserError(f"music file {arg!r} not found")
        suffix = path.suffix.lower()
        if suffix not in MIDI_SUFFIXES | XML_SUFFIXES | ABC_SUFFIXES:
            raise UserError(f"{arg!r} is not a MIDI (.mid, .midi) or MusicXML (.xml, .musicxml, "
                            f".mxl) file")
        return _items_from_files([path]), {"files": _stat_list([path])}
    if source == "music-folder":
        if not path.is_dir():
            raise UserError(f"folder {arg!r} not found")
        every = [f for f in path.rglob("*") if f.is_file() and not f.name.startswith(".")]
        if not every:
            raise UserError(f"folder {arg!r} is empty; it needs MIDI (.mid), MusicXML (.xml, .mxl) "
                            f"or ABC files")
        music = MIDI_SUFFIXES | XML_SUFFIXES | ABC_SUFFIXES
        files = sorted(f for f in every if f.suffix.lower() in music)
        if not files:
            hint = ("; text data must be one file with a sentence a line, not a folder"
                    if any(f.suffix.lower() == ".txt" for f in every) else "")
            raise UserError(f"folder {arg!r} has no MIDI (.mid, .midi), MusicXML (.xml, .musicxml, "
                            f".mxl) or ABC files ({len(every)} other files){hint}")
        return _items_from_files(files, root=path), {"files": _stat_list(files)}
    raise UserError(f"unknown music source {source!r}")


def _stat_list(files: Sequence[Path]) -> list:
    return [[str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns] for f in files]


# ---------------------------------------------------------------------------------------
# parsing in worker processes, with progress and a cache
# ---------------------------------------------------------------------------------------
def _run_items(items: list, spq: int, instrument: Any, workers: int, progress: bool,
               desc: str) -> list[tuple]:
    """Parse all items, in ``workers`` child processes when > 1, with a progress bar."""
    from tqdm.auto import tqdm

    bar = tqdm(total=len(items), desc=desc, unit="tune", leave=False,
               disable=(not progress) or len(items) < 200 or None)
    results: list[tuple | None] = [None] * len(items)
    try:
        if workers > 1 and len(items) > 1:
            _run_workers(items, spq, instrument, min(workers, len(items)), results, bar.update)
        for i, it in enumerate(items):  # serial, or what a failed worker left undone
            if results[i] is None:
                results[i] = _parse_item(it, spq, instrument)
                bar.update()
    finally:
        bar.close()
    return results  # type: ignore[return-value]


# the worker loads this very file as a stand-alone module: no torch, no package import
_WORKER_CMD = ("import importlib.util as u, sys; s = u.spec_from_file_location('seqgan_music_worker', "
               "sys.argv[1]); m = u.module_from_spec(s); sys.modules[s.name] = m; "
               "s.loader.exec_module(m); m._worker_main()")


def _run_workers(items: list, spq: int, instrument: Any, workers: int,
                 results: list, tick: Any) -> None:
    """Parse in child Python processes that talk JSON lines over pipes.

    Not multiprocessing: nothing is pickled, nothing depends on the caller's
    ``__main__`` being importable, and no process with torch's threads is forked.
    Items a worker does not answer (it crashed) stay ``None`` for the caller to redo.
    """
    import subprocess
    import sys
    import threading

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))
    env.setdefault("OMP_NUM_THREADS", "1")
    lock = threading.Lock()

    def run(chunk: list[int]) -> None:
        job = json.dumps({"spq": spq, "instrument": instrument,
                          "items": [[i, *items[i]] for i in chunk]})
        proc = subprocess.Popen([sys.executable, "-c", _WORKER_CMD, __file__], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
                                text=True, encoding="utf-8")
        def feed() -> None:
            try:
                proc.stdin.write(job)
                proc.stdin.close()
            except OSError:  # the worker died; its items are redone serially
                pass

        threading.Thread(target=feed, daemon=True).start()
        for line in proc.stdout:
            try:
                i, name, grid, meta, err = json.loads(line)
            except ValueError:
                continue
            with lock:
                results[i] = (name, grid, meta, err)
                tick()
        proc.wait()

    chunks = [list(range(w, len(items), workers)) for w in range(workers)]
    threads = [threading.Thread(target=run, args=(c,), daemon=True) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _worker_main() -> None:
    """Child process of :func:`_run_workers`: a JSON job on stdin, one JSON line per item out."""
    import sys

    job = json.loads(sys.stdin.read())
    for i, *item in job["items"]:
        out = _parse_item(tuple(item), job["spq"], job["instrument"])
        sys.stdout.write(json.dumps([i, *out]) + "\n")
        sys.stdout.flush()


def default_cache_dir() -> Path:
    env = os.environ.get("SEQGAN_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "seqgan"


def _cache_path(cache_dir: Path, key_obj: dict[str, Any], source: str, arg: str) -> Path:
    digest = hashlib.sha256(json.dumps(key_obj, sort_keys=True).encode()).hexdigest()[:20]
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{source}-{Path(arg).name or arg or 'default'}")[:60]
    return cache_dir / "music" / f"{stem}-{digest}.safetensors"


def _save_tuneset(path: Path, ts: TuneSet) -> None:
    import torch

    from seqgan.checkpoint import atomic_save_tensors

    path.parent.mkdir(parents=True, exist_ok=True)
    lengths = [len(g) for g in ts.grids]
    grid = np.concatenate(ts.grids) if ts.grids else np.zeros(0, np.int16)
    tensors = {"grid": torch.from_numpy(grid.astype(np.int16)),
               "lengths": torch.tensor(lengths, dtype=torch.int64)}
    meta = {"format": "seqgan-music-tunes", "version": str(PARSER_VERSION),
            "tunes": json.dumps(ts.meta), "skipped": json.dumps(ts.skipped),
            "steps_per_quarter": str(ts.steps_per_quarter), "source": ts.source}
    atomic_save_tensors(path, tensors, metadata=meta)


def _load_tuneset(path: Path) -> TuneSet | None:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("format") != "seqgan-music-tunes" or meta.get("version") != str(PARSER_VERSION):
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


def _option_checks() -> dict[str, Any]:
    """One check per option of ``OPTIONS`` (built on demand: workers never import options)."""
    from seqgan.datasets.options import boolean, choice, either, int_pair, integer, number, string

    return {
        "steps_per_quarter": integer(1, MAX_STEPS_PER_QUARTER), "window": integer(2),
        "stride": integer(1, null=True), "min_notes": integer(1), "transpose": choice(TRANSPOSE),
        "key": choice(KEY_MODES), "max_tunes": integer(1, null=True),
        "pitch_range": int_pair(0, 127, min_span=11, what="MIDI pitches", null=True),
        "test_fraction": number(0, 1, hi_open=True),
        "instrument": either(integer(0), string(), null=True), "cache": boolean(),
        "cache_dir": string(null=True), "workers": integer(1, MAX_WORKERS, null=True),
        "progress": boolean(),
    }


def _options(options: dict[str, Any] | None) -> dict[str, Any]:
    """``DataConfig.options`` checked and merged with ``OPTIONS`` (documented in music.py)."""
    from seqgan.datasets.options import check_options

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
    items, content_id = _source_items(source, arg)
    _check_instrument(opts["instrument"], items, source, arg)
    n_all = len(items)
    max_tunes = opts["max_tunes"]
    if max_tunes is not None and max_tunes < n_all:
        # a fixed sample (independent of the run's seed) so that it is cacheable and
        # representative: Essen's files are grouped by region
        keep = sorted(random.Random(12345).sample(range(n_all), max_tunes))
        items = [items[i] for i in keep]
    key_obj = {"v": PARSER_VERSION, "source": source, "arg": arg, "content": content_id,
               "spq": spq, "max_tunes": max_tunes, "instrument": opts["instrument"]}
    cache_file = None
    if opts["cache"]:
        cache_dir = Path(opts["cache_dir"]) if opts["cache_dir"] else default_cache_dir()
        cache_file = _cache_path(cache_dir, key_obj, source, arg)
        t0 = time.perf_counter()
        cached = _load_tuneset(cache_file) if cache_file.is_file() else None
        if cached is not None:
            return cached, {"cached": True, "cache_file": str(cache_file),
                            "parse_seconds": round(time.perf_counter() - t0, 3)}
    workers = opts["workers"]
    if workers is None:
        workers = min(8, os.cpu_count() or 1) if len(items) >= 400 else 1
    t0 = time.perf_counter()
    desc = f"parsing {source}:{arg or 'essen'}"
    results = _run_items(items, spq, opts["instrument"], workers, opts["progress"], desc)
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
            _save_tuneset(cache_file, tunes)
            info["cache_file"] = str(cache_file)
        except OSError as e:
            log.warning("could not write music cache %s (%s)", cache_file, e)
    return tunes, info
