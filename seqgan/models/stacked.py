"""Populations as one batched model: K generators of the same shape as stacked weights.

Every parameter of :class:`~seqgan.models.generator.Generator` gets a leading member
dimension K (``embedding`` (K, V, E), ``w_ih`` (K, 4H, E), ``w_hh`` (K, 4H, H), ``b_ih``,
``b_hh`` (K, 4H), ``out_w`` (K, V, H), ``out_b`` (K, V)) and every input one too: tokens
(K, B, T), one batch per member. Each matrix product of the single model becomes one
batched product (``torch.baddbmm``) over the K members, so a step of K members costs a
few large kernels instead of K times as many small ones; the math per member is the
single model's (same gate order, same step formula as :meth:`Generator.step`)::

    z_k = b_k + E_k[x_k] W_ih,kᵀ + h_k W_hh,kᵀ      (K, B, 4H) by two baddbmm
    logits_k = h_k W_out,kᵀ + b_out,k               (K, B, V)

Members never mix: member k's loss depends only on its own slice, so the gradient of the
sum of the K losses is, slice by slice, each member's own gradient. Randomness stays per
member too: :meth:`StackedGenerator.sample` draws member k's uniforms from
``generators[k]``, in the order :meth:`Generator.sample` draws them, so member k samples
what it would alone from the same stream. Gradient clipping and Adam
(:mod:`seqgan.models.stacked_optim`: per-member learning rates and step counts) are per
member as well. :meth:`StackedGenerator.unstack` gives the members' ordinary state dicts
back (a population's files keep the single model's layout). The discriminator is in
:mod:`seqgan.models.stacked_d`.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from seqgan.models import stacked_optim
from seqgan.models.generator import DelayedCopy, Generator, GeneratorConfig, inverse_cdf, pick
from seqgan.models.stacked_optim import StackedAdam, clip_grad_norm_per_member

Weights = dict[str, torch.Tensor]
Generators = Sequence[torch.Generator | None]
# logits (floats) of the members a training step takes forward and backward at once: 4 M
# floats, 16 MB, half this CPU's L3 (SeqGAN's 64 × 20 × 5,000 are 6.4 M: one at a time)
CHUNK_LOGITS = 2**22


def stack_weights(sds: Sequence[Weights], names: dict[str, str]) -> dict[str, torch.Tensor]:
    """``{stacked name: (K, ...)}`` from K state dicts, ``names`` mapping a stacked
    parameter's name to the state-dict key it stacks."""
    return {s: torch.stack([sd[key].detach() for sd in sds]) for s, key in names.items()}


def member_weights(params: dict[str, torch.Tensor], names: dict[str, str], k: int) -> Weights:
    """Member k's state dict (the single model's keys) from stacked parameters: copies."""
    return {key: params[s][k].detach().clone() for s, key in names.items()}


