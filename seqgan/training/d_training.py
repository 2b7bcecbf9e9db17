"""Discriminator training: epochs of minibatch Adam on real (label 1) vs generated (0).

SeqGAN trains D for ``d_steps`` rounds, each on fresh negatives sampled from G (as many
as there are positives), for ``k_epochs`` epochs at batch 64 — 4,695 optimizer steps per
adversarial epoch of the synthetic experiment. At batch 64 a GPU step is bound by kernel
launches, not arithmetic, so on CUDA the whole step (batch gather, forward, backward,
Adam) is captured once in a CUDA graph and replayed: the epoch's shuffled data sits in a
static buffer and the graph itself advances a device-side batch index, so a step costs
one ``replay()`` and no host work. The last, partial batch is padded and its padding
rows get weight 0, so every step (and the loss: a weighted mean) is the same math as the
eager path. Warm-up steps needed before capture are undone (weights and Adam state are
restored), so capturing changes nothing numerically.

Optionally (``compile=True``), before capture the step's forward (and with it, through
AOTAutograd, its backward) is passed through ``torch.compile``, which fuses the elementwise
work around the matrix products (masking, ReLU, max-pool, highway gates, dropout, cross
entropy, accuracy) into a few kernels: at batch 64 the number of kernels, not arithmetic, sets a step's time. If
compiling fails (no C compiler, no Triton), the trainer says so once and captures the
eager step instead. The dropout mask is drawn by an ordinary kernel outside the compiled
function and passed in, so every replay draws a fresh mask from PyTorch's graph-safe
generator and the compiled function itself is deterministic.

In a data-parallel job (``shard``, :mod:`.shard`) every rank builds the same shuffled epoch
and draws the dropout mask of the whole batch, then computes on its slice of the batch: its
weighted loss is scaled by ``its weight / the batch's weight`` and the gradients are summed
over the ranks before the Adam step, the single-process step on the whole batch. Such a
job trains eagerly (no CUDA graph: the sum is a collective).
"""
from __future__ import annotations

import torch

from seqgan.models.discriminator import Discriminator
from seqgan.errors import one_line
from seqgan.training.shard import Shard


