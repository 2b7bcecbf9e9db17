"""Generator losses as rewards (the Mustangs set, adapted to REINFORCE).

GAN generator losses differ in how they turn the discriminator's verdict ``D(Y)`` (the
probability that Y is real, in (0, 1)) into the quantity the generator maximises. Under
REINFORCE that quantity is the reward of a whole sequence, which the Monte Carlo rollout
spreads over its tokens; each combines with an ORGAN objective as
``R = λ·f(D(Y)) + (1-λ)·O(Y)·w(Y)``:

=============  =======================  ============================================
``seqgan``     f(d) = d                 SeqGAN (Yu et al. 2017): the probability itself
``heuristic``  f(d) = log d             the non-saturating loss (Goodfellow et al. 2014)
``bce``        f(d) = -log(1 - d)       minimax: minimising log(1 - D(G(z)))
``mse``        f(d) = -(d - 1)²         least squares (LSGAN, Mao et al. 2017)
=============  =======================  ============================================

``d`` is clamped to [1e-6, 1 - 1e-6] before a log. ``random`` (Mustangs) draws one of the
four for every generator minibatch, from the caller's random stream (:func:`draw`).
"""
from __future__ import annotations

from typing import Callable

import torch

from seqgan.errors import UserError

EPS = 1e-6
Transform = Callable[[torch.Tensor], torch.Tensor]

G_LOSSES: dict[str, Transform] = {
    "seqgan": lambda d: d,
    "heuristic": lambda d: torch.log(d.clamp(EPS, 1 - EPS)),
    "bce": lambda d: -torch.log1p(-d.clamp(EPS, 1 - EPS)),
    "mse": lambda d: -(d - 1.0).square(),
}
CHOICES = (*G_LOSSES, "random")


def get_g_loss(name: str) -> Transform:
    """The reward transform f of a generator loss (see the module docstring)."""
    try:
        return G_LOSSES[name]
    except KeyError:
        raise UserError(f"unknown --g-loss {name!r}; choose one of: {', '.join(CHOICES)}") from None


def draw(name: str, rng: torch.Generator | None = None) -> str:
    """``name``, or for ``random`` one of the losses drawn uniformly from ``rng``."""
    if name != "random":
        get_g_loss(name)
        return name
    names = list(G_LOSSES)
    return names[int(torch.randint(len(names), (1,), generator=rng))]
