"""Melody tokens → MIDI files and piano-roll pictures.

A sequence on the music grid (see :mod:`seqgan.datasets.music`) becomes one instrument
track: every pitch token starts a note that lasts through the HOLD tokens after it; each
grid step is ``60 / tempo / steps_per_quarter`` seconds. Files are written with
480 ticks per quarter note (a multiple of every usual grid), the vocabulary's time
signature and one tempo, so pretty_midi, mido and music21 all read back the same notes
and durations.

MIDI stores the tempo as whole microseconds per quarter note in 1..16777215, so a tempo
must lie in ``MIN_TEMPO``..``MAX_TEMPO`` (about 3.58 to 60,000,000 BPM); the file holds
``int(60e6 / tempo)`` microseconds (within 0.01% up to 6,000 BPM). Files are written
atomically with the same permissions as every other file the toolkit writes (0666 less
the umask).
"""
from __future__ import annotations

import io
import math
import operator
from pathlib import Path
from typing import Any, Sequence

import torch

from seqgan.datasets.music import MAX_STEPS_PER_QUARTER, decode_notes
from seqgan.errors import UserError

__all__ = ["tokens_to_midi", "export_samples", "piano_roll_png", "ticks_per_quarter",
           "MIN_TEMPO", "MAX_TEMPO"]

MAX_US_PER_QUARTER = 0xFFFFFF  # a MIDI set_tempo event holds 24 bits of microseconds
MIN_TEMPO = 60e6 / MAX_US_PER_QUARTER  # BPM at 16777215 µs per quarter note (~3.5763)
MAX_TEMPO = 60e6  # BPM at 1 µs per quarter note


def ticks_per_quarter(steps_per_quarter: int) -> int:
    """480 when the grid divides it (1, 2, 3, 4, 6, 8, 12, 16, ...), else a multiple of the grid.

    At most 120 * ``MAX_STEPS_PER_QUARTER`` = 11520, inside MIDI's 32767.
    """
    spq = _int_in("steps_per_quarter", steps_per_quarter, 1, MAX_STEPS_PER_QUARTER)
    return 480 if 480 % spq == 0 else 120 * spq


def _int_in(name: str, value: Any, lo: int, hi: int) -> int:
    """``value`` as an int in ``lo..hi`` (numpy integers too, not bools or floats)."""
    try:
        v = None if isinstance(value, bool) else operator.index(value)
    except TypeError:
        v = None
    if v is None or not lo <= v <= hi:
        raise UserError(f"{name} must be an integer in {lo}..{hi} to export MIDI, got {value!r}")
    return v


def _grid(vocab: Any) -> tuple[int, str]:
    meta = getattr(vocab, "meta", {}) or {}
    spq = meta.get("steps_per_quarter", 4)
    ts = str(meta.get("time_signature") or "4/4")
    return spq, ts


def check_tempo(tempo: Any) -> float:
    """``tempo`` as a float, or a UserError when MIDI cannot store it."""
    try:
        bpm = float(tempo)
    except (TypeError, ValueError):
        bpm = math.nan
    if isinstance(tempo, bool) or not MIN_TEMPO <= bpm <= MAX_TEMPO:  # also refuses nan
        raise UserError(f"tempo must be between {math.ceil(MIN_TEMPO * 1e4) / 1e4} and "
                        f"{MAX_TEMPO:.0f} BPM (MIDI stores 1..{MAX_US_PER_QUARTER} microseconds "
                        f"per quarter note), got {tempo!r}")
    return bpm


