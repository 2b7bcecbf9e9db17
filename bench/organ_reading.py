"""The Nottingham tunes read two ways: the default (music21's ABC tokenizer) and ORGAN's
scanner (``--data-option parser=organ``, :mod:`seqgan.datasets.music_organ`), side by side.

For each reading: tunes kept, notes, the training windows the run would train on (the
default options: window 32, 4 steps a quarter, transposed to C, 5 % of tunes held out,
seed 0) and their ``music`` metrics (the "training data" row of ``seqgan evaluate
--compare``, here on every training window); then ORGAN's own per-tune view (tonality,
melodicity, ratio of steps of whole tunes, ORGAN's vocabulary and token counts) and the
reasons the readings differ (lines that start with a chord symbol, chord letters read as
notes, notes lost after accidentals and fractions).

    python bench/organ_reading.py [--data ../shared/data/nottingham_abc/nottingham.abc.txt]

Prints a Markdown table and writes ``bench/results/organ_reading.json``.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout: `python bench/organ_reading.py`

from seqgan.datasets import load_corpus  # noqa: E402
from seqgan.datasets.config import DataConfig  # noqa: E402
from seqgan.datasets.music_organ import (PITCHES, organ_note_names, organ_songs,  # noqa: E402
                                         organ_vocab_size)
from seqgan.datasets.music_parse import parse_tunes  # noqa: E402
from seqgan.metrics.music import music_metrics  # noqa: E402

INTERVALS = {"tonality": lambda d: d == 7, "melodicity": lambda d: d in (5, 7, 9),
             "ratio_of_steps": lambda d: abs(d) in (1, 2)}


def per_tune(pitch_lists: list[list[int]]) -> dict[str, float]:
    """ORGAN's metrics of whole tunes: per tune the share of intervals between consecutive
    notes of the wanted kind (tunes of fewer than two notes left out), averaged."""
    out = {}
    for name, ok in INTERVALS.items():
        vals = [np.mean([ok(b - a) for a, b in zip(p, p[1:])]) for p in pitch_lists if len(p) >= 2]
        out[name] = float(np.mean(vals))
    return out


def onsets(grid: np.ndarray) -> list[int]:
    return [int(p) for p in grid if p >= 0]


def reading(path: str, parser: str) -> dict:
    opts = {"parser": parser, "workers": 2, "progress": False}
    t0 = time.perf_counter()
    tunes, _ = parse_tunes("abc", path, opts)
    corpus = load_corpus(path, DataConfig(spec=path, options=opts), seed=0)
    m = music_metrics(corpus.train, corpus.vocab, corpus.train)
    pitches = [onsets(g) for g in tunes.grids]
    return {"parser": parser, "tunes": len(tunes.grids), "skipped": len(tunes.skipped),
            "notes": sum(len(p) for p in pitches), "notes_per_tune": float(np.mean([len(p) for p in pitches])),
            "train_windows": int(corpus.train.shape[0]), "vocab": len(corpus.vocab),
            "pitch_range": corpus.vocab.meta["pitch_range"], "time_signature": corpus.info["time_signature"],
            "data_row": m, "whole_tunes": per_tune(pitches), "seconds": round(time.perf_counter() - t0, 1)}


def organ_view(text: str) -> dict:
    """ORGAN's own numbers: its token stream, vocabulary, training set and the causes."""
    songs = organ_songs(text)
    names = [organ_note_names(s.tokens) for s in songs]
    kept = [n for n in names if len(n) >= 2]
    longest = max(len(s.tokens) for s in songs)
    lines = text.splitlines()[1:]
    music = [x for x in lines if x and not re.match(r"[A-Za-z]:|%", x)]
    quoted = [x for x in music if x.startswith('"')]
    # notes that come from chord symbols: the scan with and without the quoted text
    unquoted = "\n".join(x if x.startswith('"') else re.sub(r'"[^"]*"', "", x)
                         for x in text.splitlines())
    plain = [organ_note_names(s.tokens) for s in organ_songs(unquoted)]
    no_chords = sum(len(n) for n in plain)
    return {"songs": len(songs), "songs_kept": len(kept), "tokens": sum(len(s.tokens) for s in songs),
            "empty_tokens": sum(t == "" for s in songs for t in s.tokens),
            "vocab": organ_vocab_size(songs), "max_length": int(longest * 1.5),
            "notes": sum(len(n) for n in names), "notes_from_chord_symbols": sum(len(n) for n in names) - no_chords,
            "music_lines": len(music), "music_lines_skipped_for_a_quote": len(quoted),
            "whole_tunes": per_tune([[PITCHES[x] for x in n] for n in kept]),
            "whole_tunes_without_chord_letters": per_tune([[PITCHES[x] for x in n] for n in plain])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared/data/nottingham_abc/nottingham.abc.txt"))
    ap.add_argument("--out", default=str(ROOT / "bench/results/organ_reading.json"))
    args = ap.parse_args()
    rows = [reading(args.data, p) for p in ("music21", "organ")]
    organ = organ_view(Path(args.data).read_text())
    cols = ["tonality", "melodicity", "ratio_of_steps", "diversity", "unique", "pitch_class_entropy",
            "notes_per_bar"]
    print("| reading | tunes | notes | windows | vocab | " + " | ".join(cols) + " |")
    print("|---" * (5 + len(cols)) + "|")
    for r in rows:
        cells = [f"{r['data_row'][c]:.3f}" for c in cols]
        print(f"| {r['parser']} | {r['tunes']} | {r['notes']:,} | {r['train_windows']:,} | {r['vocab']} | "
              + " | ".join(cells) + " |")
    print("\nwhole tunes (ORGAN's per-tune means):")
    for label, w in [(r["parser"], r["whole_tunes"]) for r in rows] + [
            ("ORGAN view", organ["whole_tunes"]),
            ("ORGAN view, chord symbols removed", organ["whole_tunes_without_chord_letters"])]:
        print(f"  {label:10s} " + "  ".join(f"{k} {v:.3f}" for k, v in w.items()))
    print("\nORGAN's token stream:", json.dumps({k: v for k, v in organ.items() if not k.startswith("whole")}))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"readings": rows, "organ": organ}, indent=1))


if __name__ == "__main__":
    main()
