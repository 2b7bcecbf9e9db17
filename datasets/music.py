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
Parsing starts in :mod:`seqgan.datasets.music_parse` (the options, :func:`parse_tunes`);
the readers are in :mod:`seqgan.datasets.music_readers`, the worker processes in
:mod:`seqgan.datasets.music_workers`, the cache in :mod:`seqgan.datasets.music_cache`, key
finding and transposition in :mod:`seqgan.datasets.keys`.

Options (``DataConfig.options``; unknown keys are errors, and each value is checked by
:func:`seqgan.datasets.options.check_options`: a wrong type or a value out of range is a
:class:`UserError` naming the option; integers are JSON integers, booleans ``true`` or
``false``, and ``null`` is allowed only where a default is null):

==================  ======================================================================
steps_per_quarter   grid resolution, an integer in 1..96, default 4 (a sixteenth note);
                    capped so that every grid exports to MIDI (at most 32767 ticks a quarter)
window              window length T (an integer in 2..100000) when neither ``seq_len`` nor
                    ``DataConfig.seq_len`` is set; default 32 (two bars of 4/4)
stride              steps between window starts, an integer >= 1; default null = T
                    (non-overlapping)
min_notes           windows with fewer note onsets are dropped; an integer >= 1, default 1
                    (drops the all-REST windows)
transpose           ``"c"`` (default) each tune to C major / A minor; ``"none"``;
                    ``"augment"``: to C, plus transposed copies of every *training* tune
                    by -5..+6 semitones that stay inside the pitch range
key                 how a tune's key is found: ``"auto"`` (default: the declared key
                    signature; for Essen, whose ``K:`` gives only the tonic, that tonic
                    with the mode estimated; the Krumhansl-Kessler estimate when nothing
                    is declared), ``"signature"``, ``"tonic"``, ``"estimate"``
pitch_range         ``[lo, hi]`` MIDI pitches (0..127, at least an octave: hi - lo >= 11)
                    of the vocabulary; notes outside are moved by octaves into it.
                    Default null: the data's range.
max_tunes           parse only a fixed, representative subset of this many tunes, an
                    integer >= 1 (a seeded sample independent of the run's seed, so it
                    caches); default null: all
test_fraction       share of *tunes* held out as ``Corpus.test``, in [0, 1), default 0.05
instrument          MIDI instrument (an index >= 0 or a name) / MusicXML part (a name),
                    see above; an error for sources of ABC tunes only (``.abc`` files,
                    ``music21:essen``, ``music21:oneills``), which have one melody a tune
cache               ``true`` (default) or ``false``; files go to ``cache_dir/music/``
                    (default ``$SEQGAN_CACHE_DIR``, else ``$XDG_CACHE_HOME/seqgan`` or
                    ``~/.cache/seqgan``)
workers             parsing processes, an integer in 1..256 (default: up to 8 for 400+
                    tunes, else 1): a process pool started from a forkserver (see
                    :mod:`seqgan.datasets.music_workers`), so a script that loads music
                    keeps its top level under ``if __name__ == "__main__":``
