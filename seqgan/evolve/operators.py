"""The evolutionary operators of a cell, on seeded random streams.

- :func:`cell_seed`: the seed of a cell's random stream in one generation, a function of
  (seed, cell, generation) only (sha256 of the three, 63 bits), so a cell's update does
  not depend on which cells were updated before it, nor in which process.
- :func:`tournament`: tournament selection (size k, with replacement): draw k members,
  keep the fittest (ties go to the first drawn).
- :func:`mutate_lr`: with probability p, ``lr ← clamp(lr · (1 + σ·ε), lo, hi)``, ε ~ N(0, 1).
- :func:`es_step`: one (1+1)-ES step of mixture weights: child ``w' = w + σ·ε`` clipped at
  0 and renormalised (uniform if all clip to 0); kept when its score is better (lower).
"""
from __future__ import annotations

import hashlib
from typing import Callable, Sequence

import torch


def cell_seed(seed: int, cell: int, generation: int) -> int:
    """A 63-bit seed for (seed, cell, generation), the same in every process."""
    digest = hashlib.sha256(f"seqgan-cell:{seed}:{cell}:{generation}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def tournament(fitness: Sequence[float], rng: torch.Generator, size: int = 2) -> int:
    """Index of the winner of a size-``size`` tournament on ``fitness`` (higher is better)."""
    picks = torch.randint(len(fitness), (size,), generator=rng).tolist()
    best = picks[0]
    for i in picks[1:]:
        if fitness[i] > fitness[best]:
            best = i
    return best


def mutate_lr(lr: float, rng: torch.Generator, prob: float, std: float, lo: float, hi: float) -> float:
    """A learning rate after mutation (see the module docstring); always draws 2 numbers."""
    u = float(torch.rand((), generator=rng))
    eps = float(torch.randn((), generator=rng))
    if u >= prob:
        return lr
    return min(max(lr * (1.0 + std * eps), lo), hi)


def normalise(w: torch.Tensor) -> torch.Tensor:
    """Weights clipped at 0 and summing to 1 (uniform if none is positive), float64."""
    w = w.double().clamp_min(0.0)
    total = w.sum()
    return w / total if total > 0 else torch.full_like(w, 1.0 / len(w))


def es_step(w: torch.Tensor, score: float, score_fn: Callable[[torch.Tensor], float],
            rng: torch.Generator, sigma: float) -> tuple[torch.Tensor, float]:
    """One (1+1)-ES step: ``(w, score)`` of the parent or of the child if it scores lower."""
    child = normalise(w + sigma * torch.randn(w.shape, generator=rng, dtype=torch.float64))
    child_score = score_fn(child)
    return (child, child_score) if child_score < score else (w, score)
