"""SeqGAN's CNN discriminator D_φ (Yu et al. 2017, §4 "The Discriminative Model").

For a sequence Y (B, T): embed it (E = 64), apply filter banks of widths
``k ∈ {1..10, 15, 20}`` with ``{100, 200, 200, 200, 200, 100, 100, 100, 100, 100, 160, 160}``
filters, ReLU and max-over-time pooling, concatenate (F = 1720 features), one highway
layer ``y = τ·relu(W_h x + b_h) + (1-τ)·x`` with ``τ = σ(W_τ x + b_τ)``, dropout (0.25 while
training) and a 2-way output layer. ``prob_real`` is softmax(logits)[:, 1]; the loss is the
cross entropy plus ``l2_reg · (‖W_out‖² + ‖b_out‖²)/2`` (TensorFlow's ``l2_loss``).

Two implementations share the same parameters (one ``Conv1d`` weight per bank):

- ``conv``: one ``Conv1d(E, n_k, k)`` per bank over the embedding as channels (cheapest
  FLOPs; best on the CPU).
- ``fused``: every bank in one matrix product. The embedded sequence is padded to
  T + K - 1 and unfolded into windows of the widest filter K, the weights are zero-padded
  to (F, E·K), and positions past a bank's valid length T - k are masked to 0 before the
  max-pool (after ReLU every value is ≥ 0, so a masked 0 never wins over a valid value
  wrongly: the max of valid ReLU outputs is ≥ 0). Few large kernels instead of 24 small
  ones: what makes a small-batch training step cheap on a GPU.

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
        self.embedding = nn.Embedding(vocab_size, cfg.emb_dim)
        self.convs = nn.ModuleList(nn.Conv1d(cfg.emb_dim, n, k) for k, n in banks)
        self.highway_h = nn.Linear(self.n_features, self.n_features)
        self.highway_t = nn.Linear(self.n_features, self.n_features)
        self.dropout = nn.Dropout(cfg.dropout)
        self.out = nn.Linear(self.n_features, 2)
        with torch.no_grad():  # SeqGAN's initialisation
            nn.init.uniform_(self.embedding.weight, -1.0, 1.0)
            for conv in self.convs:
                _trunc_normal_(conv.weight, 0.1)
                conv.bias.fill_(0.1)
            _trunc_normal_(self.out.weight, 0.1)
            self.out.bias.fill_(0.1)
        # (T, F) mask of valid window starts per feature: position p valid iff p <= T - k
        K = max(self.filter_sizes)
        valid = torch.cat([(torch.arange(seq_len) <= seq_len - k).unsqueeze(1).expand(seq_len, n)
                           for k, n in banks], dim=1)
        self.register_buffer("valid", valid.float(), persistent=False)
        self.max_width = K
        self.impl = cfg.impl

    def _use_fused(self) -> bool:
        if self.impl == "auto":
            return self.embedding.weight.is_cuda
        return self.impl == "fused"

    def fused_weight(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All banks as one (F, K·E) matrix (window-major order) and bias (F,)."""
        K = self.max_width
        w = torch.cat([F.pad(c.weight, (0, K - c.weight.shape[2])) for c in self.convs])  # (F, E, K)
        w = w.transpose(1, 2).reshape(self.n_features, -1)  # (F, K*E): index k*E + e
        return w, torch.cat([c.bias for c in self.convs])

    def features(self, tokens: torch.Tensor) -> torch.Tensor:
        """Max-pooled filter responses (B, F)."""
        e = self.embedding(tokens)  # (B, T, E)
        B, T, E = e.shape
        if self._use_fused():
            K = self.max_width
            padded = F.pad(e, (0, 0, 0, K - 1))  # (B, T+K-1, E)
            windows = padded.unfold(1, K, 1).transpose(2, 3).reshape(B, T, K * E)  # (B, T, K*E)
            w, b = self.fused_weight()
            z = torch.relu(torch.addmm(b, windows.reshape(B * T, K * E), w.t()))  # (B*T, F)
            return (z.view(B, T, -1) * self.valid[:T]).amax(dim=1)  # (B, F)
        x = e.transpose(1, 2)  # (B, E, T)
        return torch.cat([torch.relu(conv(x)).amax(dim=2) for conv in self.convs], dim=1)

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
