"""Coevolution on several processes: the worker each rank runs, and ``--workers K``.

Every rank opens the run, owns a block of cells (:func:`~seqgan.distributed.group.blocks`),
exchanges weights with the ranks of its cells' neighbours
(:class:`~seqgan.distributed.exchange.NeighbourExchange`) and runs the same
:class:`~seqgan.evolve.coevolve.Coevolution` as a single process would. Because a cell's
update depends only on its neighbourhood's weights and on (seed, cell, generation), 1, 2
or 4 workers give bit-identical populations on the CPU (with one intra-op thread per
process, as workers use; a single process must run with ``OMP_NUM_THREADS=1`` to match).

:func:`spawn` starts K workers on this machine (``torch.multiprocessing``, a ``file://``
rendezvous) and watches them: a worker that dies (SIGKILL, out of memory) stops the job
with one line naming its rank, and the others are stopped with it; the same command then
resumes from the last complete generation, with any number of workers (cells are
reassigned). Under ``torchrun`` every rank calls :func:`work` itself.
"""
from __future__ import annotations

import json
import os
import signal
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch
import torch.multiprocessing as mp

from seqgan.distributed.exchange import NeighbourExchange
from seqgan.distributed.group import DEFAULT_TIMEOUT, Group, backend_for, blocks, leave
from seqgan.errors import UserError
from seqgan.evolve.coevolve import Coevolution
from seqgan.evolve.grid import Torus
from seqgan.runs.rundir import RunDir


def work(group: Group, path: str | Path, device: Any = None, allow_import: bool = False,
         progress: bool | None = None, log: Callable[[str], Any] = print,
         callbacks: tuple = ()) -> dict[str, Any] | None:
    """One rank's part of a coevolution job on the run at ``path`` (its options already in
    its config.json); the summary on rank 0, None elsewhere."""
    run = RunDir(path)
    torus = Torus.parse(run.config.evolve.grid)
    owned = blocks(torus.size, group.world)[group.rank]
    if device is None and torch.cuda.is_available():
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', group.rank)) % torch.cuda.device_count()}"
    exchange = NeighbourExchange(torus.neighbourhoods(), group.rank, group.world)
    co = Coevolution(run, run.config.evolve, device, log if group.rank == 0 else (lambda m: None),
                     progress, allow_import, callbacks, group=group, owned=owned, exchange=exchange)
    co.resume()
    co.evolve()
    # every rank done with every message before any leaves: a rank that tears its process
    # group down while a peer's transport still talks to it can abort that peer
    group.barrier()
    if group.rank != 0:
        return None
    best, score = co.best()
    return {"generation": co.pop.generation, "best_cell": best, "score": score, "seconds": co.seconds,
            "bytes_sent_rank0": exchange.bytes_sent}


def _worker(rank: int, world: int, init_method: str, path: str, device: Any, allow_import: bool,
            timeout: float, out: str, job: Callable = work) -> None:
    """A spawned worker: one intra-op thread, join the group (NCCL for a CUDA device, else
    gloo), ``job`` (by default :func:`work`); rank 0 writes the summary (or the one-line error
    of any rank) to ``out``."""
    torch.set_num_threads(1)
    group = Group.init(rank, world, init_method, backend=backend_for(device), timeout=timeout)
    status = 0
    try:
        summary = job(group, path, device, allow_import, progress=False)
        if rank == 0:
            Path(out).write_text(json.dumps({"summary": summary}))
    except UserError as e:
        Path(f"{out}.{rank}").write_text(json.dumps({"error": str(e)}))
        status = 2
    finally:
        group.close()
    leave(status)  # (any other exception has propagated to spawn, traceback and all)


def spawn(path: str | Path, workers: int, device: Any = None, allow_import: bool = False,
          timeout: float = DEFAULT_TIMEOUT, target: Callable = _worker,
          resume_from: str = "the last complete generation") -> dict[str, Any]:
    """Run the coevolution of ``path`` on ``workers`` processes of this machine; rank 0's
    summary. A worker that fails or dies ends the job with one line naming its rank
    (``target``: the worker function, :func:`_worker`; tests wrap it to place faults;
    data-parallel training passes it its own job, and says where it resumes from)."""
    with tempfile.TemporaryDirectory(prefix="seqgan-workers-") as tmp:
        out = str(Path(tmp) / "result.json")
        ctx = mp.start_processes(target, args=(workers, f"file://{tmp}/rendezvous", str(path), device,
                                                allow_import, timeout, out),
                                 nprocs=workers, join=False, start_method="spawn")
        try:
            while not ctx.join():
                pass
        except mp.ProcessExitedException as e:
            errors = [json.loads(Path(f"{out}.{r}").read_text())["error"] for r in range(workers)
                      if Path(f"{out}.{r}").is_file()]
            if errors:
                raise UserError(errors[0]) from None
            how = (f"was killed by signal {-e.exit_code} ({signal.Signals(-e.exit_code).name})"
                   if e.exit_code < 0 else f"exited with status {e.exit_code}")
            raise UserError(f"{path}: worker {e.error_index} (rank {e.error_index}) {how}; the other "
                            f"workers were stopped; run the same command again to resume from "
                            f"{resume_from}") from None
        except mp.ProcessRaisedException as e:
            raise UserError(f"{path}: worker {e.error_index} failed: {str(e).strip().splitlines()[-1]}") from None
        return json.loads(Path(out).read_text())["summary"]
