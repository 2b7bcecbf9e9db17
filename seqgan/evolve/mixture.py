"""Mixtures of generators and their exact likelihood.

A mixture of K generators with weights w (w_i ≥ 0, Σ w_i = 1) assigns a sequence x the
probability ``p(x) = Σ_i w_i p_i(x)``, where ``p_i(x) = Π_t G_i(x_t | x_<t)`` is exact for
an autoregressive generator. Its negative log-likelihood per token on a set X of N
sequences of length T is::

    NLL(w) = -(1 / (N·T)) Σ_x log Σ_i w_i p_i(x)
           = -(1 / (N·T)) Σ_x logsumexp_i (log w_i + log p_i(x))

computed from the members' per-sequence log-likelihoods (K, N) in float64; members with
w_i = 0 drop out (log 0 = -inf). For K = 1 it is the generator's own NLL. Sampling a
mixture draws a member by weight for each sequence, then the sequence from that member.
"""
from __future__ import annotations

from typing import Sequence

import torch

from seqgan.models.generator import Generator


@torch.no_grad()
def sequence_log_likelihoods(g: Generator, seqs: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """log p_G(x) of each row of ``seqs`` (N, T): (N,) float64."""
    out = []
    for s in range(0, len(seqs), batch_size):
        out.append(g.log_probs(seqs[s:s + batch_size].to(g.device)).double().sum(1).cpu())
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)


def mixture_nll(log_liks: torch.Tensor, weights: torch.Tensor, seq_len: int) -> float:
    """NLL per token of a mixture (module docstring) from members' log-likelihoods (K, N)."""
    logw = torch.log(weights.double()).unsqueeze(1)  # (K, 1)
    total = torch.logsumexp(logw + log_liks.double(), dim=0)  # (N,)
    return float(-total.mean() / seq_len)


class MixtureGenerator:
    """K generators and their weights, sampled and scored as one model."""

    def __init__(self, members: Sequence[Generator], weights: torch.Tensor):
        self.members = list(members)
        self.weights = weights.double() / weights.double().sum()
        self.cfg = self.members[0].cfg

    @property
    def device(self) -> torch.device:
        """The device of the members (all on one)."""
        return self.members[0].device

    def eval(self) -> "MixtureGenerator":
        """Every member in eval mode; the mixture."""
        for m in self.members:
            m.eval()
        return self

    def to(self, device) -> "MixtureGenerator":
        """Every member moved to ``device``; the mixture."""
        self.members = [m.to(device) for m in self.members]
        return self

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None,
               length: int | None = None) -> torch.Tensor:
        """n sequences (n, L): member k drawn with probability w_k for each row (L: ``length``
        or the training length)."""
        which = torch.multinomial(self.weights.float().to(self.device), n, replacement=True,
                                  generator=generator)  # (n,)
        out = torch.empty(n, length or self.cfg.seq_len, dtype=torch.long, device=self.device)
        for k, g in enumerate(self.members):
            rows = (which == k).nonzero().squeeze(1)
            if len(rows):
                out[rows] = g.sample(len(rows), temperature=temperature, generator=generator, length=length)
        return out

    def nll(self, seqs: torch.Tensor) -> float:
        """The mixture's exact NLL per token of ``seqs`` (N, T)."""
        ll = torch.stack([sequence_log_likelihoods(g, seqs) for g in self.members])
        return mixture_nll(ll, self.weights, seqs.shape[1])
