"""Key finding and transposition of parsed tunes (grids of :mod:`seqgan.datasets.music_readers`).

A tune's key is its declared key signature or tonic, or the best of the 24 major and minor
keys by the Pearson correlation of its duration-weighted pitch-class histogram with the
Krumhansl & Kessler (1982) key profiles (C. L. Krumhansl, E. J. Kessler, "Tracing the
dynamic changes in perceived tonal organization in a spatial representation of musical
keys", Psychological Review 89(4), 334-368).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from seqgan.datasets.music_readers import G_HOLD

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
