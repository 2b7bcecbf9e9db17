"""Scheduled sampling's schedule: the probability p of feeding the model's own token.

Bengio et al. (2015, "Scheduled Sampling for Sequence Prediction with Recurrent Neural
Networks", section 2.4) flip, at every step of every sequence, a coin that keeps the true
previous token with probability ε_i, where i counts minibatches and ε_i decays from 1:

    linear             ε_i = max(ε_min, k - c·i)
    exponential        ε_i = k^i                   (k < 1)
    inverse sigmoid    ε_i = k / (k + exp(i / k))   (k ≥ 1)

and feed the model's own sample otherwise. SeqGAN's paper names SS as a baseline and its
code has none, so which reading produced its Table-1 row is open; ``ss_schedule`` picks
one (p = 1 - ε, always capped at ``ss_max_prob``):

=================== ====================================================================
``linear``          per epoch e of E:  p = ss_max_prob · (e + 1) / E  (our default since the
                    first release: p reaches its cap at the last epoch)
``constant``        p = ss_max_prob throughout
``inverse-sigmoid`` per minibatch i:  p = min(1 - k / (k + exp(i / k)), ss_max_prob)
``exponential``     per minibatch i:  p = min(1 - k^i, ss_max_prob)
=================== ====================================================================

``ss_k`` = 0 chooses k so that ε reaches 1/2 halfway through the epochs (i = m, m half
the minibatches of the run): inverse sigmoid k·ln k = m (solved by Newton's method),
exponential k = 2^(-1/m). How the coin is drawn (``ss_unit``: per token as Bengio et al.
do, or once per sequence) and what is fed (``ss_pick``: a sample of the model's
distribution, as they do, or its argmax) are :func:`seqgan.training.mle.ss_logits`'s.
"""
from __future__ import annotations

import math

from seqgan.runs.config import SS_SCHEDULES as SCHEDULES


def auto_k(schedule: str, midpoint: float) -> float:
    """k whose decay gives ε = 1/2 after ``midpoint`` minibatches (see the module doc)."""
    m = max(float(midpoint), 1.0)
    if schedule == "exponential":
        return 0.5 ** (1.0 / m)
    k = max(m / math.log(m + math.e), 1.0)  # Newton on f(k) = k ln k - m from near the root
    for _ in range(50):
        step = (k * math.log(k) - m) / (math.log(k) + 1.0)
        k = max(k - step, 1.0)
        if abs(step) < 1e-9 * k:
            break
    return k


def ss_probability(schedule: str, max_prob: float, k: float, epoch: int, epochs: int,
                   batch: int, batches: int) -> float:
    """p for minibatch ``batch`` (0-based) of ``batches`` in epoch ``epoch`` (0-based) of
    ``epochs``, under ``schedule`` capped at ``max_prob`` (see the module docstring)."""
    if schedule == "linear":
        return max_prob * (epoch + 1) / max(epochs, 1)
    if schedule == "constant":
        return max_prob
    i = epoch * batches + batch
    k = k or auto_k(schedule, epochs * batches / 2)
    if schedule == "inverse-sigmoid":
        z = i / k
        eps = 0.0 if z > 700 else k / (k + math.exp(z))
    elif schedule == "exponential":
        eps = k ** i
    else:
        raise ValueError(f"unknown scheduled-sampling schedule {schedule!r}; choose one of {SCHEDULES}")
    return min(1.0 - eps, max_prob)
