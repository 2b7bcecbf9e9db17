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

- ``conv``: one ``conv1d`` per bank over the embedding as channels (as few FLOPs as
  ``grouped`` on the CPU, in oneDNN's kernels).
- ``fused``: every bank in one matrix product. The embedded sequence is padded to
  T + K - 1 and unfolded into windows of width K, multiplied by the masked (F, K·E)
  weight, and positions past a bank's valid length T - k are masked to 0 before the
  max-pool (after ReLU every value is ≥ 0, so a masked 0 never wins over a valid value
  wrongly: the max of valid ReLU outputs is ≥ 0). Few large kernels instead of dozens of
  small ones: what makes a small-batch training step cheap on a GPU.
- ``grouped``: the same over a few groups of consecutive banks. On GPUs SeqGAN's split is
  {1..5}, {6..10}, {15, 20}: a group of widths k_min..k_max uses windows of k_max at
  the T - k_min + 1 positions some bank of it can use, so zero padding and never-valid
  positions cost far fewer FLOPs (SeqGAN's banks, T 20: 13 M multiply-adds per sequence
  instead of 44 M) for two more matrix products; the groups come from
  :func:`group_banks`. On the CPU, where one more matrix product costs next to nothing,
  every width is its own group (7.6 M multiply-adds, those of a Conv1d per bank) and
  the max-pool's backward is written out (:mod:`seqgan.models.disc_windows`): the
  fastest CPU training step, so ``auto`` picks it there; without gradients (scoring) it
  runs the ``conv`` path, which oneDNN makes the fastest there.

Banks wider than T are dropped (they would see no window).
"""
from __future__ import annotations

import itertools
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from dataclasses import dataclass

from seqgan.errors import UserError
from seqgan.knobs import MAX_LR, knob
from seqgan.models.disc_windows import PrefixWindows, TokenTables, bank_features, width_groups
from seqgan.models.packed_head import packed_head

SEQGAN_FILTER_SIZES = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20)
SEQGAN_NUM_FILTERS = (100, 200, 200, 200, 200, 100, 100, 100, 100, 100, 160, 160)
DISCRIMINATOR_IMPLS = ("auto", "grouped", "fused", "conv")
# the largest token tables built for scoring rollouts (floats; 1 GiB): SeqGAN's banks at
# V 5000 take 62.5 M (250 MB), a 20,000-word vocabulary 250 M
MAX_TABLE_FLOATS = 2**28
# token tables pay once completions · T · E reach this many times V (bench/bench_cpu.py:
# SeqGAN's D at V 5000, E 64 breaks even near 4,800 completions of T 20; building the
# 250 MB of tables takes about 0.5 s there, mostly writing fresh memory)
TABLES_PAY_AT = 1200


@dataclass
class DiscriminatorConfig:
    """SeqGAN's CNN discriminator: filter banks, one highway layer, dropout, L2 output."""

    emb_dim: int = knob(64, "Embedding size.", lo=1)
    filter_sizes: tuple[int, ...] = knob(SEQGAN_FILTER_SIZES, "Width of each filter bank.")
    num_filters: tuple[int, ...] = knob(SEQGAN_NUM_FILTERS, "Filters in each bank.")
    dropout: float = knob(0.25, "Dropout before the output layer.", lo=0.0, hi=1.0)
    l2_reg: float = knob(0.2, "L2 weight on the output layer.", lo=0.0)
    lr: float = knob(1e-4, "Adam learning rate.", lo=0.0, lo_open=True, hi=MAX_LR)
    batch_size: int = knob(64, "Discriminator batch; larger is faster but departs from SeqGAN.",
                           lo=1, command="train", flag="d-batch-size")
    impl: str = knob("auto", "How D's filter banks are computed: auto (fused on GPUs, grouped on "
                     "CPUs), fused (one matmul), grouped (a few matmuls, fewer FLOPs), conv "
                     "(Conv1d per bank). Same weights and results either way.",
                     choices=DISCRIMINATOR_IMPLS, command="train", flag="d-impl")
    loss: str = knob("bce", "Discriminator loss: bce (SeqGAN's classifier) or wgan (a Wasserstein "
                     "critic, score = logit_real - logit_fake, weights clipped to [-clip, clip], reward "
                     "= the critic's score min-max rescaled per batch).", choices=("bce", "wgan"),
                     command=("train", "coevolve"), flag="d-loss")
    clip: float = knob(0.01, "WGAN: the critic's weight clip c.", lo=0.0, lo_open=True)
    cuda_graph: bool = knob(True, "Capture the whole training step in a CUDA graph on GPUs.")
    compile: bool = knob(False, "On GPUs, torch.compile D's training step before capturing it "
                         "(one-time compile of about a minute).", command="train",
                         flag="d-compile", negatable=True)

    def _check(self, where: str) -> None:
        if (len(self.filter_sizes) != len(self.num_filters) or not self.filter_sizes
                or min(self.filter_sizes) < 1 or min(self.num_filters) < 1):
            raise UserError(f"{where}: filter_sizes and num_filters must be equally long lists of "
                            f"positive integers")


# Exchange rate between one more group (three more matrix products per training step:
# forward and two backward) and multiply-adds saved, per sequence. A rough figure for
# batch 64 on an H100 (a GEMM launch of a few µs against ~100 TFLOP/s of TF32 work).
GROUP_OVERHEAD_MACS = 4_000_000


def group_banks(widths: tuple[int, ...], counts: tuple[int, ...], seq_len: int, emb_dim: int,
                overhead: float = GROUP_OVERHEAD_MACS) -> list[tuple[int, int]]:
    """Split banks (in their given order) into runs [i, j) that minimise the cost model.

    cost = Σ_groups (overhead + E · k_max · (T - k_min + 1) · Σ_{banks in group} n_b):
    every bank of a group multiplies windows of the group's widest filter at every
    position valid for its narrowest one. Exact dynamic programme over contiguous runs.
    """
    m = len(widths)
    best = [0.0] + [float("inf")] * m  # best[j]: cheapest split of banks[:j]
    cut = [0] * (m + 1)
    for j in range(1, m + 1):
        for i in range(j):
            ks = widths[i:j]
            c = best[i] + overhead + emb_dim * max(ks) * (seq_len - min(ks) + 1) * sum(counts[i:j])
            if c < best[j]:
                best[j], cut[j] = c, i
    runs, j = [], m
    while j > 0:
        runs.append((cut[j], j))
        j = cut[j]
    return runs[::-1]


def _trunc_normal_(t: torch.Tensor, std: float) -> None:
    nn.init.trunc_normal_(t, std=std, a=-2 * std, b=2 * std)


class Discriminator(nn.Module):
    """SeqGAN's CNN discriminator D_φ of sequences (B, T); see the module docstring."""

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
        # per group of banks (row start, row end, k_min, k_max): "grouped" uses the runs of
        # group_banks, "fused" one group of all banks
        starts = [0, *itertools.accumulate(self.num_filters)]

        def group(i: int, j: int) -> tuple[int, int, int, int]:
            """``(row start, row end, k_min, k_max)`` in ``bank_weight`` of the banks [i, j)."""
            ks = self.filter_sizes[i:j]
            return starts[i], starts[j], min(ks), max(ks)

        runs = group_banks(self.filter_sizes, self.num_filters, seq_len, cfg.emb_dim)
        self.groups = [group(i, j) for i, j in runs]
        self.whole = [group(0, len(banks))]
        self.width_runs = width_groups(self.filter_sizes, self.num_filters)  # the CPU's groups

    def _resolved_impl(self, T: int) -> str:
        impl = self.impl
        if impl == "auto":
            impl = "fused" if self.embedding.weight.is_cuda else "grouped"
        return impl if T == self.seq_len else "conv"  # masks are built for seq_len

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
        impl = self._resolved_impl(T)
        if impl == "grouped" and not e.is_cuda and not torch.compiler.is_compiling():
            if torch.is_grad_enabled() and (e.requires_grad or self.bank_weight.requires_grad):
                return bank_features(e, self.bank_weight, self.bank_bias, self.width_runs)
            impl = "conv"  # without gradients oneDNN's direct convolutions score fastest
        if impl in ("fused", "grouped"):
            return self._window_features(e, self.whole if impl == "fused" else self.groups)
        x = e.transpose(1, 2)  # (B, E, T)
        return torch.cat([torch.relu(F.conv1d(x, w, b)).amax(dim=2) for w, b in self.banks()], dim=1)

    def _window_features(self, e: torch.Tensor, groups: list[tuple[int, int, int, int]]) -> torch.Tensor:
        """Max-pooled features (B, F) from embeddings (B, T, E), one matmul per group.

        A group of banks [s0, s1) with widths k_min..k_max multiplies windows of k_max at
        the P = T - k_min + 1 positions where some bank of it has a window by its masked
        (n, k_max·E) weights; positions past each bank's own valid length are zeroed
        before the max-pool.
        """
        B, T, E = e.shape
        padded = F.pad(e, (0, 0, 0, self.max_width - 1))  # (B, T+K-1, E)
        out = []
        for s0, s1, kmin, kmax in groups:
            P = T - kmin + 1
            win = padded[:, :P + kmax - 1].unfold(1, kmax, 1).transpose(2, 3)  # (B, P, kmax, E)
            w = self.bank_weight[s0:s1, :kmax] * self.bank_mask[s0:s1, :kmax]  # (n, kmax, E)
            z = torch.relu(torch.addmm(self.bank_bias[s0:s1], win.reshape(B * P, kmax * E),
                                       w.reshape(s1 - s0, kmax * E).t()))  # (B*P, n)
            out.append((z.view(B, P, -1) * self.valid[:P, s0:s1]).amax(dim=1))  # (B, n)
        return out[0] if len(out) == 1 else torch.cat(out, dim=1)

    def forward(self, tokens: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, 2): index 1 is 'real'.

        ``keep`` (B, F), optional: a dropout mask drawn by the caller (0 or 1/(1-p), see
        :meth:`dropout_mask`), used in place of ``nn.Dropout``'s own draw while training. The
        trainer draws it outside the compiled part of its step, so compiled code holds no
        random number generation of its own.
        """
        return self.head(self.features(tokens), keep)

    def head(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, 2) from max-pooled features x (B, F): highway, dropout (or the given
        ``keep`` mask while training, see :meth:`forward`), output layer."""
        tau = torch.sigmoid(self.highway_t(x))
        x = tau * torch.relu(self.highway_h(x)) + (1.0 - tau) * x
        if keep is not None and self.training:
            return self.out(x * keep)
        return self.out(self.dropout(x))

    def dropout_mask(self, n: int) -> torch.Tensor | None:
        """A dropout mask (n, F) as ``nn.Dropout`` draws it: 0 with probability p, else
        1/(1-p); None when not training or p = 0."""
        p = self.cfg.dropout
        if not self.training or p == 0:
            return None
        keep = torch.empty(n, self.n_features, device=self.bank_bias.device)
        if p >= 1:
            return keep.zero_()
        return keep.bernoulli_(1.0 - p).div_(1.0 - p)

    @staticmethod
    def verdict(logits: torch.Tensor, critic: bool = False) -> torch.Tensor:
        """Per row of logits (M, 2): the probability of "real" softmax(l)[1], or for a
        critic its score l_1 - l_0; (M,) float32."""
        logits = logits.float()
        return logits[:, 1] - logits[:, 0] if critic else torch.softmax(logits, 1)[:, 1]

    @contextmanager
    def _evaluating(self):
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            self.train(was_training)

    def _verdicts(self, tokens: torch.Tensor, chunk: int, critic: bool) -> torch.Tensor:
        with self._evaluating():
            return torch.cat([self.verdict(self.forward(tokens[s:s + chunk]), critic)
                              for s in range(0, tokens.shape[0], chunk)])

    def prob_real(self, tokens: torch.Tensor, chunk: int = 32_768) -> torch.Tensor:
        """D(Y): probability that each sequence is real, (B,), in eval mode, in chunks: the
        softmax of the two logits (for a WGAN critic σ(s(Y)), only a monotone view of its
        score, as fitness needs)."""
        if self.cfg.loss == "wgan":
            return torch.sigmoid(self.critic(tokens, chunk))
        return self._verdicts(tokens, chunk, critic=False)

    def critic(self, tokens: torch.Tensor, chunk: int = 32_768) -> torch.Tensor:
        """The score s(Y) = logit_real - logit_fake, (B,), in eval mode, in chunks."""
        return self._verdicts(tokens, chunk, critic=True)

    def prefix_windows(self, seqs: torch.Tensor, completions: int = 0,
                       tables: bool | None = None) -> PrefixWindows:
        """Y's (B, T) window maxima that completions of its prefixes share (see
        :meth:`prefix_verdicts`). ``tables``: look the completions' windows up in token
        tables (:class:`~seqgan.models.disc_windows.TokenTables`) built now from D's
        current weights; None decides by :meth:`tables_pay` for ``completions`` rows.
        Where tables pay, the head is packed too (:func:`~seqgan.models.packed_head.packed_head`,
        from the current weights)."""
        with self._evaluating():
            if tables is None:
                tables = self.tables_pay(completions)
            head = packed_head(self.highway_t, self.highway_h, self.out) if tables else None
            return PrefixWindows(seqs, self.embedding, self.bank_weight, self.bank_bias,
                                 self.width_runs, self._token_tables() if tables else None, head)

    def tables_pay(self, completions: int) -> bool:
        """Whether token tables pay for scoring ``completions`` sequences: on the CPU (on
        GPUs the window products run at full speed), when completions · T · E ≥
        :data:`TABLES_PAY_AT` · V (a table row per token and tap is built once; each
        window looked up saves E multiply-adds per tap and filter) and the tables take at
        most :data:`MAX_TABLE_FLOATS` floats."""
        V = self.embedding.num_embeddings
        floats = V * sum(k * n for k, n in zip(self.filter_sizes, self.num_filters))
        return (not self.embedding.weight.is_cuda and floats <= MAX_TABLE_FLOATS
                and completions * self.seq_len * self.cfg.emb_dim >= TABLES_PAY_AT * V)

    def _token_tables(self) -> TokenTables:
        return TokenTables(self.embedding.weight, self.bank_weight, self.width_runs)

    def prefix_verdicts(self, shared: PrefixWindows, tokens: torch.Tensor, t: int,
                        critic: bool = False) -> torch.Tensor:
        """:meth:`verdict` (M,) in eval mode of completions ``tokens`` (M, T) of the prefixes
        Y[:t] of ``shared``'s Y (row r completes Y's row r mod B): equal, up to float
        rounding, to scoring ``tokens`` from scratch, with the filter windows inside Y[:t]
        taken from Y (:class:`~seqgan.models.disc_windows.PrefixWindows`)."""
        with self._evaluating():
            return self.verdict((shared.head or self.head)(shared.features(tokens, t)), critic)

    def loss(self, tokens: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None = None,
             keep: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, logits): weighted mean cross entropy + L2 on the output layer; for a WGAN
        critic (``loss="wgan"``) the weighted mean of -(2y - 1)·s(Y), which is
        (mean s(fake) - mean s(real)) / 2 on a balanced batch (Arjovsky et al. 2017)."""
        logits = self.forward(tokens, keep)
        if self.cfg.loss == "wgan":
            sign = labels.float() * 2 - 1
            s = (logits[:, 1] - logits[:, 0]).float()
            w = torch.ones_like(s) if weights is None else weights
            return -(sign * s * w).sum() / w.sum().clamp_min(1), logits
        ce = F.cross_entropy(logits, labels, reduction="none")  # (B,)
        ce = ce.mean() if weights is None else (ce * weights).sum() / weights.sum().clamp_min(1)
        l2 = 0.5 * (self.out.weight.square().sum() + self.out.bias.square().sum())
        return ce + self.cfg.l2_reg * l2, logits
