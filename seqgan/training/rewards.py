"""Reward composition R(Y) = λ·D(Y) + (1-λ)·O(Y)·w(Y)  (ORGAN, Guimaraes et al. 2017, Eq. 3).

- D(Y): the discriminator's probability that Y is real (or, for the PG-BLEU baseline,
  any other scorer in [0, 1] such as BLEU against the training data).
- O(Y): a non-differentiable objective in [0, 1] from :mod:`seqgan.objectives`.
- w(Y): ORGAN's optional duplicate penalty over the batch Y was scored with,
  ``w(Y) = (#distinct sequences in the batch / batch size) / #copies of Y in the batch``.

λ = 1 is SeqGAN (the objective is never called), λ = 0 is naive RL (D is never called).
Every objective output is validated: NaN, values outside [0, 1] or the wrong shape stop
training with an error naming the objective.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import torch

from seqgan.errors import TrainingError, UserError
from seqgan.objectives import check_objective_output

Scorer = Callable[[torch.Tensor], torch.Tensor]  # tokens (M, T) -> (M,) in [0, 1]


def validate_lambda(lambda_: float) -> float:
    """λ as a float if it is a number in [0, 1] (1 = SeqGAN, 0 = objective only), else a
    UserError."""
    if not isinstance(lambda_, (int, float)) or math.isnan(lambda_) or not 0.0 <= lambda_ <= 1.0:
        raise UserError(f"--lambda must be in [0, 1] (1 = SeqGAN, 0 = objective only); got {lambda_}")
    return float(lambda_)


def duplicate_weights(tokens: torch.Tensor, group_size: int) -> torch.Tensor:
    """ORGAN's duplicate penalty w (M,) for consecutive groups of ``group_size`` rows.

    ``w_i = (u_g / G) / c_i`` where ``u_g`` is the number of distinct rows in row i's group
    g, G the group size and ``c_i`` the number of copies of row i in its group. All rows
    distinct gives w = 1; a group of G identical rows gives w = 1/G².
    """
    M, T = tokens.shape
    if M % group_size:
        raise ValueError(f"{M} rows do not split into groups of {group_size}")
    gid = torch.arange(M, device=tokens.device) // group_size
    keyed = torch.cat([gid.unsqueeze(1), tokens], dim=1)  # (M, T+1)
    uniq, inverse, counts = torch.unique(keyed, dim=0, return_inverse=True, return_counts=True)
    copies = counts[inverse].float()  # (M,)
    distinct = torch.zeros(M // group_size, device=tokens.device)
    distinct.index_add_(0, uniq[:, 0], torch.ones(len(uniq), device=tokens.device))
    return distinct[gid] / group_size / copies


class RewardFn:
    """Callable ``(tokens (M, T), group_size) -> R (M,)`` for the rollout."""

    def __init__(self, scorer: Scorer | None, lambda_: float = 1.0, objective: Any = None,
                 objective_name: str = "objective", vocab: Any = None,
                 duplicate_penalty: bool = False):
        self.lambda_ = validate_lambda(lambda_)
        if self.lambda_ > 0 and scorer is None:
            raise UserError("λ > 0 needs a discriminator")
        if self.lambda_ < 1 and objective is None:
            raise UserError("λ < 1 needs an objective (--objective NAME)")
        self.scorer, self.objective, self.name = scorer, objective, objective_name
        self.vocab, self.duplicate_penalty = vocab, duplicate_penalty
        self.transform: Callable[[torch.Tensor], torch.Tensor] | None = None  # f of a generator loss
        self.rescale = False  # a WGAN critic: min-max rescale its scores per group of rows

    def objective_values(self, tokens: torch.Tensor, group_size: int | None = None) -> torch.Tensor:
        """O (M,) validated; a batch-relative objective (``batch_relative = True``, e.g. ORGAN's
        min-max rescaled ones) is given ``group_size`` so it treats each group as its batch."""
        try:
            if getattr(self.objective, "batch_relative", False):
                out = self.objective(tokens, self.vocab, group_size=group_size)
            else:
                out = self.objective(tokens, self.vocab)
        except UserError:
            raise
        except Exception as e:
            raise TrainingError(f"objective {self.name!r} failed: {type(e).__name__}: {e}") from None
        try:
            return check_objective_output(out, tokens.shape[0], self.name).to(tokens.device)
        except UserError as e:
            raise TrainingError(str(e)) from None

    def __call__(self, tokens: torch.Tensor, group_size: int,
                 d: torch.Tensor | None = None) -> torch.Tensor:
        """R (M,) of tokens (M, T) in groups of ``group_size`` rows; ``d`` (M,): the
        scorer's values for these rows when already computed."""
        r = torch.zeros(tokens.shape[0], device=tokens.device)
        if self.lambda_ > 0:
            d = (self.scorer(tokens) if d is None else d).float()
            if self.rescale:
                d = rescale_groups(d, group_size)
            r = r + self.lambda_ * (d if self.transform is None else self.transform(d))
        if self.lambda_ < 1:
            o = self.objective_values(tokens, group_size)
            if self.duplicate_penalty:
                o = o * duplicate_weights(tokens, group_size)
            r = r + (1.0 - self.lambda_) * o
        return r

    def prefix_scorer(self, seqs: torch.Tensor,
                      completions: int = 0) -> Callable[[torch.Tensor, int], torch.Tensor] | None:
        """For Monte Carlo completions of the prefixes of ``seqs`` (B, T): a function
        ``(completions (M, T) of Y[:t], t) -> R (M,)`` whose scorer shares the windows inside
        each prefix (:class:`DiscriminatorScorer`), or None when the scorer cannot.
        ``completions``: how many rows it will score in all (sizes the scorer's set-up)."""
        if self.lambda_ == 0 or not hasattr(self.scorer, "prefix_windows"):
            return None
        shared, B = self.scorer.prefix_windows(seqs, completions), seqs.shape[0]
        return lambda tokens, t: self(tokens, B, self.scorer.prefix_verdicts(shared, tokens, t))


