"""SeqGAN's filter banks as one matrix product per bank over windows (the CPU path), and
discriminator features of prefix completions that share the prefix's windows.

Window p of an embedded sequence e (B, T, E) for a filter of width k is the k·E floats
``e[b, p:p+k]``, contiguous in memory; bank k's responses are ``Z = X Wᵀ + b`` with X the
(B·P, k·E) matrix of windows at the P = T - k + 1 positions and W the bank's (n, k·E)
slice of ``bank_weight`` (F, K, E), read in place. The feature is ``relu(max_p Z[p])``,
the bias added after the max (``max_p (z_p + b) = max_p z_p + b``, rounding included).

:class:`BankWindows` is that forward with a backward written out for max-over-time
pooling: the gradient of a feature reaches only its arg-max window (and only if the
feature is > 0), so dZ is one scatter of the feature gradients, and the backward is two
more matrix products per bank (``dW = dZᵀ X``, ``dX = dZ W``) and the fold of dX onto e.
Multiply-adds per sequence are exactly those of a Conv1d per bank, Σ_k n_k·k·E·(T-k+1)
(7.6 M for SeqGAN's banks at T 20), with no zero-padded filter taps and no masks.

Prefix sharing (:class:`PrefixWindows`): a completion of Y[:t] equals Y at positions < t,
so its windows that end before t (p + k ≤ t) are Y's windows. Per bank, the running
maximum ``S[b, t] = max(0, max_{p ≤ t-k} Z_Y[b, p])`` is computed once from Y; a
completion computes only its windows at p ≥ max(0, t-k+1) and its feature is
``max(S[b, t], max_{new p} Z[p])`` — the same value as scoring it from scratch, for
(SeqGAN's banks, T 20) a third fewer multiply-adds in the banks.

Token tables (:class:`TokenTables`, for scoring many completions on the CPU): a window's
response is Σ_j e(y_{p+j}) · W_j, a sum of one term per tap that depends only on the token
there, so a table per bank of ``E[v] · W_jᵀ`` for every token v and tap j (V·k rows of n
floats) turns the window's k·n·E multiply-adds into k row lookups and k·n adds
(``F.embedding_bag``). Building the tables costs V·E·Σ_k k·n multiply-adds (4.0 G, 250 MB
for SeqGAN's banks at V 5000), about what scoring 500 sequences costs; the rewards of one
batch score 19,456 completions. Sums are taken in another order than the products', so the
features agree with the window products to float rounding.
"""
from __future__ import annotations

import itertools
import weakref
from typing import Callable

import torch
import torch.nn.functional as F

# (row start, row end, width) of each run of consecutive banks of one width
Group = tuple[int, int, int]

def width_groups(widths: tuple[int, ...], counts: tuple[int, ...]) -> list[Group]:
    """Runs of consecutive banks of equal width, as (row start, row end, width)."""
    out: list[Group] = []
    start = 0
    for k, n in zip(widths, counts):
        if out and out[-1][2] == k and out[-1][1] == start:
            out[-1] = (out[-1][0], start + n, k)
        else:
            out.append((start, start + n, k))
        start += n
    return out


def windows(e: torch.Tensor, k: int, start: int = 0) -> torch.Tensor:
    """Windows of width k of e (B, T, E) at positions start..T-k, as a contiguous
    (B·P, k·E) matrix, P = T - k + 1 - start; row b·P + i is ``e[b, start+i : start+i+k]``."""
    B, T, E = e.shape
    P = T - k + 1 - start
    view = e.as_strided((B, P, k * E), (e.stride(0), E, 1), e.storage_offset() + start * E)
    return view.reshape(B * P, k * E)


def bank_matrix(weight: torch.Tensor, s0: int, s1: int, k: int) -> torch.Tensor:
    """Filters s0..s1-1 of width k as an (n, k·E) view of ``bank_weight`` (F, K, E)."""
    return weight[s0:s1, :k].reshape(s1 - s0, -1)