class DiscriminatorTrainer:
    """Adam training of D on real (1) vs generated (0) sequences: eager on the CPU, by
    default a captured CUDA graph (optionally compiled) on GPUs; see the module docstring."""

    def __init__(self, model: Discriminator, lr: float = 1e-4, batch_size: int = 64,
                 cuda_graph: bool = True, compile: bool = False, log=print, shard: Shard | None = None):
        self.model = model
        self.batch_size = batch_size
        self.device = model.embedding.weight.device
        self.shard = shard or Shard()
        self.use_graph = bool(cuda_graph and self.device.type == "cuda" and not self.shard.active)
        self.log = log
        self._forward = self._forward_eager
        if compile and self.use_graph:
            self._forward = torch.compile(self._forward_eager, dynamic=False)
        self.reset_optimizer(lr)
        self._graph: torch.cuda.CUDAGraph | None = None
        self._graph_batches = -1
        self._graph_key: tuple | None = None

    def reset_optimizer(self, lr: float) -> None:
        """A fresh Adam over D's parameters, fused (one pass over all parameters; on the CPU
        it takes a batch-64 step from 59 % to 68 % of the core's SGEMM rate) and, on CUDA,
        capturable, for graph and eager paths alike so both do the same math."""
        cuda = self.device.type == "cuda"
        self.opt = torch.optim.Adam(self.model.parameters(), lr=lr, capturable=cuda, fused=True)

    # -- shared per-step math ------------------------------------------------------------
    def _forward_eager(self, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor,
                       keep: torch.Tensor | None):
        """(loss, number of correct predictions among the weighted rows)."""
        loss, logits = self.model.loss(x, y, w, keep)
        correct = ((logits.argmax(1) == y).float() * w).sum()
        return loss, correct

    def _step(self, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor):
        keep = self.model.dropout_mask(len(x))
        if self.shard.active:
            return self._shard_step(x, y, w, keep)
        loss, correct = self._forward(x, y, w, keep)
        loss.backward()
        self.opt.step()
        self._clip()
        return loss.detach(), correct

    def _shard_step(self, x, y, w, keep):
        """A data-parallel rank's step: its rows of the batch, its share of the loss, the
        gradients summed over the ranks (see the module docstring)."""
        lo, hi = self.shard.bounds(len(x))
        loss = correct = torch.zeros((), device=self.device)
        if hi > lo:
            share = w[lo:hi].sum() / w.sum().clamp_min(1)
            loss, correct = self._forward(x[lo:hi], y[lo:hi], w[lo:hi], None if keep is None else keep[lo:hi])
            loss = loss * share
            loss.backward()
        self.shard.reduce_grads(self.model.parameters())
        self.opt.step()
        self._clip()
        return loss.detach(), correct

    def _clip(self) -> None:
        if self.model.cfg.loss == "wgan":  # a Wasserstein critic: clip every weight
            with torch.no_grad():
                for p in self.model.parameters():
                    p.clamp_(-self.model.cfg.clip, self.model.cfg.clip)

    def _epoch_buffers(self, data: torch.Tensor, labels: torch.Tensor):
        """Shuffle and pad one epoch into (nb, bs, T), (nb, bs), (nb, bs) weights."""
        n, T = data.shape
        bs = self.batch_size
        nb = -(-n // bs)
        perm = torch.randperm(n, device=data.device)
        pad = nb * bs - n
        x = torch.cat([data[perm], data.new_zeros(pad, T)]).view(nb, bs, T)
        y = torch.cat([labels[perm], labels.new_zeros(pad)]).view(nb, bs)
        w = torch.cat([torch.ones(n, device=data.device), torch.zeros(pad, device=data.device)])
        return x, y, w.view(nb, bs)

    # -- eager ---------------------------------------------------------------------------
    def _epoch_eager(self, x, y, w) -> tuple[torch.Tensor, torch.Tensor]:
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device)
        for i in range(x.shape[0]):
            self.opt.zero_grad(set_to_none=True)
            loss, c = self._step(x[i], y[i], w[i])
            loss_sum += loss
            correct += c
        return loss_sum, correct

    # -- CUDA graph ----------------------------------------------------------------------
    def _capture(self, nb: int, T: int) -> None:
        dev, bs = self.device, self.batch_size
        self._x = torch.zeros(nb, bs, T, dtype=torch.long, device=dev)
        self._y = torch.zeros(nb, bs, dtype=torch.long, device=dev)
        self._w = torch.ones(nb, bs, device=dev)
        self._i = torch.zeros((), dtype=torch.long, device=dev)
        self._loss_sum = torch.zeros((), device=dev)
        self._correct = torch.zeros((), device=dev)
        params = [p for p in self.model.parameters()]
        saved_p = [p.detach().clone() for p in params]
        saved_state = {id(p): {k: v.clone() for k, v in self.opt.state[p].items()}
                       for p in params if p in self.opt.state}

        def body():
            """One capturable step on static batch ``_i``; sums loss and correct, then ``_i += 1``."""
            j = self._i.view(1)
            x = self._x.index_select(0, j).squeeze(0)
            y = self._y.index_select(0, j).squeeze(0)
            w = self._w.index_select(0, j).squeeze(0)
            loss, c = self._step(x, y, w)
            self._loss_sum.add_(loss)
            self._correct.add_(c)
            self._i.add_(1)

        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            try:
                for _ in range(3):
                    self.opt.zero_grad(set_to_none=True)
                    body()
            except Exception as e:  # noqa: BLE001 - compiling can fail in many ways
                if self._forward == self._forward_eager:
                    raise
                self.log(f"note: torch.compile of the discriminator step failed ({one_line(e)}); "
                         f"using the uncompiled step")
                self._forward = self._forward_eager
                for _ in range(3):
                    self.opt.zero_grad(set_to_none=True)
                    body()
        torch.cuda.current_stream().wait_stream(s)
        self._graph = torch.cuda.CUDAGraph()
        self.opt.zero_grad(set_to_none=True)
        with torch.cuda.graph(self._graph):
            body()
        # undo the warm-up: weights and Adam state as before
        with torch.no_grad():
            for p, v in zip(params, saved_p):
                p.copy_(v)
            for p in params:
                st = self.opt.state.get(p, {})
                old = saved_state.get(id(p))
                for k, v in st.items():
                    if old is not None:
                        v.copy_(old[k])
                    else:
                        v.zero_()
        self._graph_batches = nb

    def _epoch_graph(self, x, y, w) -> tuple[torch.Tensor, torch.Tensor]:
        nb, bs, T = x.shape
        # a graph holds the optimizer and learning rates it was captured with: a new Adam
        # (reset_optimizer) or a changed rate (coevolution's mutation) needs a new capture
        key = (self.opt, tuple(float(g["lr"]) for g in self.opt.param_groups))
        old = self._graph_key
        if (self._graph is None or self._graph_batches != nb or self._x.shape[2] != T
                or old is None or old[0] is not key[0] or old[1] != key[1]):
            self._capture(nb, T)
            self._graph_key = key
        self._x.copy_(x)
        self._y.copy_(y)
        self._w.copy_(w)
        self._i.zero_()
        self._loss_sum.zero_()
        self._correct.zero_()
        for _ in range(nb):
            self._graph.replay()
        return self._loss_sum.clone(), self._correct.clone()

    # -- public --------------------------------------------------------------------------
    def train_epochs(self, pos: torch.Tensor, neg: torch.Tensor, epochs: int) -> dict[str, float]:
        """Train ``epochs`` epochs on pos (label 1) + neg (label 0); mean loss and accuracy."""
        self.model.train()
        data = torch.cat([pos, neg]).to(self.device)
        labels = torch.cat([torch.ones(len(pos), dtype=torch.long),
                            torch.zeros(len(neg), dtype=torch.long)]).to(self.device)
        loss_total = torch.zeros((), device=self.device)
        correct_total = torch.zeros((), device=self.device)
        steps = 0
        for _ in range(epochs):
            x, y, w = self._epoch_buffers(data, labels)
            run = self._epoch_graph if self.use_graph else self._epoch_eager
            loss_sum, correct = run(x, y, w)
            loss_total += loss_sum
            correct_total += correct
            steps += x.shape[0]
        self.shard.sum_([loss_total, correct_total])  # a data-parallel job: over every rank's rows
        n = max(epochs * len(data), 1)
        return {"d_loss": float(loss_total) / max(steps, 1), "d_acc": float(correct_total) / n}


def d_round(G, trainer: DiscriminatorTrainer, positives: torch.Tensor, epochs: int,
            d_samples: int | None = None) -> dict[str, float]:
    """One discriminator round (SeqGAN): fresh negatives sampled from ``G``, as many as the
    positives (a random subset of ``d_samples`` of them when given), then ``epochs`` epochs
    of D on both; D's mean loss and accuracy."""
    pos = positives
    if d_samples and d_samples < len(pos):
        pos = pos[torch.randperm(len(pos), device=pos.device)[:d_samples]]
    G.eval()
    neg = G.sample(len(pos))
    G.train()
    return trainer.train_epochs(pos, neg, epochs)
