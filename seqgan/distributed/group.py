"""A process group for one job, and which process owns which cells.

:class:`Group` wraps ``torch.distributed``'s default group with the few collectives a job
needs (barrier, gather and broadcast of small Python objects, which torch.distributed
pickles between our own processes). Collectives time out (``timeout`` seconds, default
120), so a job whose worker died stops with an error instead of hanging.

Cells are split in contiguous blocks, rank r owning cells ⌊r·n/K⌋ .. ⌊(r+1)·n/K⌋ - 1, so on a
torus most neighbours are owned by the same rank or the next one; a job needs K ≤ n.

A process that joined a job ends through :func:`leave`: once its group is destroyed and
its work is done, it flushes its streams and exits at once (``os._exit``), skipping the
interpreter's teardown, during which gloo can abort a process that has finished its job
(std::terminate, SIGABRT: seen under load in ``tests/test_distributed.py``, after rank 0
had printed its summary).
"""
from __future__ import annotations

import datetime
import os
import sys
from dataclasses import dataclass
from typing import Any, NoReturn

import torch
import torch.distributed as dist

from seqgan.errors import UserError

DEFAULT_TIMEOUT = 120.0
_joined = False  # whether this process has joined a job (Group.init)


def leave(code: Any = 0) -> NoReturn:
    """End the process with ``code`` (an int, None for 0, or a message for stderr and 1, as
    ``SystemExit`` takes it): at once, streams flushed, if it joined a job (module
    docstring); else by ``SystemExit``."""
    if not _joined:
        raise SystemExit(code)
    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(0 if code is None else int(code))


def blocks(n: int, world: int) -> list[list[int]]:
    """The cells of each rank: contiguous blocks of n cells over ``world`` ranks."""
    if not 1 <= world <= n:
        raise UserError(f"{world} workers for {n} cells: use at most one worker per cell")
    return [list(range(r * n // world, (r + 1) * n // world)) for r in range(world)]


def owners(n: int, world: int) -> list[int]:
    """The owning rank of each cell."""
    out = [0] * n
    for r, cells in enumerate(blocks(n, world)):
        for k in cells:
            out[k] = r
    return out


def backend_for(device: Any) -> str:
    """The backend of a job on ``device``: ``nccl`` when it is a CUDA GPU (or, not named,
    when there is one), else ``gloo``."""
    if device in (None, "", "auto"):
        return "nccl" if torch.cuda.is_available() else "gloo"
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def under_torchrun() -> bool:
    """Whether this process was started by torchrun (or another launcher setting its env)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1


@dataclass
class Group:
    """This process's rank in a job of ``world`` processes."""

    rank: int
    world: int

    @classmethod
    def init(cls, rank: int | None = None, world: int | None = None, init_method: str | None = None,
             backend: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> "Group":
        """Join the job: from torchrun's environment (``env://``) or the given rendezvous
        (``file://PATH`` or ``tcp://127.0.0.1:PORT``); gloo on CPUs, NCCL with CUDA."""
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        delta = datetime.timedelta(seconds=timeout)
        kw: dict[str, Any] = {"timeout": delta}
        if init_method is not None:
            kw.update(init_method=init_method, rank=rank, world_size=world)
        elif int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0:
            # a torchrun restart: its store outlives the failed attempt, so this attempt's keys
            # get their own prefix (else the new processes find the dead ones' addresses)
            r, w = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
            agent = os.environ.get("TORCHELASTIC_USE_AGENT_STORE", "").lower() == "true"
            store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), w,
                                  is_master=not agent and r == 0, timeout=delta)
            store = dist.PrefixStore(f"seqgan/attempt-{os.environ['TORCHELASTIC_RESTART_COUNT']}", store)
            kw.update(store=store, rank=r, world_size=w)
        dist.init_process_group(backend, **kw)
        global _joined
        _joined = True
        return cls(dist.get_rank(), dist.get_world_size())

    def barrier(self) -> None:
        """Wait until every rank is here."""
        dist.barrier()

    def gather(self, obj: Any) -> list[Any] | None:
        """Every rank's ``obj`` in rank order, on rank 0 (None elsewhere)."""
        out = [None] * self.world if self.rank == 0 else None
        dist.gather_object(obj, out, dst=0)
        return out

    def broadcast(self, obj: Any = None) -> Any:
        """Rank 0's ``obj``, on every rank."""
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def close(self) -> None:
        """Leave the job (destroy the default process group)."""
        if dist.is_initialized():
            dist.destroy_process_group()
