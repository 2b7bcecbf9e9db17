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

On the CPU the same rows are produced in blocks that fit in the caches: a block of
``block`` rows (whole groups of B, one prefix length t) is stepped from t to T, instead
of every step touching up to (T-1)·N·B × V logits, and the blocks of one t are scored
together, up to :data:`CPU_SCORE_ROWS` rows a call (the token tables' rows that their
tokens bring into the caches serve more completions: 0.15 s less at SeqGAN's sizes). The
uniforms that the lockstep path draws at step s (one per active row, in row order) are drawn up
front in the same calls, and a row's arithmetic does not depend on which other rows
share its matrix product, so the completions are the lockstep path's, token for token,
for a given seed. The first step from Y[:t] has the same input and state in all N
rollouts of a row, so it is taken once per prefix and its cumulative probabilities
serve the N draws (at T 20, a tenth of the cell steps). A reward whose discriminator
shares prefix windows (:meth:`~seqgan.training.rewards.RewardFn.prefix_scorer`) scores a
block of completions of Y[:t] from Y's window maxima plus the windows reaching past t
(equal to plain scoring up to float rounding; a fifth fewer multiply-adds for SeqGAN's D).
"""
from __future__ import annotations

from typing import Callable

import torch

from seqgan.models.generator import DelayedCopy, Generator, inverse_cdf, pick, sample_logits

# score(tokens (M, T), group_size) -> rewards (M,)
ScoreFn = Callable[[torch.Tensor, int], torch.Tensor]
# prefix score(completions (M, T) of the prefixes Y[:t], t) -> rewards (M,)
PrefixScoreFn = Callable[[torch.Tensor, int], torch.Tensor]

# rows of completions a CPU makes and scores at a time (bench/bench_cpu.py measures it)
CPU_BLOCK_ROWS = 256
# completions of one prefix length a CPU scores at a time, several blocks together: the
# token tables' rows that a block's tokens pull into the caches serve more completions
CPU_SCORE_ROWS = 1024
# below this many rows a row's product can round differently with the row count (MKL)
MIN_BLOCK_ROWS = 8


class RolloutPolicy(DelayedCopy):
    """The rollout policy G_β (SeqGAN, Eq. 4): a no-grad deep copy of the generator that
    completes prefixes for Monte Carlo rewards and moves towards G by :meth:`update`."""

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
                chunk: int = 32_768, block: int | None = None,
                prefix_shared: bool | None = None) -> torch.Tensor:
        """Q (B, T): Monte Carlo action values; Q[:, T-1] = R(Y) exactly.

        ``block``: rows of completions made at a time (whole groups of B, at
        least :data:`MIN_BLOCK_ROWS`), or 0 for the lockstep path (also taken when N·B is
        below :data:`MIN_BLOCK_ROWS`); ``prefix_shared``: score with the prefix's shared
        windows when the reward offers it. None picks per device: blocks of
        :data:`CPU_BLOCK_ROWS` and prefix sharing on the CPU, lockstep and plain scoring
        on GPUs.
        """
        B, T = seqs.shape
        N = rollout_num
        cpu = seqs.device.type == "cpu"
        block = (CPU_BLOCK_ROWS if cpu else 0) if block is None else block
        use_prefix = cpu if prefix_shared is None else prefix_shared
        prefix = getattr(score, "prefix_scorer", None)
        prefix = prefix(seqs, (T - 1) * N * B) if use_prefix and prefix is not None else None
        if block and N * B >= MIN_BLOCK_ROWS:
            rows = max(-(-MIN_BLOCK_ROWS // B) * B, block // B * B)
            scores = self._blocked_scores(seqs, score, N, rows, prefix)
        else:
            comps = self.completions(seqs, N)  # ((T-1)*N*B, T)
            step = max(B, chunk // B * B)
            if prefix is None:
                parts = [score(comps[s:s + step], B) for s in range(0, comps.shape[0], step)]
            else:  # chunks within one prefix length t: rows [(t-1)·N·B, t·N·B)
                NB = N * B
                parts = [prefix(comps[s:min(s + step, t * NB)], t)
                         for t in range(1, T) for s in range((t - 1) * NB, t * NB, step)]
            scores = torch.cat(parts)
        q = scores.view(T - 1, N, B).mean(1).t()  # (B, T-1)
        return torch.cat([q, score(seqs, B).unsqueeze(1)], dim=1)  # (B, T)

    def _blocked_scores(self, seqs: torch.Tensor, score: ScoreFn, N: int, rows: int,
                        prefix: PrefixScoreFn | None) -> torch.Tensor:
        """Scores ((T-1)·N·B,) of the lockstep layout's completions, made in blocks of
        ``rows`` rows of one prefix length and scored per prefix length (see the module
        docstring)."""
        g = self.model
        B, T = seqs.shape
        NB = N * B
        h_all, c_all = g.prefix_states(seqs)  # (B, T, H)
        # the lockstep path's draws: at step s one uniform per row with prefix t <= s
        uniforms = [torch.rand(s * NB, 1, device=seqs.device) for s in range(1, T)]
        parts = []  # in the lockstep layout's row order
        starts = list(range(0, NB, rows))
        if len(starts) > 1 and NB - starts[-1] < MIN_BLOCK_ROWS:
            starts.pop()  # the last block takes the few rows left over
        # the first step from Y[:t] has the same input and state in all N rollouts of a row:
        # taken once on B rows (repeated up to MIN_BLOCK_ROWS, so it rounds as in a block)
        rep = -(-MIN_BLOCK_ROWS // B)
        for t in range(1, T):
            h1, c1, logits = g.step(seqs[:, t - 1].repeat(rep), h_all[:, t - 1].repeat(rep, 1),
                                    c_all[:, t - 1].repeat(rep, 1))
            h1, c1, cdf1 = h1[:B], c1[:B], inverse_cdf(logits[:B])  # (B, H), (B, H), (B, V)
            outs = []
            for r0, r1 in zip(starts, starts[1:] + [NB]):
                m = r1 - r0
                first = (t - 1) * NB + r0  # the block's first row in the lockstep layout
                out = seqs.repeat(m // B, 1)  # (m, T)
                u = uniforms[t - 1][first:first + m].view(m // B, B).t().contiguous()  # (B, m/B)
                out[:, t] = pick(cdf1, u).t().reshape(m)
                h, c = h1.repeat(m // B, 1), c1.repeat(m // B, 1)
                for s in range(t + 1, T):
                    h, c, logits = g.step(out[:, s - 1], h, c)
                    out[:, s] = pick(inverse_cdf(logits), uniforms[s - 1][first:first + m]).squeeze(1)
                outs.append(out)
                if r1 == NB or sum(len(o) for o in outs) >= CPU_SCORE_ROWS:
                    out = torch.cat(outs) if len(outs) > 1 else outs[0]
                    parts.append(score(out, B) if prefix is None else prefix(out, t))
                    outs = []
        return torch.cat(parts)


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
