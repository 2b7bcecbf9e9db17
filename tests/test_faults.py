"""Runs survive being killed: SIGKILL at many moments, resume, and end exactly as an
uninterrupted run (CPU, fixed seed); readers never disturb a run in training; NaN or bad
rewards stop training and keep the last good checkpoint.

The runs are real processes of the CLI, forked by a small server (``KILLER`` below,
written to tmp) that imports torch once. Most kills are placed exactly: the child SIGKILLs
itself at the N-th hit of a hook — inside the run-directory creation, between the two
renames of a checkpoint swap, half-way through writing a checkpoint file or a metrics
line, mid MLE epoch, mid discriminator round, mid Monte Carlo rollout, mid generator
update — so each lands by construction, on any machine. A kill from outside, at a seeded
random moment, is an extra that is retried a few times and not counted. Readers are tested
against a writer held at a barrier between the two renames of each checkpoint swap.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import time
from pathlib import Path

import pytest
import torch

from seqgan.files import load_tensors
from seqgan.runs.checkpoints import CKPT, CKPT_PREV, CKPT_TMP, PHASES
from seqgan.runs.rundir import RunDir

from forkserver import Server

ROOT = Path(__file__).resolve().parents[1]

PRETRAIN = ["pretrain", "--data", "oracle", "--preset", "quick", "--seed", "5", "--epochs", "3",
            "--device", "cpu"]
TRAIN_OPTS = ["--epochs", "4", "--d-pretrain-steps", "3", "--device", "cpu"]
CKPT_FILES = ("generator", "discriminator", "rollout", "optim-g-mle", "optim-g-adv", "optim-d", "rng")

def check_clean_exit(result: tuple[int, str]) -> None:
    code, log = result
    assert code == 0, log[-2000:]
    assert "Traceback" not in log


def snapshot(path: Path) -> dict[str, bytes]:
    return {str(f.relative_to(path)): f.read_bytes() for f in sorted(path.rglob("*")) if f.is_file()}


def assert_readable(path: Path, expect_checkpoint: bool) -> None:
    """A killed run opens, and its latest checkpoint verifies — without changing any file."""
    before = snapshot(path)
    run = RunDir(path)
    warnings: list[str] = []
    ck = run.checkpoints.load(warn=warnings.append)
    if not expect_checkpoint and ck is None:
        return
    assert ck is not None, f"no checkpoint in {sorted(before)}"
    state, paths = ck
    assert state["phase"] in PHASES
    for name, p in paths.items():
        assert isinstance(load_tensors(p), dict), name  # parses (an unused optimizer: {})
    assert int(state["metrics_lines"]) <= len(run.metrics.read())
    assert snapshot(path) == before, "opening a run must not change it"


def metrics_without_seconds(path: Path) -> list[dict]:
    lines = (path / "metrics.jsonl").read_text().splitlines()
    recs = [json.loads(line) for line in lines]
    for r in recs:
        assert r.pop("seconds") >= 0
    return recs


def assert_same_run(a: Path, b: Path) -> None:
    for name in CKPT_FILES:
        ta, tb = load_tensors(a / CKPT / f"{name}.safetensors"), load_tensors(b / CKPT / f"{name}.safetensors")
        assert ta.keys() == tb.keys(), name
        for k in ta:
            assert torch.equal(ta[k], tb[k]), f"{name}.safetensors: {k} differs"
    ga, gb = load_tensors(a / "generator-mle.safetensors"), load_tensors(b / "generator-mle.safetensors")
    assert all(torch.equal(ga[k], gb[k]) for k in ga)
    ma, mb = metrics_without_seconds(a), metrics_without_seconds(b)
    assert [(r["phase"], r["epoch"]) for r in ma] == [(r["phase"], r["epoch"]) for r in mb]
    assert ma == mb
    sa, sb = (json.loads((p / CKPT / "state.json").read_text()) for p in (a, b))
    for k in ("phase", "mle_epoch", "d_round", "adv_epoch", "metrics_lines"):
        assert sa[k] == sb[k], k
    assert sa["files"] == sb["files"]  # same sha256 of every checkpoint file


def kill_from_outside(server: Server, args, run: Path, rng: random.Random, tries: int = 3) -> int:
    """SIGKILL the CLI from the test at a seeded random moment after its next adversarial
    epoch is logged, retried up to ``tries`` times while the kill comes too late (the
    child finished first). An extra that is not counted: whether a signal from outside
    lands before the child's work ends depends on the machine. Returns the kills landed."""
    landed = 0
    for _ in range(tries):
        seen = n_metrics(run, "adversarial")
        pid = server.start(args)
        deadline = time.monotonic() + 120
        while n_metrics(run, "adversarial") <= seen and not server.finished() \
                and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(rng.uniform(0.0, 0.05))
        if not server.finished():  # (the server reaps the child only after it ended)
            os.kill(pid, signal.SIGKILL)
        code = server.wait()[0]
        assert code in (0, -signal.SIGKILL), code
        assert_readable(run, expect_checkpoint=True)
        if code == -signal.SIGKILL:
            landed += 1
            break
    return landed


def n_metrics(path: Path, phase: str) -> int:
    try:
        text = (path / "metrics.jsonl").read_text()
    except OSError:
        return 0
    return text.count(f'"phase": "{phase}"')


