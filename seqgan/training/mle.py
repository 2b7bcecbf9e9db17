"""Maximum-likelihood training of the generator: teacher forcing or scheduled sampling.

One epoch over the training set in shuffled minibatches of ``batch_size``: cross entropy
``-(1/(B·T)) Σ_b Σ_t log G(y_t | y_<t)``, gradient norm clipped at ``grad_clip``, one Adam
step per batch (SeqGAN: Adam 0.01, clip 5). Scheduled sampling (Bengio et al. 2015) feeds,
at each step of each row, the model's own token instead of the true previous one with
probability ``p`` (drawn per token and step by default; schedules of p in :mod:`.ss_schedule`).

In a data-parallel job (``st.shard``, :mod:`.shard`) every rank draws the same permutation
and computes on its slice of each batch; its loss is scaled by ``rows here / rows in the
batch`` and the gradients are summed over the ranks before clipping, so the step is the
single-process step on the whole batch. Scheduled sampling's coins come from the rank's
own stream.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from seqgan.errors import TrainingError
from seqgan.models.generator import Generator, sample_logits
from seqgan.training.state import TrainingState


def ss_logits(G: Generator, batch: torch.Tensor, p: float, pick: str = "sample",
              unit: str = "token") -> torch.Tensor:
    """Scheduled-sampling forward of ``batch`` (B, T): logits (B, T, V). The input after
    step t is the model's own token (``pick``: a sample of its distribution, or its argmax)
    with probability ``p``, drawn per row and step (``unit="token"``) or once per row for
    all its steps (``"sequence"``), else the true token; no gradient flows through the choice."""
    B, T = batch.shape
    h, c = G.init_state(B)
    x = torch.full((B,), G.cfg.start_token, dtype=torch.long, device=batch.device)
    per_row = torch.rand(B, device=batch.device) < p if unit == "sequence" else None
    logits_all = []
    for t in range(T):
        h, c, logits = G.step(x, h, c)
        logits_all.append(logits)
        with torch.no_grad():
            own = logits.argmax(-1) if pick == "argmax" else sample_logits(logits)
            use_own = per_row if per_row is not None else torch.rand(B, device=batch.device) < p
        x = torch.where(use_own, own, batch[:, t])
    return torch.stack(logits_all, 1)  # (B, T, V)


def mle_epoch(st: TrainingState, data: torch.Tensor, opt: torch.optim.Optimizer | None = None,
              ss_prob: float | Callable[[int], float] = 0.0) -> float:
    """One epoch of MLE on ``data`` (N, T) with ``opt`` (default: the MLE optimizer);
    the mean batch loss. ``ss_prob``: scheduled sampling's probability, or a function of
    the minibatch's index in the epoch giving it (the run's ``ss_pick`` and ``ss_unit``
    apply). A NaN loss is a TrainingError."""
    G, tc, shard = st.G, st.cfg.train, st.shard
    opt = opt or st.opt_mle
    G.train()
    bs = tc.batch_size
    perm = torch.randperm(len(data), device=st.device)
    loss_sum = torch.zeros((), device=st.device)
    nb = 0
    for i in range(0, len(data), bs):
        rows = perm[i:i + bs]
        lo, hi = shard.bounds(len(rows))
        batch = data[rows[lo:hi]]  # (B, T); a data-parallel rank: its rows of the batch
        opt.zero_grad(set_to_none=True)
        if len(batch):
            p = ss_prob(nb) if callable(ss_prob) else ss_prob
            with shard.local_stream(st.device, key=i):
                logits = ss_logits(G, batch, p, tc.ss_pick, tc.ss_unit) if p > 0 else G(batch)  # (B, T, V)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.reshape(-1))
            if shard.active:  # this rank's share of the mean over the whole batch
                loss = loss * (len(batch) / len(rows))
            loss.backward()
            loss_sum += loss.detach()
        shard.reduce_grads(G.parameters())
        torch.nn.utils.clip_grad_norm_(G.parameters(), tc.grad_clip)
        opt.step()
        nb += 1
    shard.sum_([loss_sum])
    mean = float(loss_sum) / max(nb, 1)
    if not math.isfinite(mean):
        raise TrainingError("the MLE loss became NaN or infinite; training stopped at the last "
                            "good checkpoint (a new run with a lower --lr may help)")
    return mean