progress            show a progress bar on long loads (default ``true``; only on a terminal)
parser              how ABC is read: ``"music21"`` (default, the music as written) or
                    ``"organ"``, a compatibility mode that reads tunes the way ORGAN's
                    music scripts did (lines starting with a chord symbol skipped, chord
                    letters taken as notes, accidentals and the last tune lost; the notes
                    ORGAN's metrics see, as natural notes), so that its numbers can be put
                    beside ORGAN's (:mod:`seqgan.datasets.music_organ`); ABC files only
==================  ======================================================================
"""
from __future__ import annotations

import logging
import re
from collections import Counter
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from seqgan.datasets.keys import _fold_into, _transpose, key_shifts
# also re-exported: the names this module had before parsing moved out
from seqgan.datasets.music_cache import default_cache_dir  # noqa: F401
from seqgan.datasets.music_parse import (MAX_STEPS_PER_QUARTER, MAX_WINDOW, OPTIONS, _options,  # noqa: F401
                                          parse_tunes)
from seqgan.datasets.music_readers import G_HOLD, G_REST, TuneSet  # noqa: F401

DEFAULT_OPTIONS = OPTIONS  # the name every data source module gives its option defaults
from seqgan.errors import UserError

# torch and the package's types are imported where they are used, so that importing this
# module stays cheap.
if TYPE_CHECKING:
    import torch

    from seqgan.datasets import Corpus
    from seqgan.datasets.vocab import Vocabulary

log = logging.getLogger("seqgan.music")

PAD, BOS, REST, HOLD = 0, 1, 2, 3
FIRST_PITCH = 4
SPECIAL_NAMES = ("<pad>", "<bos>", "R", "_")
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def pitch_name(midi: int) -> str:
    """MIDI pitch → name with sharps, middle C = ``C4`` (60)."""
    return f"{NOTE_NAMES[midi % 12]}{midi // 12 - 1}"


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
    stride = opts["stride"] or T
    if not 2 <= T <= MAX_WINDOW or stride < 1:
        raise UserError(f"window length {T} / stride {stride}: need T in 2..{MAX_WINDOW} and "
                        f"stride >= 1")
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
    if opts["pitch_range"] is not None:  # checked by _options: 0 <= lo, lo + 11 <= hi <= 127
        lo, hi = opts["pitch_range"]
        grids = [_fold_into(g, lo, hi) for g in grids]
    else:
        lo = min(int(g[g >= 0].min()) for g in grids)
        hi = max(int(g.max()) for g in grids)

    # split by tune, deterministic from the seed
    n = len(grids)
    frac = opts["test_fraction"]
    n_test = min(n - 1, max(1, round(frac * n))) if frac > 0 and n >= 2 else 0
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    test_ids, train_ids = sorted(perm[:n_test]), sorted(perm[n_test:])

    min_notes = opts["min_notes"]
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
    # One time signature for the whole vocabulary: the corpus's most common. Tunes in other
    # metres, and windows that do not start on a bar line, are exported and measured
    # (notes_per_bar) with that bar length: a known limit, not per-tune metre.
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
def token_pitches(vocab: Vocabulary) -> list[int]:
    """MIDI pitch per token id (-1: not a pitch), from ``meta["pitches"]`` or token names.

    The one decoding of tokens to pitches (the music objectives and metrics use it too).
    """
    tokens = list(vocab.tokens)
    pitches = (getattr(vocab, "meta", None) or {}).get("pitches")
    if isinstance(pitches, list) and len(pitches) == len(tokens):
        return [int(p) for p in pitches]
    out = []
    for name in tokens:
        m = re.fullmatch(r"([A-G]#?)(-?\d+)", name)
        out.append(12 * (int(m.group(2)) + 1) + NOTE_NAMES.index(m.group(1)) if m else -1)
    return out


def _special_id(vocab: Vocabulary, key: str, name: str, default: int) -> int:
    v = (getattr(vocab, "meta", None) or {}).get(key)
    if isinstance(v, int):
        return v
    return vocab.tokens.index(name) if name in vocab.tokens else default


def hold_id(vocab: Vocabulary, default: int = HOLD) -> int:
    """The HOLD id: ``meta["hold"]``, else the token ``"_"``, else ``default``."""
    return _special_id(vocab, "hold", "_", default)


def rest_id(vocab: Vocabulary) -> int:
    """The REST id: ``meta["rest"]``, else the token ``"R"``, else ``REST`` (2)."""
    return _special_id(vocab, "rest", "R", REST)


def decode_notes(vocab: Vocabulary, seq: Sequence[int] | torch.Tensor) -> list[tuple[int, int, int]]:
    """One token sequence → notes ``(start_step, n_steps, midi)``.

    A pitch token starts a note, HOLD extends it; HOLD with nothing sounding (at the start
    or after silence) is silence; REST, PAD, BOS and unknown ids are silence.
    """
    ids = seq.tolist() if hasattr(seq, "tolist") else list(seq)
    pitches, hold = token_pitches(vocab), hold_id(vocab)
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