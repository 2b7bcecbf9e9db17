"""A fork server for the seqgan CLI, for tests that kill or hold a real process.

``Server(tmp)`` starts a Python that imports torch and the CLI once, then runs each command
in a forked child (a fresh process as far as training is concerned). Faults are placed by
hooks, so they land by construction on any machine: ``kill="HOOK:N"`` makes the child
SIGKILL itself at the N-th hit of HOOK (inside run creation, a checkpoint file half
written, between the two renames of a swap, half a metrics line written, a D step, a
rollout, a generator update); ``pause="HOOK"`` holds it at a barrier at every hit of HOOK
until the test calls :meth:`Server.resume`.
"""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

KILLER = r"""
# A fork server for the seqgan CLI: torch is imported once, each command runs in a forked
# child (a fresh process as far as training is concerned: the server itself never runs a
# tensor op). Reads JSON lines {"args": [...], "kill": "HOOK:N", "pause": "HOOK", "log":
# PATH} on stdin, answers "pid PID" when the child starts and "exit CODE" when it ends
# (-9: SIGKILLed). The child SIGKILLs itself at the N-th hit of the kill hook; at every hit
# of the pause hook it waits at a barrier: it creates PATH.paused-K and goes on once the
# test has created PATH.resume-K (K = 1, 2, ...).
import json, os, signal, sys, time
from pathlib import Path

hook, nth, count = "", 0, [0]
pause_hook, pauses, barrier = "", [0], ""


def hit(name):
    if name == pause_hook:
        pauses[0] += 1
        k = pauses[0]
        Path(f"{barrier}.paused-{k}").touch()
        deadline = time.monotonic() + 300  # (a bound for a test that died, not a timing)
        while not os.path.exists(f"{barrier}.resume-{k}") and time.monotonic() < deadline:
            time.sleep(0.001)
    if name == hook:
        count[0] += 1
        return count[0] == nth
    return False


def die():
    os.kill(os.getpid(), signal.SIGKILL)


import torch
import seqgan.files as files
from seqgan.cli import main
from seqgan.runs.checkpoints import CKPT_TMP
TMPS = (CKPT_TMP, ".population.tmp")  # a pair's and a population's checkpoint being written
from seqgan.runs.metrics_log import MetricsLog
from seqgan.training.d_training import DiscriminatorTrainer
from seqgan.training.rollout import RolloutPolicy

_write = files.atomic_write_bytes  # every file a run writes goes through it
def atomic_write_bytes(path, data):
    path = Path(path)
    if path.parent.name.endswith(".creating") and hit("create"):
        die()
    if path.parent.name in TMPS and path.suffix == ".safetensors" and hit("tensorwrite"):
        (path.parent / f".{path.name}.half.tmp").write_bytes(data[: len(data) // 2])
        die()
    return _write(path, data)
files.atomic_write_bytes = atomic_write_bytes

_replace = os.replace
def replace(src, dst, *a, **k):
    if Path(src).name in TMPS and hit("swap"):  # old checkpoint already moved to .prev
        die()
    return _replace(src, dst, *a, **k)
os.replace = replace

_append = MetricsLog.append
def append(self, record):
    if hit("metrics"):
        line = json.dumps(record, sort_keys=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line[: len(line) // 2])
        die()
    return _append(self, record)
MetricsLog.append = append

def wrap(owner, name, hook_name):
    orig = getattr(owner, name)
    def patched(*a, **k):
        if hit(hook_name):
            die()
        return orig(*a, **k)
    setattr(owner, name, patched)

wrap(DiscriminatorTrainer, "_step", "dstep")
wrap(RolloutPolicy, "rewards", "rollout")
wrap(torch.optim.Adam, "step", "adam")
from seqgan.models.generator import Generator
wrap(Generator, "log_probs", "logprobs")

for line in sys.stdin:
    job = json.loads(line)
    pid = os.fork()
    if pid == 0:
        name, _, n = job["kill"].partition(":")
        hook, nth = name, int(n or 0)
        pause_hook, barrier = job.get("pause", ""), job["log"]
        fd = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        code = 1
        try:
            main(args=job["args"], prog_name="seqgan")
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException:
            import traceback
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    print(f"pid {pid}", flush=True)
    _, status = os.waitpid(pid, 0)
    print(f"exit {os.waitstatus_to_exitcode(status)}", flush=True)
"""


class Server:
    """The fork server above, as a subprocess of the test."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        script = tmp / "_fork_server.py"
        script.write_text(KILLER)
        e = dict(os.environ)
        # one thread: fast on a loaded 2-core machine, and the same math in every child
        e.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                 PYTHONPATH=os.pathsep.join([str(ROOT), e.get("PYTHONPATH", "")]))
        self.proc = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, env=e, bufsize=0,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.jobs, self.child = 0, None

    def start(self, args, kill: str = "", pause: str = "") -> int:
        """Start the CLI with ``args`` in a child; it SIGKILLs itself at the N-th hit of the
        hook ``kill`` ("HOOK:N") and waits at a barrier at every hit of ``pause``."""
        self.jobs += 1
        self.log = self.tmp / f"job{self.jobs}.log"
        self.pauses = 0
        self.proc.stdin.write(json.dumps({"args": [str(a) for a in args], "kill": kill,
                                          "pause": pause, "log": str(self.log)}).encode() + b"\n")
        self.child = int(self._answer("pid"))
        return self.child

    def next_pause(self) -> bool:
        """Wait until the child is held at its next pause (True) or has ended (False)."""
        k = self.pauses + 1
        deadline = time.monotonic() + 300  # (a bound for a hung child, not a timing)
        while time.monotonic() < deadline:
            if Path(f"{self.log}.paused-{k}").exists():
                self.pauses = k
                return True
            if self.finished():
                return False
            time.sleep(0.001)
        raise AssertionError("the child neither paused nor ended")

    def resume(self) -> None:
        """Let the child go on from the pause it is held at."""
        Path(f"{self.log}.resume-{self.pauses}").touch()

    def wait(self) -> tuple[int, str]:
        code = int(self._answer("exit"))
        self.child = None
        return code, self.log.read_text()

    def run(self, args, kill: str = "") -> tuple[int, str]:
        self.start(args, kill)
        return self.wait()

    def finished(self) -> bool:
        """Whether the running child has ended (its exit line is waiting)."""
        return bool(select.select([self.proc.stdout], [], [], 0)[0])

    def _answer(self, word: str) -> str:
        line = b""  # byte by byte, unbuffered: finished() must see what is not yet read
        while not line.endswith(b"\n"):
            c = os.read(self.proc.stdout.fileno(), 1)
            assert c, f"fork server ended: {line!r}"
            line += c
        line = line.decode()
        assert line.startswith(word + " "), f"fork server: {line!r}"
        return line.split()[1]

    def close(self) -> None:
        if self.child is not None and not self.finished():  # a test failed mid-command
            os.kill(self.child, signal.SIGKILL)
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