def bank_forward(e: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                 groups: list[Group]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Features (B, F) of e (B, T, E) (contiguous) by ``bank_weight`` (F, K, E) and
    ``bank_bias`` (F,), and per run of banks the arg-max window of each feature (B, n)."""
    B, T, E = e.shape
    feats = e.new_empty(B, weight.shape[0])
    args = []
    for s0, s1, k in groups:
        P, n = T - k + 1, s1 - s0
        z = torch.mm(windows(e, k), bank_matrix(weight, s0, s1, k).t())  # (B·P, n), bias below
        m, arg = z.view(B, P, n).max(dim=1)  # (B, n)
        feats[:, s0:s1] = m.add_(bias[s0:s1]).clamp_min_(0)
        args.append(arg)
    return feats, args


def bank_backward(g: torch.Tensor, e: torch.Tensor, weight: torch.Tensor, feats: torch.Tensor,
                  args: list[torch.Tensor], groups: list[Group], grad_w: torch.Tensor,
                  grad_e: torch.Tensor | None) -> torch.Tensor:
    """Given dL/dfeatures g (B, F): writes dL/d``bank_weight`` into ``grad_w`` (F, K, E,
    zeros) and adds dL/de into ``grad_e`` (B, T, E, or None); returns dL/d``bank_bias`` (F,)."""
    B, T, E = e.shape
    gz = g * (feats > 0)  # (B, F): dL/dz at each feature's arg-max window
    for (s0, s1, k), arg in zip(groups, args):
        P, n = T - k + 1, s1 - s0
        dz = e.new_zeros(B, P, n).scatter_(1, arg.unsqueeze(1), gz[:, None, s0:s1])
        dz = dz.view(B * P, n)
        grad_w[s0:s1, :k] = torch.mm(dz.t(), windows(e, k)).view(n, k, E)
        if grad_e is not None:
            dx = torch.mm(dz, bank_matrix(weight, s0, s1, k)).view(B, P, k, E)
            for j in range(k):  # window p's tap j sits at position p + j
                grad_e[:, j:j + P] += dx[:, :, j]
    return gz.sum(0)


class BankWindows(torch.autograd.Function):
    """Max-pooled ReLU features of every bank (see the module docstring): e (B, T, E),
    ``bank_weight`` (F, K, E), ``bank_bias`` (F,) -> (B, F); or for K stacked members
    e (K, B, T, E), (K, F, W, E), (K, F) -> (K, B, F), member after member, with one
    gradient tensor per stacked input (no per-member slices to zero-fill and add)."""

    @staticmethod
    def forward(ctx, e: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                groups: list[Group]) -> torch.Tensor:
        """Features (B, F) or (K, B, F); saves each feature's arg-max window."""
        ctx.single = e.dim() == 3
        if ctx.single:
            e, weight, bias = e.unsqueeze(0), weight.unsqueeze(0), bias.unsqueeze(0)
        e = e.contiguous()
        outs = [bank_forward(e[k], weight[k], bias[k], groups) for k in range(e.shape[0])]
        feats = torch.stack([f for f, _ in outs])
        ctx.groups = groups
        ctx.save_for_backward(e, weight, feats, *[a for _, args in outs for a in args])
        return feats[0] if ctx.single else feats

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        """Gradients of e, ``bank_weight`` (zero outside each filter's width) and the bias."""
        e, weight, feats, *args = ctx.saved_tensors
        g = g.unsqueeze(0) if ctx.single else g
        grad_w = torch.zeros_like(weight)
        grad_e = torch.zeros_like(e) if ctx.needs_input_grad[0] else None
        n = len(ctx.groups)
        grad_b = torch.stack([
            bank_backward(g[k], e[k], weight[k], feats[k], args[k * n:(k + 1) * n], ctx.groups,
                          grad_w[k], None if grad_e is None else grad_e[k])
            for k in range(e.shape[0])])
        if ctx.single:
            return None if grad_e is None else grad_e[0], grad_w[0], grad_b[0], None
        return grad_e, grad_w, grad_b, None


def bank_features(e: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                  groups: list[Group]) -> torch.Tensor:
    """Features (B, F) of embedded sequences e (B, T, E), or (K, B, F) of K stacked
    members' e (K, B, T, E), by :class:`BankWindows`."""
    return BankWindows.apply(e, weight, bias, groups)


# one freed tables buffer, kept for the next tables of its size: writing 250 MB into
# memory the process already has is about 0.08 s faster than into fresh pages
_SPARE: list[torch.Tensor] = []


def _table_buffer(numel: int, like: torch.Tensor) -> torch.Tensor:
    """A flat buffer of ``numel`` elements like ``like``: the spare one if it fits exactly."""
    for i, buf in enumerate(_SPARE):
        if buf.numel() == numel and buf.dtype == like.dtype and buf.device == like.device:
            return _SPARE.pop(i)
    return like.new_empty(numel)


def _keep_spare(buf: torch.Tensor) -> None:
    _SPARE[:] = [buf]


class TokenTables:
    """Per run of banks (s0, s1, k): a (V·k, n) table whose row v·k + j is the bank's
    response ``E[v] · W[s0:s1, j]ᵀ`` to token v at tap j, from the embedding (V, E) and
    ``bank_weight`` (F, K, E); see the module docstring. Build under ``torch.no_grad()``.
    All tables share one buffer; when they are freed it is kept for the next tables of
    the same size (one spare buffer per process)."""

    def __init__(self, embedding: torch.Tensor, weight: torch.Tensor, banks: list[Group]):
        V, E = embedding.shape
        self.banks = banks
        self.tables = []
        sizes = [V * k * (s1 - s0) for s0, s1, k in banks]
        buf = _table_buffer(sum(sizes), embedding)
        weakref.finalize(self, _keep_spare, buf)
        for (s0, s1, k), start, size in zip(banks, itertools.accumulate([0] + sizes), sizes):
            taps = weight[s0:s1, :k].permute(2, 1, 0).reshape(E, k * (s1 - s0))  # [e, j·n + f]
            table = buf[start:start + size].view(V, k * (s1 - s0))
            self.tables.append(torch.mm(embedding, taps, out=table).view(V * k, s1 - s0))

    def responses(self, i: int, tokens: torch.Tensor, start: int) -> torch.Tensor:
        """(M·P, n): run i's responses, without the bias, to the windows of tokens (M, T')
        at positions start..T'-k, row m·P + p for the window at start + p."""
        k = self.banks[i][2]
        taps = torch.arange(k, device=tokens.device)
        rows = tokens.unfold(1, k, 1)[:, start:] * k + taps  # (M, P, k): y_{p+j}·k + j
        return F.embedding_bag(rows.reshape(-1, k), self.tables[i], mode="sum")


class PrefixWindows:
    """Window maxima of sequences Y (B, T) that every completion of a prefix Y[:t] shares.

    ``banks`` are the (row start, row end, width) runs of the discriminator's filters;
    ``embedding``, ``weight`` (F, K, E) and ``bias`` (F,) its parameters. Windows are
    multiplied as window matrices (:func:`windows`): where few windows are new (long
    prefixes) that is twice as fast on the CPU as ``conv1d``, and as fast elsewhere. Call
    under ``torch.no_grad()``. With ``tables`` (:class:`TokenTables` of the same parameters)
    the completions' windows are looked up instead of multiplied. ``head``: what the
    discriminator maps these features to logits with (a packed copy of its head, see
    :mod:`seqgan.models.packed_head`), or None for its own.
    """

    def __init__(self, seqs: torch.Tensor, embedding: torch.nn.Embedding, weight: torch.Tensor,
                 bias: torch.Tensor, banks: list[Group], tables: TokenTables | None = None,
                 head: Callable[[torch.Tensor], torch.Tensor] | None = None):
        self.embedding, self.weight, self.bias, self.banks = embedding, weight, bias, banks
        self.tables, self.head = tables, head
        self.B, self.T = seqs.shape
        e = embedding(seqs)  # (B, T, E)
        self.running = []  # per bank (B, P, n): max(0, max over windows 0..p)
        for s0, s1, k in banks:
            z = self._responses(e, s0, s1, k, 0).view(self.B, -1, s1 - s0).add_(bias[s0:s1])
            self.running.append(z.clamp_min_(0).cummax(1).values)
        self._shared: tuple[int, torch.Tensor] | None = None

    def _responses(self, e: torch.Tensor, s0: int, s1: int, k: int, start: int) -> torch.Tensor:
        """(M·P, n): bank [s0, s1)'s responses to e's (M, T', E) windows at start.., without
        the bias (a constant per filter: it is added after the max over positions)."""
        return torch.mm(windows(e, k, start), bank_matrix(self.weight, s0, s1, k).t())

    def shared(self, t: int) -> torch.Tensor:
        """(B, F): per feature, the max over Y's windows inside Y[:t] (0 where none)."""
        if self._shared is None or self._shared[0] != t:
            out = self.weight.new_zeros(self.B, self.weight.shape[0])
            for (s0, s1, k), run in zip(self.banks, self.running):
                if t >= k:
                    out[:, s0:s1] = run[:, t - k]
            self._shared = (t, out)
        return self._shared[1]

    def features(self, tokens: torch.Tensor, t: int) -> torch.Tensor:
        """Features (M, F) of completions ``tokens`` (M, T) of the prefixes Y[:t] (0 ≤ t ≤ T),
        row r completing Y's row r mod B (M a multiple of B): max of the shared maxima and
        the windows that reach position t or later."""
        M, T = tokens.shape
        if M % self.B or T != self.T or not 0 <= t <= T:
            raise ValueError(f"completions ({M}, {T}) do not fit prefixes of ({self.B}, {self.T}) at t={t}")
        shared = self.shared(t)  # (B, F)
        if t == T:
            return shared.repeat(M // self.B, 1)
        # a window reaching past t starts at p >= t-k+1; Y[:t]'s tokens before it are not needed
        first = max(0, t - max(k for _, _, k in self.banks) + 1)
        suffix = tokens[:, first:]  # (M, T - first)
        e = self.embedding(suffix) if self.tables is None else None  # (M, T - first, E)
        feats = torch.empty_like(shared).repeat(M // self.B, 1)  # (M, F)
        for i, (s0, s1, k) in enumerate(self.banks):
            start = max(0, t - k + 1) - first
            z = (self._responses(e, s0, s1, k, start) if e is not None
                 else self.tables.responses(i, suffix, start))  # (M·P, n)
            new = z.view(-1, self.B, T - first - k + 1 - start, s1 - s0).amax(2)  # (M/B, B, n)
            feats[:, s0:s1] = torch.maximum(new.add_(self.bias[s0:s1]), shared[:, s0:s1]).view(M, -1)
        return feats
