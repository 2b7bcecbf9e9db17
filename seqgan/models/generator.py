"""LSTM generator G_θ (SeqGAN, Yu et al. 2017, §4 "The Generative Model for Sequences").

``forward`` is teacher-forced through the fused ``nn.LSTM``: for inputs
``x = (s, y_1, …, y_{T-1})`` (``s`` the start token) it returns logits (B, T, V) of
``G(y_t | y_<t)``. Sampling and the Monte Carlo rollout step the *same* weights one time
step at a time through :meth:`step` (PyTorch's gate order i, f, g, o)::

    z = E[x] W_ihᵀ + h W_hhᵀ + b      i, f, g, o = split(z)
    c' = σ(f)·c + σ(i)·tanh(g)        h' = σ(o)·tanh(c')        logits = h' W_outᵀ + b_out

Every parameter is initialised N(0, 0.1) as in SeqGAN (the recurrent bias ``b_hh`` at
zero, so the summed LSTM bias is N(0, 0.1) too).
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from dataclasses import dataclass

from seqgan.errors import UserError
from seqgan.knobs import knob


@dataclass
class GeneratorConfig:
    """LSTM generator G_θ (SeqGAN §4): embedding E, hidden H, vocabulary V, length T."""

    vocab_size: int = knob(5000, "Vocabulary size V.", lo=1)
    emb_dim: int = knob(32, "Embedding size E.", lo=1)
    hidden_dim: int = knob(32, "LSTM hidden size H.", lo=1)
    seq_len: int = knob(20, "Sequence length T.", lo=2)
    start_token: int = knob(0, "Token fed at t = 0.", lo=0)
    init_std: float = knob(0.1, "Std of the N(0, σ) initialisation (SeqGAN: 0.1).", lo=0.0, lo_open=True)

    def _check(self, where: str) -> None:
        if not self.start_token < self.vocab_size:
            raise UserError(f"{where}.start_token {self.start_token} is outside 0..{self.vocab_size - 1}")


class Generator(nn.Module):
    """SeqGAN's LSTM generator G_θ: embedding, one LSTM layer, output layer; see the module docstring."""

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.cfg = cfg
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.emb_dim)
        self.lstm = nn.LSTM(cfg.emb_dim, cfg.hidden_dim, batch_first=True)
        self.out = nn.Linear(cfg.hidden_dim, cfg.vocab_size)
        with torch.no_grad():
            for p in self.parameters():
                p.normal_(0.0, cfg.init_std)
            self.lstm.bias_hh_l0.zero_()

    @property
    def device(self) -> torch.device:
        """The device of the model's parameters."""
        return self.out.weight.device

    # -- teacher forcing ---------------------------------------------------------------
    def inputs_for(self, seqs: torch.Tensor) -> torch.Tensor:
        """Inputs x (B, T) for targets ``seqs`` (B, T): the start token, then y_1..y_{T-1}."""
        start = torch.full_like(seqs[:, :1], self.cfg.start_token)
        return torch.cat([start, seqs[:, :-1]], dim=1)

    def forward(self, seqs: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, V) of each target token given its prefix (teacher forcing)."""
        h, _ = self.lstm(self.embedding(self.inputs_for(seqs)))  # (B, T, H)
        return self.out(h)  # (B, T, V)

    def log_probs(self, seqs: torch.Tensor) -> torch.Tensor:
        """log G(y_t | y_<t), (B, T)."""
        logp = F.log_softmax(self.forward(seqs), dim=-1)  # (B, T, V)
        return logp.gather(2, seqs.unsqueeze(2)).squeeze(2)

    def nll(self, seqs: torch.Tensor, batch_size: int = 4096) -> float:
        """Mean per-token NLL of ``seqs`` under G (NLL-test when ``seqs`` is held out), in
        batches of at most ``batch_size`` rows and 2**27 logits (large vocabularies)."""
        total = 0.0
        batch_size = max(1, min(batch_size, 2**27 // max(seqs.shape[1] * self.cfg.vocab_size, 1)))
        with torch.no_grad():
            for s in range(0, seqs.shape[0], batch_size):
                batch = seqs[s:s + batch_size].to(self.device)
                total += float(-self.log_probs(batch).double().sum())
        return total / max(seqs.numel(), 1)

    # -- one step at a time ------------------------------------------------------------
    def init_state(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The zero LSTM state (h, c), each (n, H), on the model's device."""
        z = torch.zeros(n, self.cfg.hidden_dim, device=self.device)
        return z, z.clone()

    def step(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
        """One LSTM step from input tokens x (B,): returns (h, c, logits (B, V))."""
        lstm = self.lstm
        z = torch.addmm(lstm.bias_ih_l0 + lstm.bias_hh_l0, self.embedding(x), lstm.weight_ih_l0.t())
        z = torch.addmm(z, h, lstm.weight_hh_l0.t())  # (B, 4H)
        i, f, g, o = z.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c, self.out(h)

    def prefix_states(self, seqs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """States after consuming x_1..x_t for every t: (h, c), each (B, T, H).

        ``h[:, t-1], c[:, t-1]`` is the state from which G draws y_{t+1} given the prefix
        Y[:t] (its next input is y_t). One teacher-forced pass; the only loop is over time.
        """
        x = self.inputs_for(seqs)  # (B, T)
        B, T = x.shape
        h, c = self.init_state(B)
        hs, cs = [], []
        for t in range(T):
            h, c, _ = self.step(x[:, t], h, c)
            hs.append(h)
            cs.append(c)
        return torch.stack(hs, 1), torch.stack(cs, 1)

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None,
               batch_size: int = 16_384, length: int | None = None) -> torch.Tensor:
        """Draw ``n`` sequences (n, L) from G at ``temperature`` on the model's device; L is
        ``length`` or the training length T. The LSTM keeps its state past T, and each step
        draws one uniform per row, so the first T tokens of a longer sample are the
        ordinary sample of the same stream."""
        if temperature <= 0:
            raise ValueError("temperature must be > 0")
        out = []
        for s in range(0, n, batch_size):
            m = min(batch_size, n - s)
            h, c = self.init_state(m)
            x = torch.full((m,), self.cfg.start_token, dtype=torch.long, device=self.device)
            L = length or self.cfg.seq_len
            seq = torch.empty(m, L, dtype=torch.long, device=self.device)
            for t in range(L):
                h, c, logits = self.step(x, h, c)
                x = sample_logits(logits, temperature, generator)
                seq[:, t] = x
            out.append(seq)
        return torch.cat(out) if out else torch.empty(0, length or self.cfg.seq_len, dtype=torch.long)


def sample_logits(logits: torch.Tensor, temperature: float = 1.0,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """One token per row from softmax(logits / temperature), (B, V) -> (B,).

    Inverse-CDF sampling: one uniform u per row, the first index whose cumulative
    probability exceeds u·total. Exact like ``torch.multinomial`` but far faster on the
    CPU (where multinomial over 5000 classes costs ~0.25 ms a row).
    """
    if temperature != 1.0:
        logits = logits / temperature
    cdf = inverse_cdf(logits)  # (B, V)
    u = torch.rand(cdf.shape[0], 1, device=cdf.device, generator=generator)
    return pick(cdf, u).squeeze(1)


def inverse_cdf(logits: torch.Tensor) -> torch.Tensor:
    """The cumulative probabilities (..., V) of softmax(logits (..., V)) in float32: each
    the float32 rounding of a serial float64 sum (PyTorch's CPU ``cumsum``)."""
    return torch.softmax(logits.float(), dim=-1).cumsum(dim=-1)


def pick(cdf: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF draws: for each row of ``cdf`` (..., V) and each of its uniforms u
    (..., k), the first index whose cumulative probability exceeds u·total, (..., k)
    (V - 1 at most)."""
    return torch.searchsorted(cdf, u * cdf[..., -1:], right=True).clamp_max(cdf.shape[-1] - 1)


class DelayedCopy:
    """A no-grad deep copy of a generator that trails it (SeqGAN's rollout policy G_β):
    :meth:`update` moves every parameter β ← ρ·β + (1-ρ)·θ. The base of
    :class:`~seqgan.training.rollout.RolloutPolicy` and of the stacked populations' rollout."""

    def __init__(self, generator: nn.Module):
        self.model = copy.deepcopy(generator)
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, generator: nn.Module, update_rate: float) -> None:
        """β ← ρ·β + (1-ρ)·θ for every parameter (every member's, when stacked)."""
        for b, t in zip(self.model.parameters(), generator.parameters()):
            b.mul_(update_rate).add_(t.detach(), alpha=1.0 - update_rate)
