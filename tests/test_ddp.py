"""Data-parallel SeqGAN/ORGAN (torch.distributed, gloo, processes started by the test with
torch.multiprocessing and a file:// rendezvous, or by torchrun on 127.0.0.1): 2 processes
on a run with batch B follow 1 process with batch B (each computes on B/2 rows) — MLE,
discriminator and adversarial losses, metrics and every weight to float tolerance, the
adversarial step given the same rewards (a deterministic reward replaces the Monte Carlo
rollout, whose draws cannot be split); rank 0 alone writes the run; torchrun creates a run
with ``pretrain`` and trains it with ``train``, and one process resumes what it wrote."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import seqgan
from ddp_workers import rollout_free, worker
from helpers import fails_cleanly, invoke
from seqgan.distributed import coevolve
from seqgan.files import load_tensors
from seqgan.training.rollout import RolloutPolicy
from seqgan.training.shard import Shard

CREATE = {"data": "oracle", "preset": "quick", "seed": 3, "epochs": 2}  # batch 32: 2 × 16 rows
# D rounds of 100 positives + 100 samples at D batch 64: a partial last batch, split unevenly
OPTIONS = {"epochs": 2, "d_pretrain_steps": 1, "d_samples": 100, "reward_baseline": True, "g_loss": "random"}
FILES = ("generator", "discriminator", "rollout", "optim-g-mle", "optim-g-adv", "optim-d")


def quiet(msg: str) -> None:
    pass


def records(run: Path) -> list[dict]:
    """The metrics log without wall-clock times."""
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


def assert_close_records(got: list[dict], want: list[dict]) -> None:
    assert [(r["phase"], r["epoch"], sorted(r["metrics"])) for r in got] == \
        [(r["phase"], r["epoch"], sorted(r["metrics"])) for r in want]
    for g, w in zip(got, want):
        for k, v in w["metrics"].items():
            assert g["metrics"][k] == pytest.approx(v, rel=1e-5, abs=1e-6), (g["phase"], g["epoch"], k)


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    """A new quick oracle run, nothing trained."""
    run = tmp_path_factory.mktemp("ddp") / "fresh"
    seqgan.create_run(run, log=quiet, **CREATE)
    return run


@pytest.fixture(scope="module")
def reference(fresh, tmp_path_factory) -> Path:
    """One process, batch 32, every phase; the deterministic reward instead of rollouts."""
    run = tmp_path_factory.mktemp("ref") / "run"
    shutil.copytree(fresh, run)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(RolloutPolicy, "rewards", rollout_free)
        seqgan.open_run(run, log=quiet).train(device="cpu", progress=False, **OPTIONS)
    return run


def test_two_processes_follow_one_process_with_the_same_global_batch(tmp_path, fresh, reference, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(fresh, run)
    # the spawned workers: rollout_free rewards, and rank 1 may not write into the run
    monkeypatch.setattr(coevolve, "_worker", worker)
    out = seqgan.open_run(run, log=quiet).train(device="cpu", progress=False, workers=2, **OPTIONS)
    assert out["workers"] == 2 and out["backend"] == "gloo" and out["in_sync"]
    assert (out["phase"], out["mle_epoch"], out["d_round"], out["adv_epoch"]) == ("done", 2, 1, 2)
    got, want = records(run), records(reference)
    assert {r["phase"] for r in want} == {"mle", "d-pretrain", "adversarial"}
    assert_close_records(got, want)
    for name in FILES:
        a, b = load_tensors(run / "checkpoint" / f"{name}.safetensors"), \
            load_tensors(reference / "checkpoint" / f"{name}.safetensors")
        assert a.keys() == b.keys()
        for k in a:
            assert torch.allclose(a[k].double(), b[k].double(), rtol=1e-4, atol=5e-5), (name, k)
    assert json.loads((run / "config.json").read_text())["config"] == \
        json.loads((reference / "config.json").read_text())["config"]


def torchrun(*args) -> subprocess.CompletedProcess:
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--rdzv-backend", "c10d",
           "--rdzv-endpoint", "127.0.0.1:0", "-m", "seqgan", *map(str, args), "--device", "cpu"]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def test_torchrun_pretrains_a_new_run_then_trains_it_and_one_process_resumes(tmp_path, reference):
    run = tmp_path / "run"
    p = torchrun("pretrain", "--data", "oracle", "--preset", "quick", "--seed", "3", "--epochs", "2", "--out", run)
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.count("pretrained") == 1 and "Traceback" not in p.stderr  # rank 0 reports
    assert_close_records(records(run), [r for r in records(reference) if r["phase"] == "mle"])
    p = torchrun("train", run, "--epochs", "1", "--d-pretrain-steps", "1")  # Monte Carlo rollouts
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.count("trained") == 1 and "Traceback" not in p.stderr
    assert [r["phase"] for r in records(run)][-2:] == ["d-pretrain", "adversarial"]
    out = seqgan.open_run(run, log=quiet).train(device="cpu", progress=False, epochs=2)
    assert (out["phase"], out["adv_epoch"]) == ("done", 2)


def test_bad_worker_counts_fail_in_one_line_before_any_process_starts(fresh, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(fresh, run)
    before = (run / "config.json").read_text()
    fails_cleanly(invoke("train", run, "--workers", "0", "--device", "cpu"), "--workers", ">= 1")
    fails_cleanly(invoke("train", run, "--workers", "33", "--epochs", "5", "--device", "cpu"),
                  "33 processes for batch size 32")
    fails_cleanly(invoke("pretrain", "--out", run, "--workers", "33", "--device", "cpu"), "batch size 32")
    assert (run / "config.json").read_text() == before and not (run / "checkpoint").exists()


def test_the_local_stream_leaves_the_global_one_alone_and_differs_by_rank_and_key():
    def draw(shard, key):
        with shard.local_stream(torch.device("cpu"), key):
            return torch.rand(4)

    torch.manual_seed(5)
    state = torch.get_rng_state()
    reduce = lambda t: None  # noqa: E731 - a job of one: the sum is the identity
    a0, a1 = draw(Shard(0, 2, reduce), 0), draw(Shard(1, 2, reduce), 0)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a0, draw(Shard(0, 2, reduce), 0))  # the same state, rank and key: the same draws
    assert not torch.equal(a0, a1) and not torch.equal(a0, draw(Shard(0, 2, reduce), 1))
    assert torch.equal(draw(Shard(), 0), torch.rand(4, generator=torch.Generator().set_state(state)))


def test_shard_bounds_cover_a_batch_once():
    for n in (1, 7, 32, 200):
        for world in (1, 2, 3, 4):
            rows = [i for r in range(world) for i in range(*Shard(r, world).bounds(n))]
            assert rows == list(range(n))


@pytest.mark.gpu
def test_nccl_data_parallel_on_one_gpu(tmp_path, fresh):
    """NCCL with one rank (the data-parallel path: sharded steps and all-reduces on the GPU),
    then torchrun with one process (the ordinary path under the launcher) resumes it."""
    from seqgan.distributed.data_parallel import spawn

    run = tmp_path / "run"
    shutil.copytree(fresh, run)
    r = seqgan.open_run(run, log=quiet)
    with r.lock():  # the options, saved as `seqgan train --workers K` does before it starts them
        r._apply_train_options({"epochs": 1, "d_pretrain_steps": 1})
        r.dir.save_config()
    out = spawn(run, "train", 1, "cuda", timeout=120)
    assert out["backend"] == "nccl" and out["in_sync"] and (out["phase"], out["adv_epoch"]) == ("done", 1)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "1", "-m", "seqgan",
                        "train", str(run), "--epochs", "2", "--device", "cuda"], env=env, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "trained" in p.stdout and seqgan.open_run(run).state["adv_epoch"] == 2
