"""Music files → notes → time grids, and the units of work ("items") of each source.

This module owns reading: what a parsed tune is (:class:`TuneSet`, the grid codes
``G_REST`` / ``G_HOLD``, ``PARSER_VERSION``), the readers (ABC with music21's tokenizer,
no streams; MIDI with pretty_midi; MusicXML with music21; ABC as ORGAN's code read it with
``parser="organ"``, :mod:`seqgan.datasets.music_organ`), the quantisation of notes to a
grid, :func:`parse_item` (one item → grid and metadata) and :func:`source_items` (a source
→ its items and what identifies its content for the cache). How a melody is picked out of
each format is described in :mod:`seqgan.datasets.music`.

Each tune becomes notes (onset, duration in quarter notes, MIDI pitch), quantised to
``steps_per_quarter`` (a note keeps at least one step; of notes sounding at once the
highest wins) with leading and trailing silence trimmed: an int16 grid where a MIDI
pitch (>= 0) starts a note, ``G_HOLD`` continues it and ``G_REST`` is silence.

Worker processes of :mod:`seqgan.datasets.music_workers` import this module, so at load
time it imports only the standard library, numpy and :mod:`seqgan.errors` (never torch);
music21 and pretty_midi are imported by the readers that need them.
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from seqgan.datasets.music_organ import organ_items, organ_notes
from seqgan.errors import UserError

# grid codes inside a parsed tune (int16): >= 0 a note onset of that MIDI pitch
G_REST, G_HOLD = -1, -2

PARSER_VERSION = 1  # part of every cache key and cache file: bump when a reader's output changes
# the longest grid of one tune, in steps (at 96 a quarter, 10,416 quarter notes): a longer
# tune (a note of absurd length, a rest of 1e14) is skipped before its grid is allocated
MAX_GRID_STEPS = 1_000_000
MIDI_SUFFIXES = {".mid", ".midi"}
XML_SUFFIXES = {".xml", ".musicxml", ".mxl"}
ABC_SUFFIXES = {".abc"}
MUSIC21_CORPORA = {"essen": "essenFolksong", "oneills": "oneills1850", "bach": "bach"}
PARSERS = ("music21", "organ")  # how ABC is read: music21's tokenizer, or ORGAN's scanner


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


class TuneRefused(ValueError):
    """A tune that was read but cannot become a grid; its message is why it is skipped."""


def _notes_to_grid(notes: Sequence[tuple[float, float, int]], spq: int) -> np.ndarray:
    """Notes ``(onset_ql, dur_ql, midi)`` → grid (int16, leading/trailing silence cut).

    Onsets and ends round to the nearest step; a note keeps at least one step; where
    notes overlap the highest sounds (ties: the later note), and a lower note that
    sounds again after a higher one ends is re-struck. Raises :class:`TuneRefused` for a
    pitch outside MIDI 0..127 or a grid longer than ``MAX_GRID_STEPS``, before allocating.
    """
    if not notes:
        return np.zeros(0, dtype=np.int16)
    arr = np.asarray(notes, dtype=np.float64)  # (n, 3)
    lo, hi = arr[:, 2].min(), arr[:, 2].max()
    if not 0 <= lo <= hi <= 127:
        raise TuneRefused(f"notes outside MIDI 0..127 (pitches {lo:.0f}..{hi:.0f})")
    last = np.maximum(arr[:, 0], arr[:, 0] + arr[:, 1]).max() * spq  # in steps
    if not last < MAX_GRID_STEPS:  # (also NaN and infinity)
        raise TuneRefused(f"the tune lasts {last / spq:.4g} quarter notes ({last:.4g} grid steps), "
                          f"more than the {MAX_GRID_STEPS:,} steps a tune may have (a note or "
                          f"rest of absurd length?)")
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
def _m21_pitch_to_midi(name: str, src: str = "") -> int:
    """music21's name of an ABC note's pitch (``C#4``, ``B-3``) → MIDI number.

    The name is step, accidentals (``#``, ``-`` flat, ``n``) and octave, so the minus of a
    negative octave reads like a flat: ``G-2`` is G flat in octave 2 or G in octave -2. The
    note's ABC text ``src`` decides: an octave below 0 takes at least five commas more than
    apostrophes (``G,,,,,``), an octave above 0 at most four.
    """
    m = re.fullmatch(r"([A-G])([#\-n~`]*)(\d+)", name)
    if m is None:
        raise ValueError(f"unreadable pitch {name!r}")
    step, acc, octave = m.group(1), m.group(2), int(m.group(3))
    marks = re.sub(r'"[^"]*"', "", src)  # without chord symbols ("Am,")
    if acc.endswith("-") and octave > 0 and marks.count(",") - marks.count("'") >= 5:
        acc, octave = acc[:-1], -octave
    return 12 * (octave + 1) + "C D EF G A B".index(step) + acc.count("#") - acc.count("-")


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
            ps = [_m21_pitch_to_midi(s.pitchName, s.src) for s in tok.subTokens if s.pitchName]
            pitch = max(ps) if ps else None
        else:
            pitch = None if tok.isRest else _m21_pitch_to_midi(tok.pitchName, tok.src)
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


def parse_item(item: tuple[str, str, str], spq: int, instrument: Any) -> tuple:
    """Parse one unit of work → ``(name, grid as list | None, meta, error | None)``.

    ``item`` is ``(kind, name, payload)``: kind ``abc`` (payload = tune text), ``organ``
    (payload = ORGAN's tokens of a tune, :func:`~seqgan.datasets.music_organ.organ_items`),
    ``midi`` or ``xml`` (payload = path). Module-level so that worker processes can run it;
    it returns plain lists and dicts only.
    """
    kind, name, payload = item
    try:
        if kind == "abc":
            notes, meta = _abc_notes(payload)
        elif kind == "organ":
            notes, meta = organ_notes(payload)
        elif kind == "midi":
            notes, meta = _midi_notes(Path(payload), instrument)
        else:
            notes, meta = _xml_notes(Path(payload), instrument)
        grid = _notes_to_grid(notes, spq)
        if not (grid >= 0).any():
            return name, None, {}, "no melody notes"
        meta["name"] = name
        return name, grid.tolist(), meta, None
    except TuneRefused as e:
        return name, None, {}, str(e)
    except Exception as e:  # a tune that cannot be parsed is skipped and counted
        msg = " ".join(str(e).split())[:160] or (
            "the file ends early (truncated or corrupt)" if isinstance(e, EOFError) else "no details")
        return name, None, {}, f"{type(e).__name__}: {msg}"


# ---------------------------------------------------------------------------------------
# sources → units of work
# ---------------------------------------------------------------------------------------
def _abc_items(path: Path, label: str, parser: str) -> list[tuple[str, str, str]]:
    """The tunes of one ABC file: split at ``X:`` lines for music21, or ORGAN's reading."""
    text = _read_text(path)
    if parser == "organ":
        return organ_items(text, label)
    return [("abc", n, t) for n, t in _split_abc(text, label)]


def _items_from_files(files: Iterable[Path], root: Path | None = None, parser: str = "music21"
                      ) -> list[tuple[str, str, str]]:
    items = []
    for f in files:
        label = str(f.relative_to(root)) if root is not None else f.name
        suffix = f.suffix.lower()
        if suffix in ABC_SUFFIXES or (root is None and ".abc" in [s.lower() for s in f.suffixes]):
            items += _abc_items(f, label, parser)
        elif parser == "organ":
            raise UserError(f"parser=organ reads ABC files only (ORGAN's music scripts read ABC "
                            f"text); {label} is not ABC: remove the option or the file")
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


def source_items(source: str, arg: str, parser: str = "music21"
                 ) -> tuple[list[tuple[str, str, str]], dict[str, Any]]:
    """The units of work of a source and what identifies its content for the cache.

    ``parser="organ"`` reads ABC files as ORGAN's code did (and refuses other files); it
    is part of the content's identity, so its tunes are cached apart.
    """
    items, content = _source_items(source, arg, parser)
    return items, ({**content, "parser": parser} if parser != "music21" else content)


def _source_items(source: str, arg: str, parser: str) -> tuple[list[tuple[str, str, str]], dict[str, Any]]:
    if source == "music21":
        name = arg or "essen"
        import music21

        files = _music21_files(name)
        return _items_from_files(files, parser=parser), {"corpus": name, "music21": music21.__version__,
                                                         "files": len(files)}
    path = Path(arg)
    if source == "abc":
        if not path.is_file():
            raise UserError(f"ABC file {arg!r} not found")
        items = _abc_items(path, path.name, parser)
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
        return _items_from_files([path], parser=parser), {"files": _stat_list([path])}
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
        return _items_from_files(files, root=path, parser=parser), {"files": _stat_list(files)}
    raise UserError(f"unknown music source {source!r}")


def _stat_list(files: Sequence[Path]) -> list:
    return [[str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns] for f in files]