def test_sigkill_anywhere_then_resume_equals_uninterrupted(tmp_path, server):
    ref, run = tmp_path / "ref", tmp_path / "killed"
    train = ["train", run, *TRAIN_OPTS]

    # the uninterrupted run, read at every checkpoint swap while the writer is held between
    # its two renames (checkpoint -> checkpoint.prev done, .checkpoint.tmp -> checkpoint
    # not yet): reading never disturbs a writer, and always finds a whole checkpoint
    check_clean_exit(server.run([*PRETRAIN, "--out", ref]))
    server.start(["train", ref, *TRAIN_OPTS], pause="swap")
    reads = 0
    while server.next_pause():
        assert not (ref / CKPT).exists() and (ref / CKPT_TMP / "state.json").is_file()
        ck = RunDir(ref).checkpoints.load(warn=lambda m: None)
        assert ck is not None and ck[0]["phase"] in PHASES
        reads += 1
        server.resume()
    check_clean_exit(server.wait())
    assert reads >= 8  # 3 D rounds, the phase change, 4 adversarial epochs, done

    rng = random.Random(20240501)
    kills = 0
    # (hook:N, a checkpoint must exist afterwards) — every kill is followed by a check that
    # the run directory is readable
    for kill, has_ckpt in [
        ("create:2", None),    # while the run directory is being built
        ("swap:1", False),     # renaming the very first checkpoint into place
        ("metrics:3", True),   # half the metrics line of MLE epoch 2 written
    ]:
        code, log = server.run([*PRETRAIN, "--out", run], kill)
        assert code == -signal.SIGKILL, (kill, code, log[-2000:])
        kills += 1
        if has_ckpt is None:
            assert not run.exists()  # creation is all or nothing
            assert list(tmp_path.glob(".killed.*.creating"))  # (its temp folder is left behind)
        else:
            assert_readable(run, expect_checkpoint=has_ckpt)
    check_clean_exit(server.run([*PRETRAIN, "--out", run]))
    assert not list(tmp_path.glob(".killed.*.creating")), "a stale creation folder was not removed"
    assert_readable(run, expect_checkpoint=True)

    for kill in [
        "dstep:5",        # mid discriminator pretraining round 1
        "tensorwrite:2",  # half-way through writing a checkpoint file
        "swap:2",         # between checkpoint -> checkpoint.prev and .checkpoint.tmp -> checkpoint
        "rollout:2",      # mid adversarial epoch, during the Monte Carlo rollout
        "metrics:2",      # half the metrics line of discriminator round 2 written
        "logprobs:1",     # mid generator update, its rollout rewards computed
    ]:
        code, log = server.run(train, kill)
        assert code == -signal.SIGKILL, (kill, code, log[-2000:])
        kills += 1
        assert_readable(run, expect_checkpoint=True)

    assert kills == 9  # every counted kill is placed by a hook: it lands by construction
    # extra, not counted: a signal from outside at a seeded random moment
    kill_from_outside(server, train, run, rng)

    check_clean_exit(server.run(train))
    assert json.loads((run / CKPT / "state.json").read_text())["phase"] == "done"
    assert not (run / CKPT_TMP).exists() and (run / CKPT_PREV).is_dir()
    assert_same_run(ref, run)


# -- numerical faults through the command line ---------------------------------------------
OBJECTIVES = {
    "nan": ("torch.full((tokens.shape[0],), float('nan'))", "NaN"),
    "inf": ("torch.full((tokens.shape[0],), float('inf'))", "NaN or infinite"),
    "above_one": ("torch.full((tokens.shape[0],), 1.5)", "outside [0, 1]"),
    "wrong_shape": ("torch.zeros(tokens.shape[0], 2)", "shape"),
    "not_a_tensor": ("[0.5] * tokens.shape[0]", "expected a tensor"),
    "raises": ("1 / 0", "ZeroDivisionError"),
}


@pytest.fixture(scope="module")
def adversarial_run(tmp_path_factory, quick_run_factory) -> Path:
    return quick_run_factory(tmp_path_factory.mktemp("numeric") / "run")


@pytest.mark.parametrize("case", OBJECTIVES)
def test_bad_objective_values_stop_training_and_keep_the_checkpoint(tmp_path, monkeypatch,
                                                                     adversarial_run, case):
    from click.testing import CliRunner

    from seqgan.cli import main

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = tmp_path / "run"
        shutil.copytree(adversarial_run, run)
        expr, words = OBJECTIVES[case]
        mod = f"objective_{case}_{os.getpid()}"
        (tmp_path / f"{mod}.py").write_text(
            f"import torch\n\ndef fn(tokens, vocab):\n    return {expr}\n\n"
            f"def good(tokens, vocab):\n    return torch.full((tokens.shape[0],), 0.5)\n")
        monkeypatch.syspath_prepend(str(tmp_path))
        before = snapshot(run / CKPT), (run / "metrics.jsonl").read_bytes()
        r = CliRunner().invoke(main, ["train", str(run), "--lambda", "0.5", "--objective", f"{mod}:fn",
                                      "--epochs", "2", "--device", "cpu"])
        assert r.exit_code == 2 and isinstance(r.exception, SystemExit), r.output
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        assert lines[-1].startswith("error: ") and f"'{mod}:fn'" in lines[-1] and words in lines[-1]
        assert "Traceback" not in r.output
        # the last good checkpoint and the metrics it saw are untouched
        assert (snapshot(run / CKPT), (run / "metrics.jsonl").read_bytes()) == before
        # ... and training goes on from it with a sane objective
        r = CliRunner().invoke(main, ["train", str(run), "--lambda", "0.5", "--objective", f"{mod}:good",
                                      "--epochs", "2", "--device", "cpu"])
        assert r.exit_code == 0, r.output
        state = json.loads((run / CKPT / "state.json").read_text())
        assert state["adv_epoch"] == 2 and state["phase"] == "done"
        last = RunDir(run).metrics.read()[-1]
        assert last["epoch"] == 2 and 0.0 <= last["metrics"]["reward"] <= 1.0
    finally:
        torch.set_num_threads(n)