def embed(table: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Per-member embedding lookup: table (K, V, E), tokens (K, ...) -> (K, ..., E).

    One ``F.embedding`` over the (K·V, E) table with member k's ids offset by k·V (the
    single model's kernel, forward and backward)."""
    K, V, E = table.shape
    offs = (torch.arange(K, device=tokens.device) * V).view(K, *([1] * (tokens.dim() - 1)))
    return F.embedding(tokens + offs, table.reshape(K * V, E))


def linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """Per-member ``x_k W_kᵀ + b_k``: x (K, ..., I), w (K, O, I), b (K, O) -> (K, ..., O).

    One batched product; on the CPU, members whose W has at least
    :data:`~seqgan.models.stacked_optim.MEMBER_LOOP_FLOATS`
    floats (SeqGAN's highway, 1,720²) take one ``addmm`` each (:class:`MemberLinear`)."""
    K, O = w.shape[0], w.shape[1]
    flat = x.reshape(K, -1, x.shape[-1])  # (K, N, I)
    if b is not None and not w.is_cuda and w[0].numel() >= stacked_optim.MEMBER_LOOP_FLOATS:
        y = MemberLinear.apply(flat, w, b)
    else:
        y = torch.bmm(flat, w.transpose(1, 2)) if b is None else torch.baddbmm(b.unsqueeze(1), flat, w.transpose(1, 2))
    return y.view(*x.shape[:-1], O)


class MemberLinear(torch.autograd.Function):
    """``x_k W_kᵀ + b_k`` member after member, x (K, N, I), w (K, O, I), b (K, O) ->
    (K, N, O), each product and its gradients by the single model's ``addmm``/``mm``
    (written into slices of one output and one gradient per input): for large members
    the CPU's batched product and its transposed backward are slower than K plain ones."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """y (K, N, O), ``y[k] = b[k] + x[k] W[k]ᵀ``."""
        y = x.new_empty(x.shape[0], x.shape[1], w.shape[1])
        for k in range(x.shape[0]):
            torch.addmm(b[k], x[k], w[k].t(), out=y[k])
        ctx.save_for_backward(x, w)
        return y

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        """dx[k] = g[k] W[k], dW[k] = g[k]ᵀ x[k], db[k] = Σ_n g[k, n]."""
        x, w = ctx.saved_tensors
        gx = torch.empty_like(x) if ctx.needs_input_grad[0] else None
        gw = torch.empty_like(w)
        for k in range(x.shape[0]):
            if gx is not None:
                torch.mm(g[k], w[k], out=gx[k])
            torch.mm(g[k].t(), x[k], out=gw[k])
        return gx, gw, g.sum(1)


def sample_stacked(logits: torch.Tensor, temperature: float, generators: Generators) -> torch.Tensor:
    """One token per row and member from softmax(logits / temperature), (K, B, V) -> (K, B).

    :func:`~seqgan.models.generator.sample_logits` per member: one uniform u per row from
    member k's ``generators[k]``, the first index whose cumulative probability exceeds
    u·total."""
    if temperature != 1.0:
        logits = logits / temperature
    cdf = inverse_cdf(logits)  # (K, B, V)
    B = cdf.shape[1]
    u = torch.stack([torch.rand(B, 1, device=cdf.device, generator=g) for g in generators])  # (K, B, 1)
    return pick(cdf, u).squeeze(2)


# stacked parameter name -> Generator state-dict key
G_NAMES = {"embedding": "embedding.weight", "w_ih": "lstm.weight_ih_l0", "w_hh": "lstm.weight_hh_l0",
           "b_ih": "lstm.bias_ih_l0", "b_hh": "lstm.bias_hh_l0", "out_w": "out.weight", "out_b": "out.bias"}


class StackedGenerator(nn.Module):
    """K LSTM generators of one :class:`GeneratorConfig` as one model (module docstring)."""

    def __init__(self, cfg: GeneratorConfig, members: Sequence[Weights]):
        super().__init__()
        self.cfg, self.k = cfg, len(members)
        for name, t in stack_weights(members, G_NAMES).items():
            setattr(self, name, nn.Parameter(t.clone()))

    @classmethod
    def from_generators(cls, gs: Sequence[Generator]) -> "StackedGenerator":
        """The stack of generators ``gs`` (copies of their weights), on their device."""
        return cls(gs[0].cfg, [g.state_dict() for g in gs])

    @property
    def device(self) -> torch.device:
        """The device of the parameters."""
        return self.out_w.device

    def params(self) -> dict[str, torch.Tensor]:
        """The stacked parameters by name."""
        return {name: getattr(self, name) for name in G_NAMES}

    def unstack(self) -> list[Weights]:
        """Every member's state dict, with :class:`Generator`'s keys and shapes."""
        return [self.member(k) for k in range(self.k)]

    def member(self, k: int) -> Weights:
        """Member k's state dict (copies)."""
        return member_weights(self.params(), G_NAMES, k)

    @torch.no_grad()
    def load_member(self, k: int, sd: Weights) -> None:
        """Member k's weights from a :class:`Generator` state dict."""
        for name, key in G_NAMES.items():
            getattr(self, name)[k].copy_(sd[key])

    # -- one step at a time / teacher forcing ------------------------------------------
    def init_state(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The zero LSTM state (h, c), each (K, n, H)."""
        z = torch.zeros(self.k, n, self.cfg.hidden_dim, device=self.device)
        return z, z.clone()

    def _cell(self, z: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
        z = torch.baddbmm(z, h, self.w_hh.transpose(1, 2))  # (K, B, 4H)
        i, f, g, o = z.chunk(4, dim=2)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c

    def step(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
        """One LSTM step from tokens x (K, B): (h, c, logits (K, B, V))."""
        z = linear(embed(self.embedding, x), self.w_ih, self.b_ih + self.b_hh)  # (K, B, 4H)
        h, c = self._cell(z, h, c)
        return h, c, linear(h, self.out_w, self.out_b)

    def inputs_for(self, seqs: torch.Tensor) -> torch.Tensor:
        """Inputs (K, B, T) for targets ``seqs`` (K, B, T): the start token, then y_1..y_{T-1}."""
        start = torch.full_like(seqs[..., :1], self.cfg.start_token)
        return torch.cat([start, seqs[..., :-1]], dim=2)

    def hidden(self, seqs: torch.Tensor) -> torch.Tensor:
        """LSTM outputs (K, B, T, H) under teacher forcing for targets ``seqs`` (K, B, T)."""
        x = self.inputs_for(seqs)
        K, B, T = x.shape
        zx = linear(embed(self.embedding, x), self.w_ih, self.b_ih + self.b_hh)  # (K, B, T, 4H)
        h, c = self.init_state(B)
        hs = []
        for t in range(T):
            h, c = self._cell(zx[:, :, t], h, c)
            hs.append(h)
        return torch.stack(hs, 2)

    def forward(self, seqs: torch.Tensor) -> torch.Tensor:
        """Logits (K, B, T, V) of each target given its prefix (teacher forcing)."""
        return linear(self.hidden(seqs), self.out_w, self.out_b)

    def log_probs(self, seqs: torch.Tensor) -> torch.Tensor:
        """log G_k(y_t | y_<t), (K, B, T)."""
        return target_log_probs(self.forward(seqs), seqs)

    def member_chunks(self, rows: int) -> list[slice]:
        """Runs of members whose logits for ``rows`` rows each (B·T) take at most
        :data:`CHUNK_LOGITS` floats together (at least one member a run): on the CPU a
        training step takes the output layer and the loss forward and backward one run at a
        time (:func:`backward_by_runs`), so large members' logits stay in the cache as they
        would for one model alone, and small members still share kernels. On a GPU one run
        of all members (batching is what it is for)."""
        if self.out_w.is_cuda:
            return [slice(0, self.k)]
        n = max(1, CHUNK_LOGITS // max(1, rows * self.cfg.vocab_size))
        return [slice(s, min(s + n, self.k)) for s in range(0, self.k, n)]

    @torch.no_grad()
    def sample(self, n: int, generators: Generators | None = None, temperature: float = 1.0,
               length: int | None = None) -> torch.Tensor:
        """``n`` sequences per member (K, n, L); member k draws from ``generators[k]`` (None:
        the global stream) exactly as :meth:`Generator.sample` does with it (one batch)."""
        if temperature <= 0:
            raise ValueError("temperature must be > 0")
        gens = list(generators) if generators is not None else [None] * self.k
        L = length or self.cfg.seq_len
        h, c = self.init_state(n)
        x = torch.full((self.k, n), self.cfg.start_token, dtype=torch.long, device=self.device)
        seq = torch.empty(self.k, n, L, dtype=torch.long, device=self.device)
        for t in range(L):
            h, c, logits = self.step(x, h, c)
            x = sample_stacked(logits, temperature, gens)
            seq[:, :, t] = x
        return seq


class StackedRollout(DelayedCopy):
    """The rollout policies G_β of K members as one stacked copy (no grad) of a
    :class:`StackedGenerator`: :class:`~seqgan.training.rollout.RolloutPolicy` per member,
    member k's completions drawn from ``generators[k]`` in the single policy's order."""

    @torch.no_grad()
    def completions(self, seqs: torch.Tensor, rollout_num: int, generators: Generators) -> torch.Tensor:
        """Every member's Monte Carlo completions (K, (T-1)·N·B, T), prefix-major (row
        ((t-1)·N + n)·B + b completes Y[:t] of row b), stepped in lockstep."""
        g = self.model
        K, B, T = seqs.shape
        NB = rollout_num * B
        x = g.inputs_for(seqs)
        h, c = g.init_state(B)
        hs, cs = [], []
        for t in range(T - 1):  # states after consuming Y[:t], t = 1..T-1
            h, c, _ = g.step(x[:, :, t], h, c)
            hs.append(h)
            cs.append(c)
        H = h.shape[2]
        h = torch.stack(hs, 1).unsqueeze(2).expand(K, T - 1, rollout_num, B, H).reshape(K, -1, H)
        c = torch.stack(cs, 1).unsqueeze(2).expand(K, T - 1, rollout_num, B, H).reshape(K, -1, H)
        out = seqs.repeat(1, rollout_num * (T - 1), 1)  # (K, R, T)
        for s in range(1, T):
            k = s * NB  # rows whose prefix is at most s long lead the layout
            hk, ck, logits = g.step(out[:, :k, s - 1], h[:, :k], c[:, :k])
            h[:, :k], c[:, :k] = hk, ck
            out[:, :k, s] = sample_stacked(logits, 1.0, generators)
        return out

    @torch.no_grad()
    def rewards(self, seqs: torch.Tensor, score, rollout_num: int, generators: Generators,
                chunk: int = 32_768) -> torch.Tensor:
        """Q (K, B, T) of every member's sequences (K, B, T) by ``score(tokens (K, M, T),
        group_size) -> (K, M)`` (member k's tokens scored by member k's reward); Q[..., T-1]
        = R(Y). ``chunk``: rows per member scored at once (whole groups of B)."""
        K, B, T = seqs.shape
        comps = self.completions(seqs, rollout_num, generators)
        chunk = max(B, chunk // B * B)
        scores = torch.cat([score(comps[:, s:s + chunk], B) for s in range(0, comps.shape[1], chunk)], 1)
        q = scores.view(K, T - 1, rollout_num, B).mean(2).transpose(1, 2)  # (K, B, T-1)
        return torch.cat([q, score(seqs, B).unsqueeze(2)], dim=2)


def target_log_probs(logits: torch.Tensor, seqs: torch.Tensor) -> torch.Tensor:
    """log softmax(logits)[y], (K, B, T), from logits (K, B, T, V) and targets (K, B, T)."""
    return F.log_softmax(logits, dim=-1).gather(3, seqs.unsqueeze(3)).squeeze(3)


def mle_losses(logits: torch.Tensor, seqs: torch.Tensor) -> torch.Tensor:
    """Mean per-token cross entropy per member, (K,)."""
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), seqs.reshape(-1), reduction="none")
    return ce.view(seqs.shape[0], -1).mean(1)


def pg_losses(logits: torch.Tensor, seqs: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """REINFORCE loss per member, -(1/B) Σ_b Σ_t log G_k(y_t | Y[:t-1]) · Q_t, (K,)."""
    return -(target_log_probs(logits, seqs) * q).sum(dim=(1, 2)) / seqs.shape[1]


def backward_by_runs(G: StackedGenerator, seqs: torch.Tensor, losses: Callable[..., torch.Tensor],
                     *per_member: torch.Tensor) -> torch.Tensor:
    """Backpropagate ``losses(logits, seqs, *per_member)`` (K,) summed, of every member's
    sequences ``seqs`` (K, B, T): the LSTM for all members at once, then the output layer
    and the loss forward and backward one run of members at a time
    (:meth:`StackedGenerator.member_chunks`), then the LSTM's backward once from the
    gathered gradient of its outputs. The losses (K,), detached."""
    runs = G.member_chunks(seqs.shape[1] * seqs.shape[2])
    if len(runs) == 1:
        loss = losses(G.forward(seqs), seqs, *per_member)
        loss.sum().backward()
        return loss.detach()
    h = G.hidden(seqs)
    hd = h.detach().requires_grad_()
    out = []
    for ms in runs:
        loss = losses(linear(hd[ms], G.out_w[ms], G.out_b[ms]), seqs[ms], *(t[ms] for t in per_member))
        loss.sum().backward()
        out.append(loss.detach())
    h.backward(hd.grad)
    return torch.cat(out)


def mle_update(G: StackedGenerator, opt: StackedAdam, batch: torch.Tensor, grad_clip: float) -> torch.Tensor:
    """One MLE step of every member on its batch (K, B, T) (as :func:`~seqgan.training.mle.mle_epoch`
    takes one): the losses (K,) detached."""
    G.train()
    opt.zero_grad()
    loss = backward_by_runs(G, batch, mle_losses)
    clip_grad_norm_per_member(G.parameters(), grad_clip)
    opt.step()
    return loss


def pg_update(G: StackedGenerator, opt: StackedAdam, seqs: torch.Tensor, q: torch.Tensor,
              grad_clip: float) -> torch.Tensor:
    """One REINFORCE step of every member on its sequences (K, B, T) and action values
    (K, B, T) (the tail of :func:`~seqgan.training.adversarial.pg_step`): the losses (K,)."""
    G.train()
    opt.zero_grad()
    loss = backward_by_runs(G, seqs, pg_losses, q)
    clip_grad_norm_per_member(G.parameters(), grad_clip)
    opt.step()
    return loss
