"""Data-parallel SeqGAN/ORGAN: ``seqgan pretrain`` and ``seqgan train`` on K processes.

Every rank holds the whole training state and runs the same loop
(:class:`~seqgan.training.loop.RunTrainer`); within each batch it computes on its own
contiguous slice of rows, and the gradients are summed over the ranks with one all-reduce
of a flat buffer before every optimizer step (:class:`~seqgan.training.shard.Shard`). The
run's batch size B is the global batch: K ranks take B/K rows each and follow the
single-process run with batch B — MLE and discriminator losses and weights to float
tolerance, and the adversarial step too given the same rewards. What cannot match is the
Monte Carlo rollout: each rank rolls out its own rows from its own random stream (a rank
cannot draw another's completions without doing its work), so rewards are a different
sample of the same distribution. Everything drawn for the whole batch (permutations, the
generator's samples, D's dropout masks) comes from the global stream, which therefore stays
identical on every rank; :func:`work` checks at the end that every rank holds the same
weights.

Rank 0 alone writes the run (lock, config, checkpoints, metrics, snapshots); the others read
the checkpoint it resumed and wait on barriers. Collectives time out (``--timeout``), so a
dead rank stops the job instead of hanging it. gloo on CPUs, NCCL when the job's device is
a CUDA GPU (each rank on GPU ``LOCAL_RANK``).

Launch: ``torchrun --nproc-per-node K -m seqgan pretrain|train ...`` (every rank calls
:func:`launch` through the CLI), or ``--workers K``, which starts K processes on this
machine (:func:`spawn`, the same watcher as coevolution's).
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import sys
from pathlib import Path
from typing import Any, Callable, ContextManager

import torch
import torch.distributed as dist

from seqgan.distributed import coevolve
from seqgan.distributed.group import DEFAULT_TIMEOUT, Group, backend_for, under_torchrun
from seqgan.errors import UserError
from seqgan.runs.metrics_log import MetricsLog
from seqgan.runs.rundir import RunDir
from seqgan.training.loop import RunTrainer, nothing_to_train
from seqgan.training.shard import Shard
from seqgan.training.state import new_counters, resolve_device


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _all_reduce(t: torch.Tensor) -> None:
    dist.all_reduce(t)


def device_for(device: Any, rank: int) -> torch.device:
    """The rank's device: with CUDA and no GPU named (None, ``auto``, ``cuda``), GPU
    ``LOCAL_RANK`` (modulo the GPUs there are), else ``device`` itself."""
    if device in (None, "", "auto", "cuda") and torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", rank))
        device = f"cuda:{local % torch.cuda.device_count()}"
    dev = resolve_device(device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)  # NCCL's object collectives use the current device
    return dev


def check_workers(cfg: Any, world: int) -> None:
    """A UserError unless every one of ``world`` ranks gets rows of each generator batch."""
    B = cfg.train.batch_size
    if world > B:
        raise UserError(f"{world} processes for batch size {B}: each process computes on a slice "
                        f"of every batch, so use at most {B} processes or a larger --batch-size")


def _digest(trainer: RunTrainer) -> str:
    """A hash of every weight of G, D and G_β on this rank."""
    h = hashlib.blake2b(digest_size=16)
    st = trainer.st
    for model in (st.G, st.D, st.rollout.model if st.rollout is not None else None):
        if model is not None:
            for p in model.parameters():
                h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _sync_rng(group: Group, dev: torch.device) -> None:
    """Every rank takes rank 0's global random state (CPU and its GPU): a checkpoint keeps only
    rank 0's, under rank 0's GPU number."""
    mine = (torch.get_rng_state().numpy().tobytes(),
            torch.cuda.get_rng_state(dev).numpy().tobytes() if dev.type == "cuda" else None)
    cpu, gpu = group.broadcast(mine)
    torch.set_rng_state(torch.frombuffer(bytearray(cpu), dtype=torch.uint8))
    if gpu is not None:
        torch.cuda.set_rng_state(torch.frombuffer(bytearray(gpu), dtype=torch.uint8), dev)


def work(group: Group, path: str | Path, device: Any = None, allow_import: bool = False,
         progress: bool | None = None, log: Callable[[str], Any] = _stderr, command: str = "train",
         epochs: int | None = None) -> dict[str, Any] | None:
    """One rank's part of ``seqgan pretrain`` (MLE to ``epochs``) or ``seqgan train`` (every
    phase) on the run at ``path``, its options already in config.json: rank 0's summary
    (the counters, the last metrics, ``workers`` and ``in_sync``), None elsewhere."""
    dev = device_for(device, group.rank)
    rank0 = group.rank == 0
    shard = Shard(group.rank, group.world, _all_reduce)
    trainer = RunTrainer(RunDir(path), dev, log if rank0 else (lambda m: None),
                         progress if rank0 else False, allow_import, shard=shard)
    if rank0:
        trainer.resume()  # recovers and repairs what a kill left: before anyone reads
    group.barrier()
    if not rank0:
        trainer.resume()
    _sync_rng(group, dev)
    if command == "pretrain":
        if epochs is not None:
            trainer.set_mle_epochs(epochs)
        trainer.pretrain_mle()
    else:
        trainer.train_all()
    digests = group.gather(_digest(trainer))
    group.barrier()  # nobody leaves while another still talks to it
    if not rank0:
        return None
    in_sync = len(set(digests)) == 1
    if not in_sync:
        log(f"warning: the {group.world} processes ended with different weights; rank 0's were saved")
    out = {**trainer.state, "workers": group.world, "backend": dist.get_backend(), "in_sync": in_sync}
    if command == "train":
        last = trainer.run.metrics.read()
        out["metrics"] = last[-1]["metrics"] if last else {}
    return out


@contextlib.contextmanager
def _prepare(opener: Callable[[], ContextManager], command: str, options: dict[str, Any],
             world: int):
    """Rank 0 (or the process that starts the workers) before the job: holds the run's lock
    for the job's life, checks and saves the options; yields the result of a job with nothing
    to do (``train`` on a run that has its epochs), else None."""
    with opener() as run:
        run._refuse_population()
        changed, stop = False, None
        if command == "train":
            changed = run._apply_train_options(options)
            run.dir.checkpoints.recover()
            st = {**new_counters(), **(run.state or {})}
            st = {k: st[k] for k in new_counters()}
            stop = nothing_to_train(run.path, st, run.config.train, options.get("epochs"), changed)
        check_workers(run.config, world)
        if changed and stop is None:
            run.dir.save_config()
        yield stop


def torchrun_job(setup: Callable[[], ContextManager], job: Callable[[Group], Any], device: Any,
                 timeout: float = DEFAULT_TIMEOUT) -> Any:
    """Every rank of a torchrun job: join the group (NCCL on GPUs, gloo otherwise), rank 0
    enters ``setup()`` (its UserError, or a result that ends the job early, reaches every
    rank), then all run ``job(group)``; rank 0's result, None elsewhere. Only rank 0 reports
    a UserError; the others exit with status 2."""
    rank = int(os.environ.get("RANK", 0))
    device_for(device, rank)
    group = Group.init(timeout=timeout, backend=backend_for(device))
    try:
        with contextlib.ExitStack() as stack:
            said = None
            if group.rank == 0:
                try:
                    stop = stack.enter_context(setup())
                    said = None if stop is None else ("stop", stop)
                except UserError as e:
                    said = ("error", str(e))
            said = group.broadcast(said)
            if said is not None and said[0] == "error":
                raise UserError(said[1])
            if said is not None:
                return said[1] if group.rank == 0 else None
            return job(group)
    except UserError:
        if group.rank != 0:
            raise SystemExit(2) from None
        raise
    finally:
        group.close()


def spawn(path: str | Path, command: str, workers: int, device: Any = None, allow_import: bool = False,
          timeout: float = DEFAULT_TIMEOUT, epochs: int | None = None) -> dict[str, Any]:
    """Run ``command`` (``pretrain`` or ``train``) on ``workers`` processes of this machine
    (the caller holds the run's lock; each process runs coevolution's worker with this job);
    rank 0's summary. A worker that fails or dies ends the job with one line naming its
    rank; the same command resumes from the last checkpoint."""
    job = functools.partial(work, command=command, epochs=epochs)
    target = functools.partial(coevolve._worker, job=job)
    return coevolve.spawn(path, workers, device, allow_import, timeout, target, "its last checkpoint")


def launch(path: str | Path, command: str, opener: Callable[[], ContextManager], device: Any = None,
           workers: int = 1, timeout: float = DEFAULT_TIMEOUT, progress: bool | None = None,
           log: Callable[[str], Any] = _stderr, tensorboard: bool = False, epochs: int | None = None,
           options: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """``seqgan pretrain|train`` data-parallel: under torchrun on the launcher's processes
    (every rank calls this; rank 0 opens the run with ``opener``, a context manager yielding
    the locked :class:`seqgan.Run`), else on ``workers`` processes started here. Rank 0's
    summary (see :func:`work`), None on the other ranks. With ``tensorboard``, rank 0 logs
    the records the job wrote to ``RUN/tensorboard/`` when it ends."""
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise UserError(f"--workers must be an integer >= 1; got {workers}")
    options = options or {}
    allow = options.get("objective") is not None
    if tensorboard:  # (an optional package: imported only when asked for)
        from seqgan.report.tensorboard import require_tensorboard, with_tensorboard

        require_tensorboard()
    start = len(MetricsLog(Path(path) / "metrics.jsonl").read()) if tensorboard else 0
    if under_torchrun():
        world = int(os.environ["WORLD_SIZE"])
        job = functools.partial(work, path=str(path), device=device, allow_import=allow, progress=progress,
                                log=log, command=command, epochs=epochs)
        out = torchrun_job(lambda: _prepare(opener, command, options, world), job, device, timeout)
    else:
        with _prepare(opener, command, options, workers) as stop:
            out = stop if stop is not None else spawn(path, command, workers, device, allow, timeout, epochs)
    if tensorboard and out is not None and "already_trained" not in out:
        run = RunDir(path)
        with with_tensorboard(run.path, run.vocab, (), True) as (board,):
            board.replay(run.metrics.read()[start:])
    return out
