"""Melodies: real corpora → a time grid → (N, T) token windows, and back to note names.

Sources (``source``, ``arg``), named by :func:`seqgan.datasets.resolve_spec`:

``music21``       a corpus built into music21, no network: ``essen`` (about 8,500 Essen
                  folk songs in ABC, the toolkit's default data), ``oneills`` (O'Neill's
                  1850), ``bach`` (the soprano line of the chorales, MusicXML), or any other
                  name ``music21.corpus.getComposer`` knows.
``abc``           one ABC file with many tunes (e.g. the Nottingham database). Chord symbols
                  in quotes are not melody notes; of a written chord ``[ceg]`` the top note
                  is kept; grace notes are dropped; ties between equal pitches are merged;
                  repeats are read as written (not expanded); with several voices ``V:`` the
                  first one is the melody.
``music-folder``  a folder (searched recursively) of MIDI, MusicXML or ABC files.
``music-file``    one MIDI or MusicXML file.

A MIDI file's melody is the highest sounding note at each grid step of the chosen
instrument (option ``instrument``: an index into the file's instruments or a part of its
name / General MIDI program name), by default the first non-drum instrument with notes.
A MusicXML file's melody is the part whose name contains ``instrument`` (default: a part
called "Soprano", else the first part), highest note of chords.

Tokens (ids fixed: ``PAD=0 BOS=1 REST=2 HOLD=3``, then one per MIDI pitch of the data's
range, lowest first)::

    "<pad>" "<bos>" "R" "_" "C4" "C#4" ...      e.g. a window "C4 _ _ _ E4 _ R _"

``HOLD`` ("_") continues the sounding note, ``REST`` ("R") is silence, a pitch token starts
a note. ``BOS`` is the generator's start token (``Corpus.start_token``); ``PAD`` never
occurs in the data (windows are filled to length with REST).

Pipeline: parse each tune to notes (onset, duration in quarter notes, MIDI pitch) →
quantise to ``steps_per_quarter`` (a note keeps at least one step; of notes sounding at
once the highest wins) → trim leading and trailing silence → transpose → cut windows.
The parsed grids are cached (safetensors + JSON metadata, never pickle) under
``cache_dir`` keyed by source and parsing options, so a second load takes seconds.

Options (``DataConfig.options``; unknown keys are errors):

==================  ======================================================================
steps_per_quarter   grid resolution, default 4 (a sixteenth note)
window              window length T when neither ``seq_len`` nor ``DataConfig.seq_len`` is
                    set; default 32 (two bars of 4/4)
stride              steps between window starts, default = T (non-overlapping)
min_notes           windows with fewer note onsets are dropped, default 1 (all-REST windows)
transpose           ``"c"`` (default) each tune to C major / A minor; ``"none"``;
                    ``"augment"``: to C, plus transposed copies of every *training* tune
                    by -5..+6 semitones that stay inside the pitch range
key                 how a tune's key is found: ``"auto"`` (default: the declared key
                    signature; for Essen, whose ``K:`` gives only the tonic, that tonic
                    with the mode estimated; the Krumhansl-Kessler estimate when nothing
                    is declared), ``"signature"``, ``"tonic"``, ``"estimate"``
pitch_range         ``[lo, hi]`` MIDI pitches of the vocabulary; notes outside are moved by
                    octaves into it. Default: the data's range.
max_tunes           parse only a fixed, representative subset of this many tunes
                    (a seeded sample independent of the run's seed, so it caches)
test_fraction       share of *tunes* held out as ``Corpus.test``, default 0.05
instrument          MIDI instrument / MusicXML part, see above
cache               default True; files go to ``cache_dir/music/`` (default
                    ``$SEQGAN_CACHE_DIR``, else ``$XDG_CACHE_HOME/seqgan`` or ``~/.cache/seqgan``)
workers             parsing processes (default: up to 8 for 400+ tunes, else 1); they are
                    child Pythons exchanging JSON lines, nothing is pickled
progress            show a progress bar on long loads (default True; only on a terminal)
==================  ======================================================================
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
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from typing import TYPE_CHECKING

import numpy as np

from seqgan.errors import UserError

# torch and the package's types are imported where they are used: parsing workers load
# this file on its own (see _run_workers) and start in half a second without torch.
if TYPE_CHECKING:
    import torch

    from seqgan.datasets import Corpus
    from seqgan.datasets.vocab import Vocabulary

log = logging.getLogger("seqgan.music")

PAD, BOS, REST, HOLD = 0, 1, 2, 3
FIRST_PITCH = 4
SPECIAL_NAMES = ("<pad>", "<bos>", "R", "_")
# grid codes inside a parsed tune (int16): >= 0 a note onset of that MIDI pitch
G_REST, G_HOLD = -1, -2

PARSER_VERSION = 1
MIDI_SUFFIXES = {".mid", ".midi"}
XML_SUFFIXES = {".xml", ".musicxml", ".mxl"}
ABC_SUFFIXES = {".abc"}
MUSIC21_CORPORA = {"essen": "essenFolksong", "oneills": "oneills1850", "bach": "bach"}
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
OPTIONS = {
    "steps_per_quarter": 4, "window": 32, "stride": None, "min_notes": 1, "transpose": "c",
    "key": "auto", "pitch_range": None, "max_tunes": None, "test_fraction": 0.05,
    "instrument": None, "cache": True, "cache_dir": None, "workers": None, "progress": True,
}
TRANSPOSE = ("c", "none", "augment")
KEY_MODES = ("auto", "signature", "tonic", "estimate")


def pitch_name(midi: int) -> str:
    """MIDI pitch → name with sharps, middle C = ``C4`` (60)."""
    return f"{NOTE_NAMES[midi % 12]}{midi // 12 - 1}"


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
        score = converter.parse(str(path))
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
            raise UserError(f"folder {arg!r} has no MIDI (.mid, .midi), MusicXML (.xml, .musicxml, "
                            f".mxl) or ABC files ({len(every)} other files)")
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


def parse_tunes(source: str, arg: str, options: dict[str, Any] | None = None) -> tuple[TuneSet, dict]:
    """Parse and quantise every tune of a source (cached); returns ``(tunes, info)``.

    ``info`` says whether the cache was used and how long parsing took. Raises
    :class:`UserError` when the source yields no melody at all.
    """
    opts = _options(options)
    spq = int(opts["steps_per_quarter"])
    items, content_id = _source_items(source, arg)
    n_all = len(items)
    max_tunes = opts["max_tunes"]
    if max_tunes is not None and int(max_tunes) < n_all:
        # a fixed sample (independent of the run's seed) so that it is cacheable and
        # representative: Essen's files are grouped by region
        keep = sorted(random.Random(12345).sample(range(n_all), int(max_tunes)))
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
    results = _run_items(items, spq, opts["instrument"], int(workers), bool(opts["progress"]), desc)
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
            "seconds_per_tune": round(seconds / max(1, len(items)), 5), "workers": int(workers)}
    if cache_file is not None:
        try:
            _save_tuneset(cache_file, tunes)
            info["cache_file"] = str(cache_file)
        except OSError as e:
            log.warning("could not write music cache %s (%s)", cache_file, e)
    return tunes, info


# ---------------------------------------------------------------------------------------
# keys and transposition
# ---------------------------------------------------------------------------------------
# Krumhansl & Kessler (1982) key profiles, tonic first
_KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def _pc_histogram(grid: np.ndarray) -> np.ndarray:
    """Duration-weighted pitch-class histogram (12,) of a grid."""
    if len(grid) == 0:
        return np.zeros(12)
    g = grid.astype(np.int64)
    # forward-fill the pitch of the sounding note over HOLD steps
    last = np.maximum.accumulate(np.where(g >= 0, np.arange(len(g)), -1))  # (L,)
    sounding = (g >= 0) | ((g == G_HOLD) & (last >= 0))
    pcs = g[last[sounding]] % 12
    return np.bincount(pcs, minlength=12).astype(np.float64)


def _zscore(x: np.ndarray) -> np.ndarray:
    sd = x.std(axis=-1, keepdims=True)
    return (x - x.mean(axis=-1, keepdims=True)) / np.where(sd > 0, sd, 1.0)


# (2, 12 tonics, 12 pitch classes): the profiles rotated to every tonic, z-scored
_KK_ROTATED = _zscore(np.stack([np.stack([np.roll(prof, t) for t in range(12)])
                                for prof in (_KK_MAJOR, _KK_MINOR)]))


def _kk_scores(hists: np.ndarray) -> np.ndarray:
    """Pearson correlation of histograms (n, 12) with the 24 keys → (n, 2, 12) [mode, tonic]."""
    return np.einsum("nc,mtc->nmt", _zscore(hists), _KK_ROTATED) / 12.0


def _wrap(shift: int) -> int:
    """A shift in semitones mod 12 → the smallest move, in -6..5."""
    return (shift + 6) % 12 - 6


def key_shifts(grids: Sequence[np.ndarray], metas: Sequence[dict[str, Any]], mode: str) -> list[int]:
    """Semitones that move each tune to C major / A minor (each in -6..5).

    ``signature``: the declared key signature loses its sharps / flats; ``tonic``: the
    declared tonic goes to C (major) or A (minor), the mode chosen by the better
    Krumhansl-Kessler correlation of the duration-weighted pitch-class histogram;
    ``estimate``: the best of all 24 keys. Without a declaration, ``estimate``.
    """
    scores = _kk_scores(np.stack([_pc_histogram(g) for g in grids])) if grids else None
    out = []
    for i, meta in enumerate(metas):
        sig, tonic = meta.get("sig_pc"), meta.get("tonic_pc")
        if mode == "signature" and sig is not None:
            out.append(_wrap(-int(sig)))
        elif mode == "tonic" and tonic is not None:
            t = int(tonic)
            major = scores[i, 0, t] >= scores[i, 1, t]
            out.append(_wrap(-t) if major else _wrap(9 - t))
        else:
            m, t = np.unravel_index(int(np.argmax(scores[i])), (2, 12))
            out.append(_wrap(-int(t)) if m == 0 else _wrap(9 - int(t)))
    return out


def _transpose(grid: np.ndarray, k: int) -> np.ndarray:
    return np.where(grid >= 0, grid + k, grid).astype(np.int16) if k else grid


def _fold_into(grid: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Move notes outside [lo, hi] by octaves into it (needs hi - lo >= 11)."""
    g = grid.astype(np.int64)
    p = np.where(g >= 0, g, lo)
    p = np.where(p < lo, p + 12 * ((lo - p + 11) // 12), p)
    p = np.where(p > hi, p - 12 * ((p - hi + 11) // 12), p)
    return np.where(g >= 0, p, g).astype(np.int16)


# ---------------------------------------------------------------------------------------
# windows and the vocabulary
# ---------------------------------------------------------------------------------------
def music_vocab(lo: int, hi: int, steps_per_quarter: int = 4, time_signature: str = "4/4",
                **extra: Any) -> "Vocabulary":
    """The music vocabulary for MIDI pitches ``lo..hi``.

    ``meta["pitches"][i]`` is the MIDI pitch of token ``i`` (-1 for PAD, BOS, REST, HOLD).
    """
    if not 0 <= lo <= hi <= 127:
        raise UserError(f"pitch range {lo}..{hi} is not within MIDI 0..127")
    tokens = list(SPECIAL_NAMES) + [pitch_name(p) for p in range(lo, hi + 1)]
    num, _, den = time_signature.partition("/")
    steps_per_bar = max(1, round(int(num) * 4 / int(den) * steps_per_quarter))
    meta = {"steps_per_quarter": steps_per_quarter, "pitch_range": [lo, hi],
            "pitches": [-1] * FIRST_PITCH + list(range(lo, hi + 1)),
            "rest": REST, "hold": HOLD, "time_signature": time_signature,
            "steps_per_bar": steps_per_bar, **extra}
    from seqgan.datasets.vocab import Vocabulary

    return Vocabulary(tokens=tokens, kind="music", pad=PAD, bos=BOS, meta=meta)


def _grid_to_ids(grid: np.ndarray, lo: int) -> np.ndarray:
    g = grid.astype(np.int64)
    return np.where(g >= 0, g - lo + FIRST_PITCH, np.where(g == G_HOLD, HOLD, REST))


def windows(grid: np.ndarray, lo: int, T: int, stride: int, min_notes: int = 1) -> np.ndarray:
    """Cut one tune into token windows (n, T).

    Windows start at steps 0, stride, 2·stride, ...; the last, partial one is filled with
    REST and kept when at least half of it is music (or it is the tune's only window).
    A window never starts with HOLD: the sounding note is struck again. Windows with
    fewer than ``min_notes`` onsets are dropped.
    """
    L = len(grid)
    if L == 0:
        return np.zeros((0, T), dtype=np.int64)
    ids = _grid_to_ids(grid, lo)  # (L,)
    starts = [s for s in range(0, L, stride) if s == 0 or L - s >= T or (L - s) * 2 >= T]
    padded = np.concatenate([ids, np.full(T, REST)])
    out = np.stack([padded[s:s + T] for s in starts])  # (n, T)
    last_onset = np.maximum.accumulate(np.where(grid >= 0, np.arange(L), 0))
    first = np.asarray(starts)
    held = out[:, 0] == HOLD
    out[held, 0] = ids[last_onset[first[held]]]
    keep = (out >= FIRST_PITCH).sum(1) >= max(1, min_notes)
    return out[keep]


def _options(options: dict[str, Any] | None) -> dict[str, Any]:
    opts = dict(options or {})
    unknown = sorted(set(opts) - set(OPTIONS))
    if unknown:
        raise UserError(f"unknown music data option(s) {', '.join(unknown)}; "
                        f"valid: {', '.join(OPTIONS)}")
    merged = {**OPTIONS, **opts}
    if merged["transpose"] not in TRANSPOSE:
        raise UserError(f"option transpose={merged['transpose']!r}; valid: {', '.join(TRANSPOSE)}")
    if merged["key"] not in KEY_MODES:
        raise UserError(f"option key={merged['key']!r}; valid: {', '.join(KEY_MODES)}")
    if int(merged["steps_per_quarter"]) < 1:
        raise UserError("option steps_per_quarter must be at least 1")
    if merged["max_tunes"] is not None and int(merged["max_tunes"]) < 1:
        raise UserError("option max_tunes must be at least 1")
    if not 0 <= float(merged["test_fraction"]) < 1:
        raise UserError("option test_fraction must be in [0, 1)")
    return merged


def _stack(parts: list[np.ndarray], T: int) -> "torch.Tensor":
    import torch

    arr = np.concatenate(parts) if parts else np.zeros((0, T), dtype=np.int64)
    return torch.from_numpy(arr.astype(np.int64))


def load(source: str, arg: str, cfg: Any, seq_len: int | None, seed: int) -> Corpus:
    """Load melodies as a :class:`Corpus` of (N, T) windows with a held-out test split."""
    import torch

    from seqgan.datasets import Corpus

    opts = _options(getattr(cfg, "options", None))
    T = int(seq_len or getattr(cfg, "seq_len", None) or opts["window"])
    stride = int(opts["stride"] or T)
    if T < 2 or stride < 1:
        raise UserError(f"window length {T} / stride {stride}: need T >= 2 and stride >= 1")
    tunes, parse_info = parse_tunes(source, arg, opts)
    if tunes.skipped:
        log.warning("%s: skipped %d of %d tunes that could not be parsed (e.g. %s)", tunes.source,
                    len(tunes.skipped), len(tunes.skipped) + len(tunes.grids), tunes.skipped[0])

    # key: transpose each tune to C major / A minor
    key_mode = opts["key"]
    if key_mode == "auto":
        key_mode = "tonic" if (source == "music21" and (arg or "essen") == "essen") else "signature"
    grids = list(tunes.grids)
    if opts["transpose"] in ("c", "augment"):
        grids = [_transpose(g, k) for g, k in zip(grids, key_shifts(grids, tunes.meta, key_mode))]
    if opts["pitch_range"] is not None:
        lo, hi = (int(x) for x in opts["pitch_range"])
        if hi - lo < 11:
            raise UserError(f"option pitch_range [{lo}, {hi}] must span at least an octave")
        grids = [_fold_into(g, lo, hi) for g in grids]
    else:
        lo = min(int(g[g >= 0].min()) for g in grids)
        hi = max(int(g.max()) for g in grids)

    # split by tune, deterministic from the seed
    n = len(grids)
    frac = float(opts["test_fraction"])
    n_test = min(n - 1, max(1, round(frac * n))) if frac > 0 and n >= 2 else 0
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    test_ids, train_ids = sorted(perm[:n_test]), sorted(perm[n_test:])

    min_notes = int(opts["min_notes"])
    train_parts = [windows(grids[i], lo, T, stride, min_notes) for i in train_ids]
    if opts["transpose"] == "augment":
        for i in train_ids:
            g = grids[i]
            gmin, gmax = int(g[g >= 0].min()), int(g.max())
            train_parts += [windows(_transpose(g, k), lo, T, stride, min_notes)
                            for k in range(-5, 7) if k and gmin + k >= lo and gmax + k <= hi]
    test_parts = [windows(grids[i], lo, T, stride, min_notes) for i in test_ids]
    train, test = _stack(train_parts, T), _stack(test_parts, T)
    if train.shape[0] == 0:
        raise UserError(f"{tunes.source}: no melody windows of {T} steps with at least {min_notes} "
                        f"note(s) (tunes too short? try a smaller window)")

    spq = tunes.steps_per_quarter
    ts_counts = Counter(m.get("time_signature") for m in tunes.meta if m.get("time_signature"))
    time_sig = ts_counts.most_common(1)[0][0] if ts_counts else "4/4"
    if not re.fullmatch(r"\d+/\d+", time_sig):
        time_sig = "4/4"
    vocab = music_vocab(lo, hi, spq, time_sig, transpose=opts["transpose"],
                        source=tunes.source)
    info = {"source": tunes.source, "tunes": n, "skipped": len(tunes.skipped),
            "skipped_examples": tunes.skipped[:5], "train_tunes": len(train_ids),
            "test_tunes": len(test_ids), "windows": int(train.shape[0] + test.shape[0]),
            "train_windows": int(train.shape[0]), "test_windows": int(test.shape[0]),
            "window": T, "stride": stride, "steps_per_quarter": spq, "pitch_range": [lo, hi],
            "time_signature": time_sig, "transpose": opts["transpose"], "key": key_mode,
            **parse_info}
    return Corpus(train=train, vocab=vocab, start_token=BOS,
                  test=test if test.shape[0] else None, info=info)


# ---------------------------------------------------------------------------------------
# tokens → notes and text
# ---------------------------------------------------------------------------------------
def _token_pitches(vocab: Vocabulary) -> list[int]:
    """MIDI pitch per token id (-1: not a pitch), from ``meta["pitches"]`` or token names."""
    pitches = vocab.meta.get("pitches")
    if isinstance(pitches, list) and len(pitches) == len(vocab):
        return [int(p) for p in pitches]
    out = []
    for name in vocab.tokens:
        m = re.fullmatch(r"([A-G]#?)(-?\d+)", name)
        out.append(12 * (int(m.group(2)) + 1) + NOTE_NAMES.index(m.group(1)) if m else -1)
    return out


def _special_id(vocab: Vocabulary, key: str, name: str, default: int) -> int:
    v = vocab.meta.get(key)
    if isinstance(v, int):
        return v
    return vocab.tokens.index(name) if name in vocab.tokens else default


def hold_id(vocab: Vocabulary) -> int:
    return _special_id(vocab, "hold", "_", HOLD)


def rest_id(vocab: Vocabulary) -> int:
    return _special_id(vocab, "rest", "R", REST)


def decode_notes(vocab: Vocabulary, seq: Sequence[int] | torch.Tensor) -> list[tuple[int, int, int]]:
    """One token sequence → notes ``(start_step, n_steps, midi)``.

    A pitch token starts a note, HOLD extends it; HOLD with nothing sounding (at the start
    or after silence) is silence; REST, PAD, BOS and unknown ids are silence.
    """
    ids = seq.tolist() if hasattr(seq, "tolist") else list(seq)
    pitches, hold = _token_pitches(vocab), hold_id(vocab)
    notes: list[list[int]] = []
    sounding = False
    for t, i in enumerate(ids):
        i = int(i)
        p = pitches[i] if 0 <= i < len(pitches) else -1
        if p >= 0:
            notes.append([t, 1, p])
            sounding = True
        elif i == hold and sounding:
            notes[-1][1] += 1
        else:
            sounding = False
    return [tuple(n) for n in notes]


def format_lines(vocab: Vocabulary, tokens: torch.Tensor) -> list[str]:
    """Token names, space separated, one line per sequence: ``"C4 _ _ _ E4 _ R _"``."""
    names = vocab.tokens
    return [" ".join(names[i] if 0 <= i < len(names) else "?" for i in row)
            for row in tokens.tolist()]
