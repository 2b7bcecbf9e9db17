"""What one "adversarial" epoch trains: SeqGAN and the baselines of its Table 1, by name.

=============  ======================================================================
``seqgan``     REINFORCE with R = λ·D + (1-λ)·O·w, then ``d_steps`` rounds of D (ORGAN
               when λ < 1, naive RL when λ = 0: then no discriminator is trained)
``mle``        one more MLE epoch (the MLE row of Table 1, trained as long)
``ss``         scheduled sampling (Bengio et al. 2015): an MLE epoch feeding the model's
               own tokens with probability p (:mod:`.ss_schedule`; by default
               p = ss_max_prob · (e + 1) / adv_epochs)
``pg-bleu``    REINFORCE with BLEU-n against the training data (or ``pg_bleu_refs`` of
               its sequences) as the reward, nltk's ``pg_bleu_smoothing``; no D
=============  ======================================================================

A baseline is an :class:`Baseline`: whether it needs D and a reward, and its epoch
function ``(state, data, reward_fn) -> metrics``. :func:`get_baseline` raises with the
valid names.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from seqgan.errors import UserError
from seqgan.training.adversarial import bleu_scorer, discriminator_reward, objective_for, \
    policy_gradient_epoch
from seqgan.training.d_training import d_round
from seqgan.training.mle import mle_epoch
from seqgan.training.rewards import RewardFn
from seqgan.training.ss_schedule import ss_probability
from seqgan.training.state import TrainingState


@dataclass(frozen=True)
class Baseline:
    """One way to train the generator after pretraining."""

    name: str
    epoch: Callable[[TrainingState, torch.Tensor, RewardFn | None], dict[str, float]]
    needs_d: Callable[[Any], bool] = lambda tc: False  # given the train config
    reward: Callable[..., RewardFn | None] = lambda st, data, vocab, allow_import: None


def _seqgan_reward(st: TrainingState, data: torch.Tensor, vocab: Any, allow_import: bool) -> RewardFn:
    return discriminator_reward(st.D, st.cfg.train, objective_for(st.cfg.train, allow_import), vocab)


def _pg_bleu_reward(st: TrainingState, data: torch.Tensor, vocab: Any, allow_import: bool) -> RewardFn:
    tc = st.cfg.train
    scorer = bleu_scorer(data, vocab, tc.pg_bleu_n, tc.pg_bleu_smoothing, tc.pg_bleu_refs, tc.seed)
    return RewardFn(scorer, 1.0, None, tc.objective or "", vocab, tc.duplicate_penalty)


def _seqgan_epoch(st: TrainingState, data: torch.Tensor, reward_fn: RewardFn | None) -> dict[str, float]:
    tc = st.cfg.train
    out = policy_gradient_epoch(st, reward_fn, tc.g_loss)
    if st.D is not None:
        for _ in range(tc.d_steps):
            out.update(d_round(st.G, st.d_trainer, data, tc.k_epochs, tc.d_samples))
    return out


def _ss_epoch(st: TrainingState, data: torch.Tensor, reward_fn: RewardFn | None) -> dict[str, float]:
    tc, e = st.cfg.train, st.counters["adv_epoch"]
    batches = -(-len(data) // tc.batch_size)

    def p(b: int) -> float:
        """The probability of feeding the model's own token in minibatch ``b`` of this epoch."""
        return ss_probability(tc.ss_schedule, tc.ss_max_prob, tc.ss_k, e, tc.adv_epochs, b, batches)

    return {"loss": mle_epoch(st, data, ss_prob=p), "ss_prob": p(batches - 1)}


BASELINES: dict[str, Baseline] = {b.name: b for b in (
    Baseline("seqgan", _seqgan_epoch, needs_d=lambda tc: tc.lambda_ > 0, reward=_seqgan_reward),
    Baseline("mle", lambda st, data, r: {"loss": mle_epoch(st, data)}),
    Baseline("ss", _ss_epoch),
    Baseline("pg-bleu", lambda st, data, r: policy_gradient_epoch(st, r), reward=_pg_bleu_reward),
)}


def get_baseline(name: str) -> Baseline:
    """The :class:`Baseline` called ``name``; a UserError listing the valid names."""
    try:
        return BASELINES[name]
    except KeyError:
        raise UserError(f"unknown --baseline {name!r}; choose one of: {', '.join(BASELINES)}") from None
