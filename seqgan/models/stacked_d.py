"""K discriminators of the same shape as one batched model (SeqGAN's CNN, stacked).

Every parameter of :class:`~seqgan.models.discriminator.Discriminator` gets a leading
member dimension K (``embedding`` (K, V, E), ``bank_weight`` (K, F, W, E), ``bank_bias``
(K, F), highway ``hh_w``/``ht_w`` (K, F, F), ``out_w`` (K, 2, F), ...) and every input
one too: tokens (K, B, T). The filter banks run for all members at once:

- ``conv`` (the CPU default for small members, and for scoring): one grouped ``conv1d``
  per bank, the K members' embeddings as K channel groups, (B, K·E, T) -> (B, K·n, T-k+1);
- ``grouped`` on the CPU (the default for training members whose banks take at least
  :data:`MEMBER_LOOP_MACS` multiply-adds a sequence, such as SeqGAN's 7.6 M): member after
  member, the single model's CPU banks (:class:`~seqgan.models.disc_windows.BankWindows`,
  one matrix product per width and its written-out backward) on slices of the stacked
  weights: near the GEMM rate, where the grouped ``conv1d`` of K large members runs at
  half of it;
- ``fused`` / ``grouped`` on GPUs (the default: fused): the single model's window products
  (:meth:`Discriminator._window_features`) as one ``bmm`` per group of banks,
  (K, B·P, W·E) x (K, W·E, n).

Highway and output layers are batched products (``baddbmm``). The loss of member k is the
single model's (cross entropy + ``l2_reg``·(‖W_out‖² + ‖b_out‖²)/2, or the WGAN critic's)
on its own batch; dropout masks are drawn per member from ``generators[k]`` as
:meth:`Discriminator.dropout_mask` draws them. :func:`d_epoch` is one epoch of
:meth:`DiscriminatorTrainer.train_epochs` for every member, each on its own data and
random stream. :meth:`StackedDiscriminator.unstack` gives ordinary state dicts back.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from seqgan.models.disc_windows import bank_features
from seqgan.models.discriminator import Discriminator
from seqgan.models.stacked import Generators, Weights, embed, linear, member_weights, stack_weights
from seqgan.models.stacked_optim import StackedAdam

D_NAMES = {"embedding": "embedding.weight", "bank_weight": "bank_weight", "bank_bias": "bank_bias",
           "hh_w": "highway_h.weight", "hh_b": "highway_h.bias", "ht_w": "highway_t.weight",
           "ht_b": "highway_t.bias", "out_w": "out.weight", "out_b": "out.bias"}
STACKED_D_IMPLS = ("auto", "conv", "fused", "grouped")
# per-sequence multiply-adds of a member's banks from which "auto" trains members one by
# one on the CPU (bench/bench_cpu.py --part populations: SeqGAN's D, 7.6 M, trains 2.2x
# faster so at K = 4; the quick preset's, 7,680, is faster as one grouped conv1d)
MEMBER_LOOP_MACS = 1_000_000


class StackedDiscriminator(nn.Module):
    """K SeqGAN discriminators of one shape as one model (see the module docstring)."""

    def __init__(self, template: Discriminator, members: Sequence[Weights], impl: str = "auto"):
        super().__init__()
        if impl not in STACKED_D_IMPLS:
            raise ValueError(f"impl {impl!r}; choose one of {STACKED_D_IMPLS}")
        self.cfg, self.k, self.impl = template.cfg, len(members), impl
        self.seq_len, self.max_width = template.seq_len, template.max_width
        self.filter_sizes, self.num_filters = template.filter_sizes, template.num_filters
        self.n_features = template.n_features
        self.groups, self.whole = template.groups, template.whole
        self.width_runs = template.width_runs
        E, T = template.cfg.emb_dim, template.seq_len
        self.bank_macs = sum(n * k * E * (T - k + 1) for k, n in zip(self.filter_sizes, self.num_filters))
        self.register_buffer("bank_mask", template.bank_mask.clone(), persistent=False)  # (F, W, 1)
        self.register_buffer("valid", template.valid.clone(), persistent=False)  # (T, F)
        for name, t in stack_weights(members, D_NAMES).items():
            setattr(self, name, nn.Parameter(t.clone().to(template.bank_bias.device)))

    @classmethod
    def from_discriminators(cls, ds: Sequence[Discriminator], impl: str = "auto") -> "StackedDiscriminator":
        """The stack of ``ds`` (copies of their weights), on their device."""
        return cls(ds[0], [d.state_dict() for d in ds], impl)

    def params(self) -> dict[str, torch.Tensor]:
        """The stacked parameters by name."""
        return {name: getattr(self, name) for name in D_NAMES}

    def member(self, k: int) -> Weights:
        """Member k's state dict (copies), with :class:`Discriminator`'s keys and shapes."""
        return member_weights(self.params(), D_NAMES, k)

    def unstack(self) -> list[Weights]:
        """Every member's state dict."""
        return [self.member(k) for k in range(self.k)]

    @torch.no_grad()
    def load_member(self, k: int, sd: Weights) -> None:
        """Member k's weights from a :class:`Discriminator` state dict."""
        for name, key in D_NAMES.items():
            getattr(self, name)[k].copy_(sd[key])

    # -- forward ---------------------------------------------------------------------------
    def _resolved_impl(self, T: int) -> str:
        impl = self.impl
        if impl == "auto":
            impl = ("fused" if self.bank_bias.is_cuda
                    else "grouped" if self.bank_macs >= MEMBER_LOOP_MACS else "conv")
        return impl if T == self.seq_len else "conv"

    def features(self, tokens: torch.Tensor) -> torch.Tensor:
        """Max-pooled filter responses (K, B, F) of tokens (K, B, T)."""
        e = embed(self.embedding, tokens)  # (K, B, T, E)
        K, B, T, E = e.shape
        impl = self._resolved_impl(T)
        if impl == "grouped" and not e.is_cuda:
            if torch.is_grad_enabled():  # member by member, the single model's CPU banks
                return bank_features(e, self.bank_weight, self.bank_bias, self.width_runs)
            impl = "conv"  # scoring: the grouped conv1d, as the single model scores
        if impl != "conv":
            return self._window_features(e, self.whole if impl == "fused" else self.groups)
        x = e.permute(1, 0, 3, 2).reshape(B, K * E, T)  # member k's channels: [k·E, (k+1)·E)
        out, start = [], 0
        for k, n in zip(self.filter_sizes, self.num_filters):
            w = self.bank_weight[:, start:start + n, :k].permute(0, 1, 3, 2).reshape(K * n, E, k)
            z = F.conv1d(x, w, self.bank_bias[:, start:start + n].reshape(K * n), groups=K)
            out.append(torch.relu(z).amax(dim=2).view(B, K, n))
            start += n
        return torch.cat(out, dim=2).transpose(0, 1)  # (K, B, F)

    def _window_features(self, e: torch.Tensor, groups: list[tuple[int, int, int, int]]) -> torch.Tensor:
        K, B, T, E = e.shape
        padded = F.pad(e, (0, 0, 0, self.max_width - 1))  # (K, B, T+W-1, E)
        out = []
        for s0, s1, kmin, kmax in groups:
            P = T - kmin + 1
            win = padded[:, :, :P + kmax - 1].unfold(2, kmax, 1).transpose(3, 4)  # (K, B, P, kmax, E)
            w = self.bank_weight[:, s0:s1, :kmax] * self.bank_mask[s0:s1, :kmax]  # (K, n, kmax, E)
            z = torch.relu(torch.baddbmm(self.bank_bias[:, s0:s1].unsqueeze(1), win.reshape(K, B * P, kmax * E),
                                         w.reshape(K, s1 - s0, kmax * E).transpose(1, 2)))  # (K, B*P, n)
            out.append((z.view(K, B, P, -1) * self.valid[:P, s0:s1]).amax(dim=2))  # (K, B, n)
        return out[0] if len(out) == 1 else torch.cat(out, dim=2)

    def forward(self, tokens: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (K, B, 2) (index 1: real); ``keep`` (K, B, F): dropout masks
        (:meth:`dropout_masks`), applied while training; none, no dropout."""
        x = self.features(tokens)  # (K, B, F)
        tau = torch.sigmoid(linear(x, self.ht_w, self.ht_b))
        x = tau * torch.relu(linear(x, self.hh_w, self.hh_b)) + (1.0 - tau) * x
        if keep is not None and self.training:
            x = x * keep
        return linear(x, self.out_w, self.out_b)

    def dropout_masks(self, n: int, generators: Generators) -> torch.Tensor | None:
        """Masks (K, n, F): member k's drawn from ``generators[k]`` as the single model's
        :meth:`~Discriminator.dropout_mask` draws one (0 with probability p, else 1/(1-p));
        None when not training or p = 0."""
        p = self.cfg.dropout
        if not self.training or p == 0:
            return None
        keep = torch.empty(self.k, n, self.n_features, device=self.bank_bias.device)
        if p >= 1:
            return keep.zero_()
        for k, g in enumerate(generators):
            keep[k].bernoulli_(1.0 - p, generator=g)
        return keep.div_(1.0 - p)

    def loss(self, tokens: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None = None,
             keep: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(losses (K,), logits (K, B, 2)): member k's :meth:`Discriminator.loss` on
        tokens[k], labels[k] (weights[k]: per-row weights)."""
        logits = self.forward(tokens, keep)
        K, B = labels.shape
        w = torch.ones(K, B, device=logits.device) if weights is None else weights
        if self.cfg.loss == "wgan":
            sign = labels.float() * 2 - 1
            s = (logits[..., 1] - logits[..., 0]).float()
            return -(sign * s * w).sum(1) / w.sum(1).clamp_min(1), logits
        ce = F.cross_entropy(logits.reshape(K * B, 2), labels.reshape(-1), reduction="none").view(K, B)
        ce = ce.mean(1) if weights is None else (ce * w).sum(1) / w.sum(1).clamp_min(1)
        l2 = 0.5 * (self.out_w.square().sum(dim=(1, 2)) + self.out_b.square().sum(1))
        return ce + self.cfg.l2_reg * l2, logits

    @torch.no_grad()
    def verdicts(self, tokens: torch.Tensor, critic: bool = False) -> torch.Tensor:
        """Per member's tokens (K, B, T), in eval mode: softmax(logits)[1], or with
        ``critic`` the score logit_real - logit_fake (:meth:`Discriminator.verdict`); (K, B)."""
        was = self.training
        self.eval()
        try:
            logits = self.forward(tokens).float()
        finally:
            self.train(was)
        return logits[..., 1] - logits[..., 0] if critic else torch.softmax(logits, -1)[..., 1]

    def prob_real(self, tokens: torch.Tensor) -> torch.Tensor:
        """D_k(Y) of each member's tokens (K, B, T): (K, B), in eval mode (a WGAN critic:
        σ of its score)."""
        if self.cfg.loss == "wgan":
            return torch.sigmoid(self.verdicts(tokens, critic=True))
        return self.verdicts(tokens)


def d_epoch(D: StackedDiscriminator, opt: StackedAdam, pos: torch.Tensor, neg: torch.Tensor,
            batch_size: int, generators: Generators) -> dict[str, torch.Tensor]:
    """One epoch of every member on its positives ``pos`` (K, P, T) (label 1) and negatives
    ``neg`` (K, N, T) (label 0), as :meth:`DiscriminatorTrainer.train_epochs` trains one
    discriminator for one epoch: a shuffle (member k's ``randperm`` from ``generators[k]``),
    batches of ``batch_size`` (the last one padded with weight 0), a dropout mask per batch,
    Adam, and for a WGAN critic every weight clipped. Mean loss and accuracy per member (K,)."""
    D.train()
    K, P, T = pos.shape
    dev = D.bank_bias.device
    data = torch.cat([pos, neg], 1).to(dev)  # (K, n, T)
    n = data.shape[1]
    labels = torch.cat([torch.ones(P, dtype=torch.long), torch.zeros(neg.shape[1], dtype=torch.long)]).to(dev)
    nb = -(-n // batch_size)
    pad = nb * batch_size - n
    perms = torch.stack([torch.randperm(n, device=dev, generator=g) for g in generators])  # (K, n)
    x = torch.cat([data.gather(1, perms.unsqueeze(2).expand(K, n, T)), data.new_zeros(K, pad, T)], 1)
    y = torch.cat([labels[perms], labels.new_zeros(K, pad)], 1)
    w = torch.cat([torch.ones(K, n, device=dev), torch.zeros(K, pad, device=dev)], 1)
    loss_sum = torch.zeros(K, device=dev)
    correct = torch.zeros(K, device=dev)
    for i in range(nb):
        s = slice(i * batch_size, (i + 1) * batch_size)
        opt.zero_grad()
        loss, logits = D.loss(x[:, s], y[:, s], w[:, s], D.dropout_masks(batch_size, generators))
        loss.sum().backward()
        opt.step()
        if D.cfg.loss == "wgan":
            with torch.no_grad():
                for p in D.parameters():
                    p.clamp_(-D.cfg.clip, D.cfg.clip)
        loss_sum += loss.detach()
        correct += ((logits.argmax(2) == y[:, s]).float() * w[:, s]).sum(1).detach()
    return {"d_loss": loss_sum / nb, "d_acc": correct / n}