def tokens_to_midi(vocab: Any, seq: Sequence[int] | torch.Tensor, tempo: float = 120,
                   program: int = 0, velocity: int = 100) -> Any:
    """One sequence (T,) → ``pretty_midi.PrettyMIDI`` with one instrument (GM ``program``)."""
    import pretty_midi

    program = _int_in("MIDI program", program, 0, 127)
    velocity = _int_in("MIDI velocity", velocity, 1, 127)
    tempo = check_tempo(tempo)
    if torch.is_tensor(seq) and seq.dim() != 1:
        raise UserError(f"tokens_to_midi expects one sequence (T,), got shape {tuple(seq.shape)}")
    spq, ts = _grid(vocab)
    resolution = ticks_per_quarter(spq)  # checks spq
    pm = pretty_midi.PrettyMIDI(resolution=resolution, initial_tempo=tempo)
    num, _, den = ts.partition("/")
    try:
        pm.time_signature_changes.append(pretty_midi.TimeSignature(int(num), int(den), 0.0))
    except ValueError:
        pass
    inst = pretty_midi.Instrument(program=program, name="melody")
    step = 60.0 / tempo / spq  # seconds per grid step
    for start, n, pitch in decode_notes(vocab, seq):
        inst.notes.append(pretty_midi.Note(velocity=velocity, pitch=int(pitch),
                                           start=start * step, end=(start + n) * step))
    pm.instruments.append(inst)
    return pm


def _atomic_write_midi(pm: Any, path: Path) -> None:
    """Write through the run directory's atomic writer (temporary file, usual mode, replace)."""
    from seqgan.files import atomic_write_bytes

    buf = io.BytesIO()
    pm.write(buf)
    atomic_write_bytes(path, buf.getvalue())


def export_samples(vocab: Any, tokens: torch.Tensor, out_dir: str | Path, tempo: float = 120,
                   program: int = 0, prefix: str = "sample") -> list[Path]:
    """Write one ``PREFIX_0000.mid`` per row of ``tokens`` (N, T); returns the paths."""
    if tokens.dim() != 2:
        raise UserError(f"export_samples expects tokens (N, T), got shape {tuple(tokens.shape)}")
    check_tempo(tempo)  # bad arguments fail before the folder is made
    _int_in("MIDI program", program, 0, 127)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    width = max(4, len(str(max(0, tokens.shape[0] - 1))))
    paths = []
    for i, row in enumerate(tokens.cpu()):
        path = out / f"{prefix}_{i:0{width}d}.mid"
        _atomic_write_midi(tokens_to_midi(vocab, row, tempo=tempo, program=program), path)
        paths.append(path)
    return paths


def piano_roll_png(vocab: Any, tokens: torch.Tensor, path: str | Path, max_rows: int = 16,
                   cols: int = 4) -> Path:
    """Save a grid of piano rolls of the first ``max_rows`` sequences as a PNG.

    Each panel: time steps across, the vocabulary's pitch range up; a note is a bar from
    its onset (darker) through its held steps; bar lines are dotted.
    """
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if tokens.dim() == 1:
        tokens = tokens.unsqueeze(0)
    rows = tokens[:max_rows].cpu()
    n = rows.shape[0]
    if n == 0:
        raise UserError("piano_roll_png: no sequences to draw")
    T = rows.shape[1]
    meta = getattr(vocab, "meta", {}) or {}
    notes = [decode_notes(vocab, r) for r in rows]
    pitches = [p for ns in notes for _, _, p in ns]
    lo, hi = meta.get("pitch_range") or ([min(pitches), max(pitches)] if pitches else [60, 72])
    spb = int(meta.get("steps_per_bar") or 16)
    cols = max(1, min(cols, n))
    nrows = (n + cols - 1) // cols
    fig = Figure(figsize=(3.2 * cols, 2.2 * nrows), dpi=100)
    FigureCanvasAgg(fig)
    for k in range(n):
        ax = fig.add_subplot(nrows, cols, k + 1)
        img = np.zeros((hi - lo + 1, T))
        for start, length, p in notes[k]:
            if lo <= p <= hi:
                img[p - lo, start:start + length] = 0.6
                img[p - lo, start] = 1.0
        ax.imshow(img, aspect="auto", origin="lower", cmap="Greys", vmin=0, vmax=1,
                  interpolation="nearest", extent=(-0.5, T - 0.5, lo - 0.5, hi + 0.5))
        for b in range(spb, T, spb):
            ax.axvline(b - 0.5, color="tab:blue", lw=0.5, ls=":")
        ax.set_title(f"#{k}", fontsize=8)
        ax.tick_params(labelsize=6)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
