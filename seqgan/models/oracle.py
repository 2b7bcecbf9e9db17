"""The synthetic-data oracle of SeqGAN's experiment (Yu et al. 2017, §5.1).

A fixed LSTM with separate gate matrices (exactly the recurrence of SeqGAN's
``target_lstm.py``)::

    i = σ(x Wi + h Ui + bi)      f = σ(x Wf + h Uf + bf)      o = σ(x Wog + h Uog + bog)
    c̃ = tanh(x Wc + h Uc + bc)    c = f·c + i·c̃                h = o·tanh(c)
    logits = h Wo + bo           h0 = c0 = 0, first input = embedding of token 0

**NLL-oracle** of a model G is ``-(1/(N·T)) Σ_n Σ_t log G_oracle(y_t | y_<t)`` over N
sequences sampled from G (SeqGAN reports it on 10,000 samples; MLE reaches 9.038).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from seqgan.errors import UserError
from seqgan.models.generator import sample_logits

GATES = ("i", "f", "og", "c")
PARAM_SHAPES = {  # name -> shape as a function of (V, E, H)
    "embedding": lambda V, E, H: (V, E),
    **{f"W{g}": (lambda V, E, H: (E, H)) for g in GATES},
    **{f"U{g}": (lambda V, E, H: (H, H)) for g in GATES},
    **{f"b{g}": (lambda V, E, H: (H,)) for g in GATES},
    "Wo": lambda V, E, H: (H, V),
    "bo": lambda V, E, H: (V,),
}


# at most this many logits (float32) at once when sampling or scoring: the batch shrinks for
# large vocabularies (SeqGAN's V = 5000 keeps the batch of 10,000, so the same samples)
MAX_LOGITS = 1 << 27
_SIZES = "V: vocabulary size, E: embedding size, H: hidden size"


def _check_shapes(params: dict[str, torch.Tensor]) -> tuple[int, int, int]:
    """``(V, E, H)`` of oracle parameters whose every array has its rank, sizes >= 1 and
    sizes that agree; else a :class:`UserError` naming the first array that does not."""
    for name, shape_fn in PARAM_SHAPES.items():  # ranks first: the sizes are read from them
        want, got = shape_fn("V", "E", "H"), tuple(params[name].shape)
        if len(got) != len(want):
            raise UserError(f"oracle parameter {name} has shape {got}, expected a {len(want)}-D "
                            f"array ({', '.join(want)}) ({_SIZES})")
    (V, E), H = params["embedding"].shape, params["Ui"].shape[0]
    if min(V, E, H) < 1:
        raise UserError(f"oracle parameters have V={V}, E={E}, H={H} (from embedding "
                        f"{tuple(params['embedding'].shape)} and Ui {tuple(params['Ui'].shape)}; "
                        f"{_SIZES}): each must be at least 1")
    for name, shape_fn in PARAM_SHAPES.items():
        want, got = shape_fn(V, E, H), tuple(params[name].shape)
        if got != want:
            raise UserError(f"oracle parameter {name} has shape {got}, expected {want} "
                            f"({', '.join(shape_fn('V', 'E', 'H'))} with V={V}, E={E}, H={H}; "
                            f"{_SIZES})")
    return V, E, H


class Oracle(nn.Module):
    """Fixed LSTM language model; parameters are buffers (never trained)."""

    def __init__(self, params: dict[str, torch.Tensor], seq_len: int = 20, start_token: int = 0):
        super().__init__()
        missing = sorted(set(PARAM_SHAPES) - set(params))
        if missing:
            raise UserError(f"oracle parameters lack {', '.join(missing)}")
        V, E, H = _check_shapes(params)
        for name in PARAM_SHAPES:
            t = params[name].detach().to(torch.float32).clone()
            if not torch.isfinite(t).all():
                raise UserError(f"oracle parameter {name} holds NaN or infinite values")
            self.register_buffer(name, t)
        # all four gates in one matrix: (E, 4H) and (H, 4H), order i, f, o, c
        self.register_buffer("W", torch.cat([params[f"W{g}"].float() for g in GATES], 1))
        self.register_buffer("U", torch.cat([params[f"U{g}"].float() for g in GATES], 1))
        self.register_buffer("b", torch.cat([params[f"b{g}"].float() for g in GATES], 0))
        self.vocab_size, self.emb_dim, self.hidden_dim = V, E, H
        self.seq_len, self.start_token = seq_len, start_token

    # -- constructors -----------------------------------------------------------------
    @classmethod
    def random(cls, vocab_size: int = 5000, emb_dim: int = 32, hidden_dim: int = 32,
               seq_len: int = 20, seed: int = 0) -> "Oracle":
        """Parameters drawn N(0, 1) from ``seed``, as SeqGAN's random oracle."""
        g = torch.Generator().manual_seed(seed)
        shapes = {k: fn(vocab_size, emb_dim, hidden_dim) for k, fn in PARAM_SHAPES.items()}
        return cls({k: torch.randn(s, generator=g) for k, s in shapes.items()}, seq_len)

    @classmethod
    def from_npz(cls, path: str | Path, seq_len: int = 20) -> "Oracle":
        """SeqGAN's published parameters, converted to ``.npz`` (``../shared/data/...``)."""
        path = Path(path)
        if not path.is_file():
            raise UserError(f"oracle parameters {str(path)!r}: no such file")
        with open(path, "rb") as f:
            magic = f.read(4)
        if magic != b"PK\x03\x04":  # an .npz is a zip archive
            raise UserError(f"oracle parameters {str(path)!r} are not a readable .npz (the file "
                            f"{'is empty' if not magic else 'is not a zip archive'})")
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: torch.from_numpy(np.array(z[k], dtype=np.float32)) for k in z.files}
        except UserError:
            raise
        except Exception as e:  # zipfile / format errors: a corrupt or foreign file
            raise UserError(f"oracle parameters {str(path)!r} are not a readable .npz "
                            f"({type(e).__name__}: {e})") from None
        return cls(arrays, seq_len)

    def params(self) -> dict[str, torch.Tensor]:
        """The oracle's parameters by name (embedding, W*, U*, b*, Wo, bo), as a run stores them."""
        return {k: getattr(self, k) for k in PARAM_SHAPES}

    # -- recurrence -------------------------------------------------------------------
    def _step(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
        z = x @ self.W + h @ self.U + self.b  # (B, 4H)
        i, f, o, g = z.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c

    def _batch(self, batch_size: int) -> int:
        """``batch_size`` lowered so that a batch's logits stay under ``MAX_LOGITS``."""
        return max(1, min(batch_size, MAX_LOGITS // self.vocab_size))

    def _init(self, n: int):
        z = torch.zeros(n, self.hidden_dim, device=self.W.device)
        return z, z.clone(), torch.full((n,), self.start_token, dtype=torch.long, device=z.device)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None,
               batch_size: int = 10_000) -> torch.Tensor:
        """Draw ``n`` sequences (n, T) at temperature 1."""
        out = []
        batch_size = self._batch(batch_size)
        for start in range(0, n, batch_size):
            m = min(batch_size, n - start)
            h, c, x = self._init(m)
            seq = torch.empty(m, self.seq_len, dtype=torch.long, device=h.device)
            for t in range(self.seq_len):
                h, c = self._step(self.embedding[x], h, c)
                x = sample_logits(h @ self.Wo + self.bo, generator=generator)
                seq[:, t] = x
            out.append(seq)
        return torch.cat(out)

    @torch.no_grad()
    def log_prob(self, seqs: torch.Tensor) -> torch.Tensor:
        """Per-token log-probabilities (N, T) of given sequences under the oracle."""
        seqs = seqs.to(self.W.device)
        n, T = seqs.shape
        h, c, x = self._init(n)
        out = torch.empty(n, T, device=h.device)
        for t in range(T):
            h, c = self._step(self.embedding[x], h, c)
            logp = torch.log_softmax(h @ self.Wo + self.bo, dim=1)
            out[:, t] = logp.gather(1, seqs[:, t:t + 1]).squeeze(1)
            x = seqs[:, t]
        return out

    def nll(self, seqs: torch.Tensor, batch_size: int = 10_000) -> float:
        """NLL-oracle: mean per-token negative log-likelihood of ``seqs`` (N, T)."""
        if seqs.numel() == 0:
            raise UserError("NLL-oracle of an empty set of sequences is undefined")
        total, batch_size = 0.0, self._batch(batch_size)
        for s in range(0, seqs.shape[0], batch_size):
            total += float(-self.log_prob(seqs[s:s + batch_size]).double().sum())
        return total / seqs.numel()
