"""``seqgan coevolve`` under torchrun with a fault placed by a hook: on the launcher's first
attempt (TORCHELASTIC_RESTART_COUNT 0) rank 1 SIGKILLs itself at its 3rd rollout, so the
kill lands by construction, mid generation; later attempts run clean."""
from __future__ import annotations

import os
import signal
import sys

from seqgan.training.rollout import RolloutPolicy

if os.environ.get("RANK") == "1" and os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0":
    real, count = RolloutPolicy.rewards, [0]

    def rewards(self, *a, **k):
        count[0] += 1
        if count[0] == 3:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(self, *a, **k)

    RolloutPolicy.rewards = rewards

from seqgan.__main__ import main  # noqa: E402

main(args=sys.argv[1:], prog_name="seqgan")
