"""Optimisation of stacked members (:mod:`seqgan.models.stacked`): gradient clipping and
Adam per member, each member's update the one its single model would get.

Large members go one at a time on the CPU (:data:`MEMBER_LOOP_FLOATS`): each member's
slice of a parameter then stays in the cache through Adam's passes, as it would for the
single model; the elementwise operations are the same either way.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import torch

# on the CPU, StackedAdam and stacked linear layers go member by member from this many
# floats a member (1 MB: SeqGAN's highway, not its generator's 160,000-weight output layer)
MEMBER_LOOP_FLOATS = 2**18


def clip_grad_norm_per_member(params: Iterable[torch.Tensor], max_norm: float) -> torch.Tensor:
    """``torch.nn.utils.clip_grad_norm_`` for each member on its own: member k's gradients
    (slice k of every parameter) scaled by min(1, max_norm / (‖g_k‖₂ + 1e-6)); the norms (K,).

    One global norm over the stacked tensors would couple the members."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(0)
    norms = torch.stack([torch.linalg.vector_norm(g.flatten(1), 2, dim=1) for g in grads], 1)  # (K, P)
    total = torch.linalg.vector_norm(norms, 2, dim=1)  # (K,)
    coef = (max_norm / (total + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(coef.view(-1, *([1] * (g.dim() - 1))))
    return total


class StackedAdam:
    """Adam (Kingma and Ba 2015) over stacked parameters (K, ...), each member with its own
    learning rate, step count and moments: for member k at its step t_k,

        m ← β₁m + (1-β₁)g      v ← β₂v + (1-β₂)g²
        θ ← θ - (lr_k / (1-β₁^t_k)) · m / (√v / √(1-β₂^t_k) + ε)

    PyTorch's single-tensor Adam (no weight decay, no amsgrad), the same operations in the
    same order, so a member's update is the one ``torch.optim.Adam`` makes for it alone.
    :meth:`reset` gives one member fresh moments (a newly adopted model); :meth:`set_lr`
    changes one member's rate (a mutation)."""

    def __init__(self, params: Iterable[torch.Tensor], lr: float | Sequence[float],
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.params = [p for p in params]
        K = self.params[0].shape[0]
        self.lr = [float(lr)] * K if isinstance(lr, (int, float)) else [float(x) for x in lr]
        if len(self.lr) != K:
            raise ValueError(f"{len(self.lr)} learning rates for {K} members")
        self.betas, self.eps = betas, eps
        self.steps = [0] * K  # per member
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self) -> None:
        """Drop every parameter's gradient (``set_to_none``)."""
        for p in self.params:
            p.grad = None

    def set_lr(self, k: int, lr: float) -> None:
        """Member k's learning rate."""
        self.lr[k] = float(lr)

    @torch.no_grad()
    def reset(self, k: int, lr: float | None = None) -> None:
        """Fresh Adam state for member k (moments 0, step 0), optionally a new rate."""
        self.steps[k] = 0
        for m, v in zip(self.exp_avg, self.exp_avg_sq):
            m[k].zero_()
            v[k].zero_()
        if lr is not None:
            self.lr[k] = float(lr)

    @torch.no_grad()
    def step(self) -> None:
        """One Adam step of every member from the parameters' gradients."""
        b1, b2 = self.betas
        self.steps = [t + 1 for t in self.steps]
        # per member, python floats as torch computes them, then the parameters' dtype
        sizes = [-(lr / (1 - b1 ** t)) for lr, t in zip(self.lr, self.steps)]
        corr = [(1 - b2 ** t) ** 0.5 for t in self.steps]
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq):
            if p.grad is None:
                continue
            shape = (len(sizes), *([1] * (p.dim() - 1)))
            size = torch.tensor(sizes, dtype=p.dtype, device=p.device).view(shape)
            c = torch.tensor(corr, dtype=p.dtype, device=p.device).view(shape)
            # on the CPU large members one at a time (each slice's passes stay in the
            # cache), else all at once; the same elementwise operations either way
            parts = (range(len(sizes)) if not p.is_cuda and p[0].numel() >= MEMBER_LOOP_FLOATS
                     else [slice(None)])
            for k in parts:
                self._update(p[k], p.grad[k], m[k], v[k], size[k], c[k], b1, b2)

    def _update(self, p, g, m, v, size, c, b1, b2) -> None:
        m.lerp_(g, 1 - b1)
        v.mul_(b2).addcmul_(g, g, value=1 - b2)
        denom = v.sqrt().div_(c).add_(self.eps)
        p.addcdiv_(m * size, denom)  # torch: p.addcdiv_(m, denom, value=-size) = p + (-size·m)/denom

    def member_state(self, k: int, names: Sequence[str]) -> dict:
        """Member k's state as ``torch.optim.Adam.state_dict()`` of a model whose parameters
        are ``names`` in this order (one group, this member's rate)."""
        state = {i: {"step": torch.tensor(float(self.steps[k])), "exp_avg": m[k].clone(),
                     "exp_avg_sq": v[k].clone()}
                 for i, (m, v) in enumerate(zip(self.exp_avg, self.exp_avg_sq))} if self.steps[k] else {}
        group = {"lr": self.lr[k], "betas": self.betas, "eps": self.eps, "weight_decay": 0,
                 "amsgrad": False, "maximize": False, "foreach": None, "capturable": False,
                 "differentiable": False, "fused": None, "decoupled_weight_decay": False,
                 "params": list(range(len(names)))}
        return {"state": state, "param_groups": [group]}

    @torch.no_grad()
    def load_member_state(self, k: int, opt: torch.optim.Optimizer,
                          params: Sequence[torch.Tensor] | None = None) -> None:
        """Member k's moments, step and rate from a single model's ``torch.optim.Adam``;
        ``params``: that model's parameters in this optimizer's (stacked) order, by default
        ``opt``'s own order (which for a :class:`Discriminator` is not the stacked one)."""
        params = [p for g in opt.param_groups for p in g["params"]] if params is None else list(params)
        self.lr[k] = float(opt.param_groups[0]["lr"])
        steps = set()
        for i, p in enumerate(params):
            st = opt.state.get(p, {})
            if st:
                self.exp_avg[i][k].copy_(st["exp_avg"])
                self.exp_avg_sq[i][k].copy_(st["exp_avg_sq"])
                steps.add(int(st["step"]))
            else:
                self.exp_avg[i][k].zero_()
                self.exp_avg_sq[i][k].zero_()
        self.steps[k] = max(steps) if steps else 0
