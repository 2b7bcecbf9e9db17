"""Metrics of generated melodies for ``seqgan evaluate`` on music runs.

:func:`music_metrics` takes samples ``(N, T)`` on the music grid (see
:mod:`seqgan.datasets.music`) and returns plain floats:

=======================  ================================================================
tonality, melodicity,    means of ORGAN's objectives (:mod:`seqgan.objectives.music`)
ratio_of_steps
diversity                mean pairwise edit distance / T (ORGAN), see :func:`diversity`
unique                   percent of samples that are distinct
novel                    percent of samples that are not a training window (needs
                         ``train_tokens``)
pitch_class_entropy      bits, mean over samples with notes (muspy's definition)
notes_per_bar            note onsets per bar (bar = ``vocab.meta["steps_per_bar"]`` steps)
=======================  ================================================================
"""
from __future__ import annotations

from typing import Any

import torch

from seqgan.objectives.music import melodicity, pitch_lut, ratio_of_steps, tonality

__all__ = ["music_metrics", "diversity", "edit_distance", "unique_percent", "novel_percent",
           "pitch_class_entropy", "notes_per_bar"]


def edit_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Levenshtein distance between rows of ``a`` and ``b`` (P, T) → (P,) int64.

    Unit costs for insertion, deletion and substitution. The dynamic programme runs over
    the T rows of the table; each row is one batched step, because the insertion chain
    ``D[i, j] = min_k (A[k] + j - k)`` is a cumulative minimum of ``A[k] - k``.
    """
    P, Ta = a.shape
    Tb = b.shape[1]
    j = torch.arange(Tb + 1, device=a.device)  # (Tb+1,)
    row = j.expand(P, Tb + 1).clone()  # (P, Tb+1): D[0, j] = j
    for i in range(1, Ta + 1):
        cost = (a[:, i - 1:i] != b).long()  # (P, Tb)
        cand = torch.empty_like(row)
        cand[:, 0] = i
        cand[:, 1:] = torch.minimum(row[:, 1:] + 1, row[:, :-1] + cost)  # deletion, substitution
        row = torch.cummin(cand - j, dim=1).values + j  # insertion
    return row[:, -1]


def diversity(tokens: torch.Tensor, max_pairs: int = 20_000, seed: int = 0) -> float:
    """Mean pairwise edit distance divided by the length T (ORGAN's music diversity).

    ``diversity = mean_{i != j} lev(x_i, x_j) / T`` in [0, 1]; 0 when all samples are
    identical, and 0 for fewer than two samples. Self-pairs are excluded (ORGAN's
    ``utils/music_distance.py`` averages over all N² ordered pairs, self-pairs included,
    which scales its value by (N-1)/N). When there are more than ``max_pairs`` unordered
    pairs, a uniform sample of ``max_pairs`` pairs with ``i != j`` is drawn with a
    generator seeded by ``seed`` (so the value is reproducible).
    """
    N, T = tokens.shape
    if N < 2 or T == 0:
        return 0.0
    total = N * (N - 1) // 2
    if total <= max_pairs:
        i, j = torch.triu_indices(N, N, offset=1, device=tokens.device)
    else:
        g = torch.Generator().manual_seed(seed)
        i = torch.randint(0, N, (max_pairs,), generator=g)
        j = (i + torch.randint(1, N, (max_pairs,), generator=g)) % N  # uniform over j != i
        i, j = i.to(tokens.device), j.to(tokens.device)
    dist = torch.cat([edit_distance(tokens[i[k:k + 65536]], tokens[j[k:k + 65536]])
                      for k in range(0, len(i), 65536)])
    return float(dist.float().mean() / T)


def unique_percent(tokens: torch.Tensor) -> float:
    """Percent of the N samples that are distinct (100 when all differ)."""
    if tokens.shape[0] == 0:
        return 0.0
    return 100.0 * torch.unique(tokens, dim=0).shape[0] / tokens.shape[0]


def novel_percent(tokens: torch.Tensor, train_tokens: torch.Tensor) -> float:
    """Percent of samples that do not occur among the training windows (exact match)."""
    if tokens.shape[0] == 0:
        return 0.0
    if train_tokens.shape[1] != tokens.shape[1]:
        return 100.0
    seen = {row.tobytes() for row in train_tokens.cpu().long().numpy()}
    new = sum(row.tobytes() not in seen for row in tokens.cpu().long().numpy())
    return 100.0 * new / tokens.shape[0]


def pitch_class_entropy(tokens: torch.Tensor, vocab: Any) -> float:
    """Entropy (bits) of the pitch-class histogram of note onsets, averaged over samples.

    Per sample ``H = -Σ_c p_c log2 p_c`` with ``p_c`` the share of its onsets in pitch
    class c (muspy's ``pitch_class_entropy``); in [0, log2 12 ≈ 3.585]. Samples with no
    notes are left out; 0.0 if no sample has a note.
    """
    lut, _ = pitch_lut(vocab, tokens.device)
    V = lut.shape[0] - 1
    ids = torch.where((tokens >= 0) & (tokens < V), tokens, torch.full_like(tokens, V))
    pitch = lut[ids]  # (N, T)
    onset = pitch >= 0
    counts = torch.zeros(tokens.shape[0], 12, device=tokens.device)  # (N, 12)
    counts.scatter_add_(1, pitch.clamp(min=0) % 12, onset.float())
    n = counts.sum(1, keepdim=True)  # (N, 1)
    has = n.squeeze(1) > 0
    if not bool(has.any()):
        return 0.0
    p = counts[has] / n[has]
    h = -(p * torch.log2(p.clamp(min=1e-12))).sum(1)  # (n_has,)
    return float(h.mean())


def notes_per_bar(tokens: torch.Tensor, vocab: Any) -> float:
    """Mean number of note onsets per bar: onsets / (N · T / steps_per_bar)."""
    lut, _ = pitch_lut(vocab, tokens.device)
    V = lut.shape[0] - 1
    ids = torch.where((tokens >= 0) & (tokens < V), tokens, torch.full_like(tokens, V))
    onsets = (lut[ids] >= 0).sum()
    meta = getattr(vocab, "meta", {}) or {}
    spb = meta.get("steps_per_bar") or 4 * int(meta.get("steps_per_quarter", 4))
    bars = tokens.numel() / float(spb)
    return float(onsets) / bars if bars else 0.0


def music_metrics(tokens: torch.Tensor, vocab: Any, train_tokens: torch.Tensor | None = None,
                  max_pairs: int = 20_000, seed: int = 0) -> dict[str, float]:
    """All music metrics of samples ``tokens`` (N, T) as a dict of floats (see module doc)."""
    out: dict[str, float] = {}
    if tokens.shape[0]:
        for name, fn in (("tonality", tonality), ("melodicity", melodicity),
                         ("ratio_of_steps", ratio_of_steps)):
            out[name] = float(fn(tokens, vocab).mean())
    else:
        out.update(tonality=0.0, melodicity=0.0, ratio_of_steps=0.0)
    out["diversity"] = diversity(tokens, max_pairs=max_pairs, seed=seed)
    out["unique"] = unique_percent(tokens)
    if train_tokens is not None:
        out["novel"] = novel_percent(tokens, train_tokens.to(tokens.device))
    out["pitch_class_entropy"] = pitch_class_entropy(tokens, vocab)
    out["notes_per_bar"] = notes_per_bar(tokens, vocab) if tokens.numel() else 0.0
    return out
