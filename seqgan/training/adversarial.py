"""The adversarial step of SeqGAN / ORGAN: sample, roll out, reward, REINFORCE.

One generator step (SeqGAN, Algorithm 1)::

    Y ~ G (B, T);  Q = rollout rewards of Y under G_β (B, T);  [Q ← Q - mean_b Q]
    loss = -(1/B) Σ_b Σ_t log G(y_t | Y[:t-1]) · Q_t;   Adam step (clip ``grad_clip``)

The reward of a whole sequence is ``R(Y) = λ·S(Y) + (1-λ)·O(Y)·w(Y)`` (ORGAN) with S the
discriminator's probability of "real" (or BLEU for PG-BLEU), O an objective and w ORGAN's
duplicate penalty (:class:`~seqgan.training.rewards.RewardFn`). After ``g_steps`` steps
the rollout policy moves towards G: ``G_β ← ρ·G_β + (1-ρ)·G``.

In a data-parallel job (``st.shard``, :mod:`.shard`) every rank samples the same batch Y of
B sequences and rolls out only its slice of it (Monte Carlo draws from its own stream);
the per-step sums of Q (for the mean reward and the baseline) and the gradients are summed
over the ranks, so given the same rewards the step is the single-process step on all B.
Per-batch statistics inside the reward (ORGAN's duplicate penalty, a WGAN critic's
rescaling, batch-relative objectives) see the rank's slice.
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from seqgan.errors import UserError
from seqgan.metrics.bleu import BleuReference, eos_lengths
from seqgan.objectives import get_objective
from seqgan.training.g_losses import draw, get_g_loss
from seqgan.training.rewards import DiscriminatorScorer, RewardFn, check_rewards, subtract_baseline
from seqgan.training.state import TrainingState

Scorer = Callable[[torch.Tensor], torch.Tensor]


def objective_for(tc: Any, allow_import: bool = False):
    """The objective a train config needs (λ < 1), or None; ``module:function`` names are
    imported only with ``allow_import`` (the user typed it)."""
    if tc.lambda_ >= 1:
        return None
    if not tc.objective:
        raise UserError("λ < 1 needs an objective: pass --objective NAME")
    return get_objective(tc.objective, allow_import=allow_import)


def discriminator_scorer(D: Any, chunk: int) -> Scorer:
    """S(Y) = D's probability that Y is real (a WGAN critic: its raw score, which the reward
    rescales per batch), scored in chunks of ``chunk``."""
    return DiscriminatorScorer(D, chunk)


def discriminator_reward(D: Any, tc: Any, objective: Any, vocab: Any) -> RewardFn:
    """R = λ·S(Y) + (1-λ)·O(Y)·w(Y) with S from ``D`` (see :func:`discriminator_scorer`)."""
    scorer = discriminator_scorer(D, tc.rollout_chunk) if tc.lambda_ > 0 else None
    fn = RewardFn(scorer, tc.lambda_, objective, tc.objective or "", vocab, tc.duplicate_penalty)
    fn.rescale = D is not None and D.cfg.loss == "wgan"
    return fn


def bleu_scorer(references: torch.Tensor, vocab: Any, n: int, smoothing: str = "method1",
                refs: int = 0, seed: int = 0) -> Scorer:
    """S(Y) = BLEU-n of Y (cut at EOS) against every row of ``references`` (N, T) (PG-BLEU),
    or against ``refs`` of them drawn without replacement with ``seed`` (0: all), with nltk's
    ``smoothing`` (:mod:`seqgan.metrics.bleu_smoothing`)."""
    if 0 < refs < len(references):
        pick = torch.randperm(len(references), generator=torch.Generator().manual_seed(seed))[:refs]
        references = references[pick.to(references.device)]
    ref = BleuReference([vocab.strip(row) for row in references.tolist()], max_n=n)
    eos = vocab.eos

    def score(tokens: torch.Tensor) -> torch.Tensor:
        """BLEU-n (M,) float32 in [0, 1] of token rows (M, T) cut at their first EOS, on their device."""
        return ref.score_tensor(tokens, eos_lengths(tokens, eos), n, smoothing=smoothing).float().to(tokens.device)

    return score


def pg_step(st: TrainingState, reward_fn: RewardFn) -> torch.Tensor:
    """One REINFORCE step of G (see the module docstring); the mean reward (device scalar)."""
    tc, B, G, shard = st.cfg.train, st.cfg.train.batch_size, st.G, st.shard
    G.eval()
    seqs = G.sample(B)  # (B, T)
    G.train()
    lo, hi = shard.bounds(B)
    seqs = seqs[lo:hi]  # a data-parallel rank: its rows of the batch
    with shard.local_stream(st.device):
        q = st.rollout.rewards(seqs, reward_fn, tc.rollout_num, tc.rollout_chunk)  # (B, T)
    if shard.active:
        col = q.sum(0)  # (T,): summed over every rank's rows
        shard.sum_([col])
        check_rewards(col)  # a NaN anywhere reaches every rank
        mean_reward = col.sum() / (B * q.shape[1])
        if tc.reward_baseline:
            q = q - col / B
    else:
        check_rewards(q)
        mean_reward = q.mean()
        if tc.reward_baseline:
            q = subtract_baseline(q)
    loss = -(G.log_probs(seqs) * q).sum() / B
    st.opt_adv.zero_grad(set_to_none=True)
    loss.backward()
    shard.reduce_grads(G.parameters())
    torch.nn.utils.clip_grad_norm_(G.parameters(), tc.grad_clip)
    st.opt_adv.step()
    return mean_reward


def policy_gradient_epoch(st: TrainingState, reward_fn: RewardFn, g_loss: str = "seqgan"
                          ) -> dict[str, float]:
    """``g_steps`` REINFORCE steps, then the rollout policy's update; the mean reward.

    ``g_loss`` names the reward transform of the discriminator's verdict
    (:mod:`seqgan.training.g_losses`); ``random`` draws one per step from the global
    stream (so a resumed run draws the same)."""
    tc = st.cfg.train
    rewards = []
    for _ in range(tc.g_steps):
        name = draw(g_loss)
        reward_fn.transform = None if name == "seqgan" else get_g_loss(name)
        rewards.append(pg_step(st, reward_fn))
    st.rollout.update(st.G, tc.update_rate)
    return {"reward": float(torch.stack(rewards).mean())}
