"""Worker functions for tests/test_distributed.py, importable by spawned processes.

:func:`killing_worker` is the product's worker with a fault placed by a hook: the rank
named in ``SEQGAN_TEST_VICTIM`` (``RANK:N``) SIGKILLs itself at its N-th Monte Carlo
rollout, so the kill lands by construction, mid generation.
"""
from __future__ import annotations

import os
import signal

from seqgan.distributed.coevolve import _worker
from seqgan.training.rollout import RolloutPolicy


def killing_worker(rank: int, *args) -> None:
    victim, _, nth = os.environ.get("SEQGAN_TEST_VICTIM", "").partition(":")
    if victim and int(victim) == rank:
        real, count = RolloutPolicy.rewards, [0]

        def rewards(self, *a, **k):
            count[0] += 1
            if count[0] == int(nth):
                os.kill(os.getpid(), signal.SIGKILL)
            return real(self, *a, **k)

        RolloutPolicy.rewards = rewards
    _worker(rank, *args)
