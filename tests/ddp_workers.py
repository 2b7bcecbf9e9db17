"""Helpers for tests/test_ddp.py, importable by spawned processes.

:func:`rollout_free` replaces the Monte Carlo rollout by a deterministic reward, so a
data-parallel job and a single process can be compared exactly through the whole
adversarial step. :func:`worker` is the product's spawned worker with that reward and, on
every rank but 0, a guard that fails the job if the rank writes anything into the run.
"""
from __future__ import annotations

import builtins
import io
import os
from pathlib import Path

import torch

from seqgan.distributed.coevolve import _worker
from seqgan.training.rollout import RolloutPolicy


def rollout_free(self, seqs: torch.Tensor, score, rollout_num: int = 16, chunk: int = 32_768) -> torch.Tensor:
    """Q (B, T) with Q_t = R(Y)·(t+1)/T: the real reward of the whole sequence, no completions."""
    B, T = seqs.shape
    return score(seqs, B).unsqueeze(1) * torch.arange(1, T + 1, device=seqs.device) / T


def guard_writes(run: str) -> None:
    """From now on, creating, opening for writing, renaming or making a folder anywhere in
    ``run`` raises PermissionError in this process."""
    root = os.path.realpath(run)

    def inside(path) -> bool:
        try:
            p = os.path.realpath(os.fspath(path))
        except TypeError:  # a file descriptor
            return False
        return p == root or p.startswith(root + os.sep)

    def refuse(what, path):
        raise PermissionError(f"rank {os.environ.get('RANK', '?')} {what} {path} in the run")

    real_open, real_os_open = builtins.open, os.open
    real_replace, real_rename, real_mkdir = os.replace, os.rename, os.mkdir

    def guarded_open(file, mode="r", *a, **k):
        if inside(file) and any(c in mode for c in "wax+"):
            refuse("opened for writing", file)
        return real_open(file, mode, *a, **k)

    def guarded_os_open(path, flags, *a, **k):
        if inside(path) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            refuse("opened for writing", path)
        return real_os_open(path, flags, *a, **k)

    def renaming(real):
        def f(src, dst, *a, **k):
            if inside(src) or inside(dst):
                refuse("renamed", dst)
            return real(src, dst, *a, **k)
        return f

    def guarded_mkdir(path, *a, **k):
        if inside(path):
            refuse("made a folder", path)
        return real_mkdir(path, *a, **k)

    builtins.open = io.open = guarded_open
    os.open, os.mkdir = guarded_os_open, guarded_mkdir
    os.replace, os.rename = renaming(real_replace), renaming(real_rename)
    Path.touch = lambda self, *a, **k: refuse("touched", self)


def worker(rank: int, world: int, init_method: str, path: str, *args, **kw) -> None:
    """The product's worker with :func:`rollout_free` rewards; ranks but 0 may not write."""
    RolloutPolicy.rewards = rollout_free
    if rank != 0:
        guard_writes(path)
    _worker(rank, world, init_method, path, *args, **kw)
