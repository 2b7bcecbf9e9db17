"""Diversity of a set of sampled sentences: distinct-n and the percentage of unique samples.

Sentences are sequences of hashable tokens (words, or token ids). Music's own diversity
measures (pitch-class entropy, notes per bar, ...) are in :mod:`seqgan.metrics.music`.
"""
from __future__ import annotations

from typing import Hashable, Sequence

Sentence = Sequence[Hashable]


def distinct_n(hyps: Sequence[Sentence], n: int) -> float:
    """Distinct-n (Li et al. 2016): distinct n-grams / total n-grams over all hypotheses.

    In [0, 1]; 0.0 when the hypotheses have no n-gram at all (all shorter than n, or none).
    """
    seen: set[tuple] = set()
    total = 0
    for h in hyps:
        h = tuple(h)
        if len(h) >= n:
            total += len(h) - n + 1
            seen.update(zip(*(h[i:] for i in range(n))))
    return len(seen) / total if total else 0.0


def percent_unique(hyps: Sequence[Sentence]) -> float:
    """Percentage (0..100) of distinct sentences among the hypotheses; 0.0 for none."""
    if not hyps:
        return 0.0
    return 100.0 * len({tuple(h) for h in hyps}) / len(hyps)
