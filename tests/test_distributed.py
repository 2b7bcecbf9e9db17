"""Coevolution on several processes (torch.distributed, gloo, processes started by the test
with torch.multiprocessing and a file:// rendezvous): 1, 2 and 4 workers give bit-identical
populations; a worker SIGKILLed mid-generation stops the job with one line naming it, and
the same command resumes — with another number of workers — to the uninterrupted result;
torchrun gives the same population too, and under --max-restarts resumes a killed job by
itself."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import seqgan
from dist_workers import killing_worker
from helpers import invoke, succeeds
from seqgan.distributed.coevolve import spawn
from seqgan.errors import UserError

PRETRAIN = ["pretrain", "--data", "oracle", "--preset", "quick", "--seed", "3", "--epochs", "2",
            "--device", "cpu"]
OPTIONS = {"grid": "2x2", "generations": 3, "d_pretrain": 1, "g_loss": "random"}


def outcome(run: Path) -> tuple:
    """What must be identical: every file's sha256, every cell's state, the metrics."""
    state = json.loads((run / "population" / "state.json").read_text())
    recs = [{k: v for k, v in json.loads(line).items() if k != "seconds"}
            for line in (run / "metrics.jsonl").read_text().splitlines()]
    return state["generation"], state["files"], state["cells"], recs


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("dist") / "mle"
    succeeds(invoke(*PRETRAIN, "--out", run))
    return run


@pytest.fixture(scope="module")
def reference(pretrained, tmp_path_factory) -> tuple:
    """The in-process population (one intra-op thread, as every worker uses)."""
    run = tmp_path_factory.mktemp("ref") / "run"
    shutil.copytree(pretrained, run)
    seqgan.open_run(run).coevolve(device="cpu", progress=False, **OPTIONS)
    return outcome(run)


@pytest.mark.parametrize("workers", [2, 4])
def test_workers_give_the_in_process_population_bit_for_bit(tmp_path, pretrained, reference, workers):
    run = tmp_path / "run"
    shutil.copytree(pretrained, run)
    out = seqgan.open_run(run).coevolve(device="cpu", workers=workers, **OPTIONS)
    assert out["generation"] == 3 and out["bytes_sent_rank0"] > 0
    assert outcome(run) == reference


def test_a_killed_worker_stops_the_job_and_the_run_resumes(tmp_path, pretrained, reference, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(pretrained, run)
    r = seqgan.open_run(run)
    with r.lock():  # the options, saved as `seqgan coevolve --workers K` does before it starts them
        r._apply_train_options(dict(OPTIONS), "coevolve")
        r.dir.save_config()
    monkeypatch.setenv("SEQGAN_TEST_VICTIM", "1:3")  # rank 1, its 3rd rollout: generation 2
    with pytest.raises(UserError) as e:
        spawn(run, 2, "cpu", target=killing_worker, timeout=60)
    line = str(e.value)
    assert "worker 1 (rank 1) was killed by signal 9 (SIGKILL)" in line and "resume" in line
    assert json.loads((run / "population" / "state.json").read_text())["generation"] == 1
    monkeypatch.delenv("SEQGAN_TEST_VICTIM")
    # the same command, with another number of workers: cells are reassigned
    succeeds(invoke("coevolve", run, "--workers", "4", "--device", "cpu"))
    assert outcome(run) == reference


def torchrun(run: Path, *launcher: str, target: list[str]) -> subprocess.CompletedProcess:
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(root), str(root / "tests"), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--rdzv-backend", "c10d",
           "--rdzv-endpoint", "127.0.0.1:0", *launcher, *target, "coevolve", str(run), "--grid", "2x2",
           "--generations", "3", "--d-pretrain", "1", "--g-loss", "random", "--device", "cpu"]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def test_torchrun_gives_the_same_population(tmp_path, pretrained, reference):
    run = tmp_path / "run"
    shutil.copytree(pretrained, run)
    p = torchrun(run, target=["-m", "seqgan"])
    assert p.returncode == 0, p.stderr[-3000:]
    assert "coevolved" in p.stdout and "Traceback" not in p.stderr
    assert outcome(run) == reference


def test_torchrun_restarts_a_killed_job_which_resumes(tmp_path, pretrained, reference):
    run = tmp_path / "run"
    shutil.copytree(pretrained, run)
    killer = str(Path(__file__).with_name("dist_torchrun_kill.py"))
    p = torchrun(run, "--max-restarts", "3", target=[killer])  # (a restart may need a retry to rendezvous)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "exitcode: -9" in p.stderr and "coevolved" in p.stdout  # killed, restarted, finished
    assert outcome(run) == reference


@pytest.mark.parametrize("code, status, err", [(0, 0, ""), (None, 0, ""), (2, 2, ""), ("stopped", 1, "stopped")])
def test_a_process_that_joined_a_job_leaves_at_once_with_its_status(code, status, err):
    """group.leave: after a job, flush and exit with the job's status without the
    interpreter's teardown (whose atexit handlers do not run); a process that joined no
    job gets an ordinary SystemExit."""
    from seqgan.distributed import group
    with pytest.raises(SystemExit) as e:
        group.leave(code)
    assert e.value.code == code
    script = ("import atexit, sys\nfrom seqgan.distributed import group\n"
              "atexit.register(lambda: print('teardown ran'))\n"
              f"group._joined = True\nprint('summary', end='')\ngroup.leave({code!r})\n")
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert (p.returncode, p.stdout, p.stderr.strip()) == (status, "summary", err)
