"""SeqGAN's CNN discriminator D_φ (Yu et al. 2017, §4 "The Discriminative Model").

For a sequence Y (B, T): embed it (E = 64), apply filter banks of widths
``k ∈ {1..10, 15, 20}`` with ``{100, 200, 200, 200, 200, 100, 100, 100, 100, 100, 160, 160}``
filters, ReLU and max-over-time pooling, concatenate (F = 1720 features), one highway
layer ``y = τ·relu(W_h x + b_h) + (1-τ)·x`` with ``τ = σ(W_τ x + b_τ)``, dropout (0.25 while
training) and a 2-way output layer. ``prob_real`` is softmax(logits)[:, 1]; the loss is the
cross entropy plus ``l2_reg · (‖W_out‖² + ‖b_out‖²)/2`` (TensorFlow's ``l2_loss``).

All filters live in one parameter ``bank_weight`` (F, K, E) (K the widest filter; filter f
of width k uses ``bank_weight[f, :k]``, the rest is held at zero by a fixed mask) and
``bank_bias`` (F,). Two implementations read the same parameters:

- ``conv``: one ``conv1d`` per bank over the embedding as channels (cheapest FLOPs; best
  on the CPU).
- ``fused``: every bank in one matrix product. The embedded sequence is padded to
  T + K - 1 and unfolded into windows of width K, multiplied by the masked (F, K·E)
  weight, and positions past a bank's valid length T - k are masked to 0 before the
  max-pool (after ReLU every value is ≥ 0, so a masked 0 never wins over a valid value
  wrongly: the max of valid ReLU outputs is ≥ 0). Few large kernels instead of dozens of
  small ones: what makes a small-batch training step cheap on a GPU.

Banks wider than T are dropped (they would see no window).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from seqgan.config import DiscriminatorConfig


def _trunc_normal_(t: torch.Tensor, std: float) -> None:
    nn.init.trunc_normal_(t, std=std, a=-2 * std, b=2 * std)


class Discriminator(nn.Module):
    def __init__(self, cfg: DiscriminatorConfig, vocab_size: int, seq_len: int):
        super().__init__()
        if len(cfg.filter_sizes) != len(cfg.num_filters):
            raise ValueError("filter_sizes and num_filters differ in length")
        banks = [(k, n) for k, n in zip(cfg.filter_sizes, cfg.num_filters) if k <= seq_len]
        if not banks:
            raise ValueError(f"no filter size fits sequences of length {seq_len}")
        self.cfg, self.seq_len = cfg, seq_len
        self.filter_sizes = tuple(k for k, _ in banks)
        self.num_filters = tuple(n for _, n in banks)
        self.n_features = sum(self.num_filters)
        K = max(self.filter_sizes)
        self.embedding = nn.Embedding(vocab_size, cfg.emb_dim)
        self.bank_weight = nn.Parameter(torch.empty(self.n_features, K, cfg.emb_dim))  # (F, K, E)
        self.bank_bias = nn.Parameter(torch.empty(self.n_features))  # (F,)
        widths = torch.cat([torch.full((n,), k) for k, n in banks])  # (F,)
        self.register_buffer("bank_mask", (torch.arange(K) < widths.unsqueeze(1)).float().unsqueeze(2),
                             persistent=False)  # (F, K, 1)
        self.highway_h = nn.Linear(self.n_features, self.n_features)
        self.highway_t = nn.Linear(self.n_features, self.n_features)
        self.dropout = nn.Dropout(cfg.dropout)
        self.out = nn.Linear(self.n_features, 2)
        with torch.no_grad():  # SeqGAN's initialisation
            nn.init.uniform_(self.embedding.weight, -1.0, 1.0)
            _trunc_normal_(self.bank_weight, 0.1)
            self.bank_weight.mul_(self.bank_mask)
            self.bank_bias.fill_(0.1)
            _trunc_normal_(self.out.weight, 0.1)
            self.out.bias.fill_(0.1)
        # (T, F) mask of valid window starts per feature: position p valid iff p <= T - k
        valid = torch.cat([(torch.arange(seq_len) <= seq_len - k).unsqueeze(1).expand(seq_len, n)
                           for k, n in banks], dim=1)
        self.register_buffer("valid", valid.float(), persistent=False)
        self.max_width = K
        self.impl = cfg.impl

    def _use_fused(self) -> bool:
        if self.impl == "auto":
            return self.embedding.weight.is_cuda
        return self.impl == "fused"

    def banks(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per bank: Conv1d weight (n, E, k) and bias (n,), views of the shared parameter."""
        out, start = [], 0
        for k, n in zip(self.filter_sizes, self.num_filters):
            w = self.bank_weight[start:start + n, :k].permute(0, 2, 1)  # (n, E, k)
            out.append((w, self.bank_bias[start:start + n]))
            start += n
        return out

    def features(self, tokens: torch.Tensor) -> torch.Tensor:
        """Max-pooled filter responses (B, F)."""
        e = self.embedding(tokens)  # (B, T, E)
        B, T, E = e.shape
        if self._use_fused():
            K = self.max_width
            padded = F.pad(e, (0, 0, 0, K - 1))  # (B, T+K-1, E)
            windows = padded.unfold(1, K, 1).transpose(2, 3).reshape(B, T, K * E)  # (B, T, K*E)
            w = (self.bank_weight * self.bank_mask).view(self.n_features, K * E)  # (F, K*E)
            z = torch.relu(torch.addmm(self.bank_bias, windows.reshape(B * T, K * E), w.t()))  # (B*T, F)
            return (z.view(B, T, -1) * self.valid[:T]).amax(dim=1)  # (B, F)
        x = e.transpose(1, 2)  # (B, E, T)
        return torch.cat([torch.relu(F.conv1d(x, w, b)).amax(dim=2) for w, b in self.banks()], dim=1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits (B, 2): index 1 is 'real'."""
        x = self.features(tokens)  # (B, F)
        tau = torch.sigmoid(self.highway_t(x))
        x = tau * torch.relu(self.highway_h(x)) + (1.0 - tau) * x
        return self.out(self.dropout(x))

    @torch.no_grad()
    def prob_real(self, tokens: torch.Tensor, chunk: int = 32_768) -> torch.Tensor:
        """D(Y): probability that each sequence is real, (B,), in eval mode, in chunks."""
        was_training = self.training
        self.eval()
        try:
            return torch.cat([torch.softmax(self.forward(tokens[s:s + chunk]).float(), 1)[:, 1]
                              for s in range(0, tokens.shape[0], chunk)])
        finally:
            self.train(was_training)

    def loss(self, tokens: torch.Tensor, labels: torch.Tensor,
             weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, logits): weighted mean cross entropy + L2 on the output layer."""
        logits = self.forward(tokens)
        ce = F.cross_entropy(logits, labels, reduction="none")  # (B,)
        ce = ce.mean() if weights is None else (ce * weights).sum() / weights.sum().clamp_min(1)
        l2 = 0.5 * (self.out.weight.square().sum() + self.out.bias.square().sum())
        return ce + self.cfg.l2_reg * l2, logits
