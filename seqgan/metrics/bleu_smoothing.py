"""Smoothing of BLEU's modified precisions, as nltk's ``SmoothingFunction`` does it.

With m_k the clipped k-gram matches of a hypothesis and d_k = max(1, len - k + 1) its
k-grams (:mod:`seqgan.metrics.bleu`), the precision p_k entering BLEU's geometric mean is

    method1 (default)  p_k = m_k / d_k,  or 0.1 / d_k where m_k = 0   (Chen & Cherry 2014)
    method0 (none)     p_k = m_k / d_k,  or 2.2e-308 where m_k = 0, so that BLEU ≈ 0
    method2            p_1 = m_1 / d_1;  p_k = (m_k + 1) / (d_k + 1) for k ≥ 2  (Lin & Och 2004)

and in every case BLEU = 0 when m_1 = 0 (nltk's "no unigram match" rule). PG-BLEU's reward
(``--pg-bleu-smoothing``) picks one: method0 makes the reward of most partial sentences
zero, method2 rewards short n-gram overlaps more than method1 does.
"""
from __future__ import annotations

import sys

import torch

SMOOTHINGS = ("method1", "method0", "method2")
EPSILON = 0.1  # nltk SmoothingFunction(epsilon=0.1).method1


def precisions(nums: torch.Tensor, dens: torch.Tensor, smoothing: str = "method1",
               dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """p_k (R, n) of clipped matches ``nums`` (R, n) and n-gram totals ``dens`` (R, n)."""
    num, den = nums.to(dtype), dens.to(dtype)
    if smoothing == "method1":
        return torch.where(nums > 0, num, torch.full_like(num, EPSILON)) / den
    if smoothing == "method0":
        return torch.where(nums > 0, num / den, torch.full_like(num, sys.float_info.min))
    if smoothing == "method2":
        add = torch.ones_like(num)
        add[:, 0] = 0  # the unigram precision is left alone
        return (num + add) / (den + add)
    raise ValueError(f"unknown BLEU smoothing {smoothing!r}; choose one of {', '.join(SMOOTHINGS)}")