class DiscriminatorScorer:
    """S(Y) from a discriminator D: its probability that Y is real, or a WGAN critic's raw
    score (which the reward rescales per batch), in chunks of ``chunk`` rows; for rollouts
    also prefix-shared (:meth:`~seqgan.models.discriminator.Discriminator.prefix_verdicts`)."""

    def __init__(self, D: Any, chunk: int = 32_768):
        self.D, self.chunk, self.critic = D, chunk, D.cfg.loss == "wgan"

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.D.critic(tokens, self.chunk) if self.critic else self.D.prob_real(tokens, self.chunk)

    def prefix_windows(self, seqs: torch.Tensor, completions: int = 0) -> Any:
        """Y's shared window maxima (B, T) -> the discriminator's ``PrefixWindows``, with
        token tables where they pay for ``completions`` rows."""
        return self.D.prefix_windows(seqs, completions)

    def prefix_verdicts(self, shared: Any, tokens: torch.Tensor, t: int) -> torch.Tensor:
        """S (M,) of completions ``tokens`` (M, T) of Y[:t], in chunks of whole groups of B."""
        step = max(shared.B, self.chunk // shared.B * shared.B)
        return torch.cat([self.D.prefix_verdicts(shared, tokens[s:s + step], t, self.critic)
                          for s in range(0, tokens.shape[0], step)])


def rescale_groups(d: torch.Tensor, group_size: int) -> torch.Tensor:
    """Scores (M,) min-max rescaled to [0, 1] within consecutive groups of ``group_size``
    rows (one generator batch each); a group of equal scores becomes 0.5."""
    g = d.view(-1, group_size)
    lo, hi = g.min(1, keepdim=True).values, g.max(1, keepdim=True).values
    span = hi - lo
    return torch.where(span > 0, (g - lo) / span.clamp_min(1e-12), torch.full_like(g, 0.5)).view(-1)


def subtract_baseline(q: torch.Tensor) -> torch.Tensor:
    """Variance reduction: Q_t - mean_b Q_t (the batch mean at each time step), (B, T)."""
    return q - q.mean(dim=0, keepdim=True)


def check_rewards(q: torch.Tensor) -> None:
    """A TrainingError if any reward in ``q`` is NaN or infinite."""
    if not torch.isfinite(q).all():
        raise TrainingError("rewards contain NaN or infinite values; training stopped, the last "
                            "good checkpoint is kept")
