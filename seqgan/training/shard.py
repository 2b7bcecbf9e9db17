"""Which rows of a batch this process trains on, and how gradients are summed over processes.

Data-parallel training (:mod:`seqgan.distributed.data_parallel`) runs K processes that each
hold the whole state and see every batch, but compute on a contiguous slice of it: rank r
takes rows ``⌊r·n/K⌋ .. ⌊(r+1)·n/K⌋ - 1`` of a batch of n (:meth:`Shard.bounds`). A step
scales its local mean loss by ``local weight / global weight``, so that the sum over the
ranks of the local gradients is the gradient of the mean over the whole batch;
:meth:`Shard.reduce_grads` makes that sum (one all-reduce of a flat buffer) and every rank
then takes the same optimizer step. With batch size B in the run's config, K processes
therefore follow the single process with batch B (K processes of B/K rows each).

Random draws come in two kinds. Draws every rank makes alike — permutations, the generator's
samples, dropout masks drawn for the whole batch — come from the ordinary global stream,
whose state therefore stays the same on every rank and the same as in a single process.
Draws made for this rank's rows only — Monte Carlo completions, scheduled-sampling coins —
come from :meth:`Shard.local_stream`, a stream seeded from the global state, the rank and a
key, forked so the global stream does not move; they differ from a single process's draws
(a different split of the same distribution), and a resumed job draws them again alike.

This module knows nothing of ``torch.distributed``: the sum is a callable (``reduce``) that
the distributed layer supplies. The default :class:`Shard` (one process, no ``reduce``) is
the identity everywhere, so single-process training is unchanged bit for bit.
"""
from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import torch

Reduce = Callable[[torch.Tensor], None]  # sums a flat tensor over every rank, in place


@dataclass(frozen=True)
class Shard:
    """Rank ``rank`` of ``world`` data-parallel processes; ``reduce`` sums a flat tensor over
    them in place (None: one process, every method the identity)."""

    rank: int = 0
    world: int = 1
    reduce: Reduce | None = None

    @property
    def active(self) -> bool:
        """Whether this process is one of a data-parallel job (even a job of one)."""
        return self.reduce is not None

    @property
    def writes(self) -> bool:
        """Whether this process writes the run directory (rank 0)."""
        return self.rank == 0

    def bounds(self, n: int) -> tuple[int, int]:
        """This rank's rows ``lo:hi`` of a batch of ``n``: ⌊r·n/K⌋, ⌊(r+1)·n/K⌋."""
        return self.rank * n // self.world, (self.rank + 1) * n // self.world

    def sum_(self, tensors: Iterable[torch.Tensor]) -> None:
        """Replace each tensor (all on one device and of one dtype) by its sum over the ranks."""
        tensors = list(tensors)
        if not self.active or not tensors:
            return
        flat = torch.cat([t.reshape(-1) for t in tensors])
        self.reduce(flat)
        off = 0
        for t in tensors:
            t.copy_(flat[off:off + t.numel()].view_as(t))
            off += t.numel()

    def reduce_grads(self, params: Iterable[torch.nn.Parameter]) -> None:
        """Sum every parameter's gradient over the ranks (a missing one counts as zeros)."""
        if not self.active:
            return
        ps = [p for p in params if p.requires_grad]
        for p in ps:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        self.sum_(p.grad for p in ps)

    @contextlib.contextmanager
    def local_stream(self, device: torch.device, key: int = 0) -> Iterator[None]:
        """Inside, the default random streams (CPU and ``device``) draw this rank's own numbers,
        seeded by (global stream state, rank, ``key``); on exit the global streams are as
        before. One process without ``reduce``: the global streams themselves."""
        if not self.active:
            yield
            return
        h = hashlib.blake2b(torch.get_rng_state().numpy().tobytes(), digest_size=8)
        cuda = device.type == "cuda"
        index = (device.index if device.index is not None else torch.cuda.current_device()) if cuda else None
        if cuda:
            h.update(torch.cuda.get_rng_state(index).numpy().tobytes())
        h.update(f"rank {self.rank} key {key}".encode())
        seed = int.from_bytes(h.digest(), "little") >> 1
        with torch.random.fork_rng(devices=[index] if cuda else []):
            torch.default_generator.manual_seed(seed)
            if cuda:
                torch.cuda.default_generators[index].manual_seed(seed)
            yield
