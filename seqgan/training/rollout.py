"""Rollout policy G_β and batched Monte Carlo rewards (SeqGAN, Yu et al. 2017, Eq. 4).

For sampled sequences Y (B, T) and a reward R on whole sequences, the action value of
choosing y_t after Y[:t-1] is::

    Q(Y[:t-1], y_t) = (1/N) Σ_n R(MC_n(Y[:t]))   for t < T        (MC from G_β)
    Q(Y[:T-1], y_T) = R(Y)

``MC_n(Y[:t])`` completes the prefix Y[:t] with tokens sampled from the rollout policy
G_β, a delayed copy of the generator updated after each generator step as
``β ← ρ·β + (1-ρ)·θ`` (``update_rate`` ρ = 0.8). SeqGAN's TensorFlow code built this update
but its rollout graph read the generator's live weights, i.e. it behaved as ρ = 0.

Batching: the policy's LSTM states for every prefix come from one teacher-forced pass.
The (T-1)·N·B completions are laid out prefix-major (row = ((t-1)·N + n)·B + b) and
stepped in lockstep over time; at step s only the rows whose prefix is shorter than s
are active, and they form a leading slice, so the work is N·B·T(T-1)/2 cell steps with
no Python loop over rollouts or prefixes. Scoring runs in chunks of whole (t, n) groups
of B rows (bounding memory; ORGAN's duplicate penalty is computed per group).
"""
from __future__ import annotations

import copy
from typing import Callable

import torch

from seqgan.models.generator import Generator, sample_logits

# score(tokens (M, T), group_size) -> rewards (M,)
ScoreFn = Callable[[torch.Tensor, int], torch.Tensor]


class RolloutPolicy:
    """The rollout policy G_β (SeqGAN, Eq. 4): a no-grad deep copy of the generator that
    completes prefixes for Monte Carlo rewards and moves towards G by :meth:`update`."""

    def __init__(self, generator: Generator):
        self.model = copy.deepcopy(generator)
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, generator: Generator, update_rate: float) -> None:
        """β ← ρ·β + (1-ρ)·θ for every parameter."""
        for b, t in zip(self.model.parameters(), generator.parameters()):
            b.mul_(update_rate).add_(t.detach(), alpha=1.0 - update_rate)

    @torch.no_grad()
    def completions(self, seqs: torch.Tensor, rollout_num: int) -> torch.Tensor:
        """All Monte Carlo completions ((T-1)·N·B, T), prefix-major."""
        g = self.model
        B, T = seqs.shape
        N = rollout_num
        NB = N * B
        h_all, c_all = g.prefix_states(seqs)  # (B, T, H): state after consuming Y[:t]
        H = h_all.shape[2]
        # row r = ((t-1)*N + n)*B + b has prefix length t = r // NB + 1
        h = h_all[:, :T - 1].transpose(0, 1).unsqueeze(1).expand(T - 1, N, B, H).reshape(-1, H)
        c = c_all[:, :T - 1].transpose(0, 1).unsqueeze(1).expand(T - 1, N, B, H).reshape(-1, H)
        out = seqs.repeat(N * (T - 1), 1)  # (R, T): prefixes already in place
        for s in range(1, T):  # produce token index s (0-based) for rows with prefix t <= s
            k = s * NB  # rows with t <= s lead the layout
            x = out[:k, s - 1]
            hk, ck, logits = g.step(x, h[:k], c[:k])
            h[:k], c[:k] = hk, ck
            out[:k, s] = sample_logits(logits)
        return out

    @torch.no_grad()
    def rewards(self, seqs: torch.Tensor, score: ScoreFn, rollout_num: int = 16,
                chunk: int = 32_768) -> torch.Tensor:
        """Q (B, T): Monte Carlo action values; Q[:, T-1] = R(Y) exactly."""
        B, T = seqs.shape
        N = rollout_num
        comps = self.completions(seqs, N)  # ((T-1)*N*B, T)
        chunk = max(B, chunk // B * B)
        scores = torch.cat([score(comps[s:s + chunk], B) for s in range(0, comps.shape[0], chunk)])
        q = scores.view(T - 1, N, B).mean(1).t()  # (B, T-1)
        return torch.cat([q, score(seqs, B).unsqueeze(1)], dim=1)  # (B, T)


@torch.no_grad()
def reference_rewards(policy: Generator, seqs: torch.Tensor, score: ScoreFn,
                      rollout_num: int) -> torch.Tensor:
    """Slow reference (how existing tools do it): loop over rollouts and prefixes,
    recomputing every prefix from the start token. Same distribution as
    :meth:`RolloutPolicy.rewards`; used by tests and ``bench/bench_adversarial.py``."""
    B, T = seqs.shape
    q = torch.zeros(B, T, device=seqs.device)
    for _ in range(rollout_num):
        for t in range(1, T):
            h, c = policy.init_state(B)
            x = torch.full((B,), policy.cfg.start_token, dtype=torch.long, device=seqs.device)
            out = seqs.clone()
            for s in range(T):
                h, c, logits = policy.step(x, h, c)
                if s >= t:
                    out[:, s] = sample_logits(logits)
                x = out[:, s]
            q[:, t - 1] += score(out, B)
    q[:, :T - 1] /= rollout_num
    q[:, T - 1] = score(seqs, B)
    return q
