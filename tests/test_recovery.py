"""What happens around a failure: a run that fails before its first checkpoint, a start
that fails after options were given, damaged checkpoint and metrics files, a reader that
races a checkpoint swap, NaN between checkpoints, and a finished run asked to train again.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import error_line, invoke
import torch

from seqgan.files import load_tensors
from seqgan.runs.checkpoints import CKPT, CKPT_PREV
from seqgan.runs.rundir import RunDir
from seqgan.errors import TrainingError
import seqgan.training.loop as loop
from dataclasses import replace

from seqgan.runs.checkpoints import Checkpoints
from seqgan.training.baselines import BASELINES


@pytest.fixture(scope="module")
def trained(tmp_path_factory, quick_run_factory) -> Path:
    return quick_run_factory(tmp_path_factory.mktemp("rec") / "run")  # 1 MLE, 1 D round, 1 adversarial epoch


@pytest.fixture
def run(tmp_path, trained) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(trained, dst)
    return dst




def state(run: Path) -> dict:
    return json.loads((run / CKPT / "state.json").read_text())


# -- a new run that fails before its first checkpoint leaves nothing ----------------------
@pytest.mark.parametrize("exc,code", [(TrainingError("the MLE loss became NaN"), 2), (KeyboardInterrupt(), 130)])
def test_new_run_failing_before_its_first_checkpoint_is_removed(tmp_path, monkeypatch, exc, code):
    def boom(st, data, opt=None, ss_prob=0.0):
        raise exc

    out = tmp_path / "new"
    args = ["pretrain", "--data", "oracle", "--preset", "quick", "--out", out, "--epochs", "2", "--device", "cpu"]
    with monkeypatch.context() as m:
        m.setattr(loop, "mle_epoch", boom)
        r = invoke(*args, "--lr", "5")
    assert r.exit_code == code and "Traceback" not in r.output
    assert "had no checkpoint yet and was removed" in r.stderr
    assert not out.exists() and not list(tmp_path.glob(".new.*"))
    r = invoke(*args, "--lr", "0.01")  # the same command with other options now works
    assert r.exit_code == 0, r.output
    assert state(out)["mle_epoch"] == 2


def test_resumed_run_that_fails_keeps_its_checkpoint(run, monkeypatch):
    fail = replace(BASELINES["seqgan"], epoch=lambda st, data, fn: (_ for _ in ()).throw(TrainingError("x")))
    monkeypatch.setitem(BASELINES, "seqgan", fail)
    before = state(run)
    assert "error: x" in error_line(invoke("train", run, "--epochs", "3", "--device", "cpu"))
    assert state(run) == before and (run / "config.json").is_file()


# -- options are saved only once training can start ----------------------------------------
def test_train_options_are_not_saved_when_the_start_fails(run):
    for folder in (CKPT, CKPT_PREV):
        p = run / folder / "generator.safetensors"
        p.write_bytes(p.read_bytes()[:100])
    before = (run / "config.json").read_bytes()
    line = error_line(invoke("train", run, "--epochs", "9", "--rollout-num", "7", "--device", "cpu"))
    assert "generator.safetensors" in line and "the previous checkpoint is damaged too" in line
    assert (run / "config.json").read_bytes() == before


@pytest.mark.parametrize("device", ["meta", "mps", "xpu"])
def test_unsupported_devices_are_one_line(tmp_path, run, device):
    assert "unsupported device" in error_line(invoke("train", run, "--device", device))
    assert "unsupported device" in error_line(invoke("sample", run, "--device", device))
    out = tmp_path / "new"
    assert "unsupported device" in error_line(invoke("pretrain", "--data", "oracle", "--preset", "quick",
                                                     "--out", out, "--device", device))
    assert not out.exists()


def test_finished_run_says_so_and_changes_nothing(run):
    def files_of(run):  # (the lock file records its last holder)
        return {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}

    files = files_of(run)
    r = invoke("train", run, "--device", "cpu")
    assert r.exit_code == 0 and "is already trained: 1 adversarial epochs" in r.output
    # options for training that does not happen are not recorded as if they had been used
    r = invoke("train", run, "--baseline", "mle", "--update-rate", "0.5", "--device", "cpu")
    assert r.exit_code == 0 and "the other options were not saved" in r.output
    assert files_of(run) == files


def test_run_command_resumes_a_run_of_another_preset(run):
    r = invoke("run", "--out", run, "--device", "cpu")  # made with --preset quick, resumed without
    assert r.exit_code == 0, r.output
    assert (run / "results.json").is_file()


# -- damaged files ---------------------------------------------------------------------------
def test_a_damaged_metrics_line_costs_only_itself(run):
    path = run / "metrics.jsonl"
    lines = path.read_text().splitlines()
    assert len(lines) >= 4
    lines[1] = "garbage{"
    path.write_text("\n".join(lines) + "\n")
    r = invoke("train", run, "--device", "cpu")
    assert r.exit_code == 0 and f"1 of the {len(lines)} records" in r.stderr
    kept = [json.loads(x) for x in path.read_text().splitlines()]
    assert len(kept) == len(lines) - 1 and kept[-1]["phase"] == "adversarial"
    # the checkpoint now counts the lines the repaired log has: a later resume keeps them all
    assert state(run)["metrics_lines"] == len(kept)


def test_a_bad_state_file_falls_back_to_the_previous_checkpoint(run):
    st = state(run)
    for key, value, words in (("phase", "bogus", "phase 'bogus'"), ("seconds", "x", "seconds is 'x'")):
        (run / CKPT / "state.json").write_text(json.dumps({**st, key: value}))
        r = invoke("sample", run, "-n", "2", "--device", "cpu")
        assert r.exit_code == 0 and words in r.stderr and "falling back to the previous checkpoint" in r.stderr


def test_after_a_fallback_the_good_checkpoint_stays_the_fallback(run):
    prev_state = json.loads((run / CKPT_PREV / "state.json").read_text())
    g = run / CKPT / "generator.safetensors"
    g.write_bytes(b"\0" * 64)
    # one checkpoint is written (at the end): it must not push the damaged one into .prev
    r = invoke("train", run, "--epochs", "2", "--checkpoint-every", "5", "--device", "cpu")
    assert r.exit_code == 0 and "falling back" in r.stderr
    assert state(run)["adv_epoch"] == 2
    # the damaged checkpoint was dropped; the one training resumed from is the new fallback
    assert json.loads((run / CKPT_PREV / "state.json").read_text()) == prev_state
    RunDir(run).checkpoints._read(run / CKPT_PREV)  # intact


def test_losing_every_checkpoint_is_said_out_loud_and_nothing_is_deleted(run):
    (run / "samples" / "samples.txt").write_text("1 2 3\n")
    (run / "results.json").write_text("{}\n")
    kept = {name: (run / name).read_bytes() for name in ("metrics.jsonl", "generator-mle.safetensors",
                                                          "results.json")}
    shutil.rmtree(run / CKPT)
    shutil.rmtree(run / CKPT_PREV)
    r = invoke("pretrain", "--out", run, "--device", "cpu")
    assert r.exit_code == 0 and "has a training history but no checkpoint" in r.stderr
    assert "metrics.jsonl -> metrics.jsonl.1" in r.stderr and "samples -> samples.1" in r.stderr
    for name, data in kept.items():  # moved aside, byte for byte
        assert (run / f"{name}.1").read_bytes() == data
    assert (run / "samples.1" / "samples.txt").read_text() == "1 2 3\n"
    # the new history starts afresh beside the old one; losing it again keeps both
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[0])["epoch"] == 0
    shutil.rmtree(run / CKPT)
    shutil.rmtree(run / CKPT_PREV)
    r = invoke("pretrain", "--out", run, "--device", "cpu")
    assert r.exit_code == 0 and "metrics.jsonl -> metrics.jsonl.2" in r.stderr
    assert (run / "metrics.jsonl.1").read_bytes() == kept["metrics.jsonl"]


def test_a_fresh_run_moves_nothing_aside(tmp_path):
    out = tmp_path / "fresh"
    r = invoke("pretrain", "--data", "oracle", "--preset", "quick", "--out", out, "--epochs", "1",
               "--device", "cpu")
    assert r.exit_code == 0 and "kept aside" not in r.stderr and "warning" not in r.stderr
    assert not list(out.glob("*.1"))


# -- a reader racing a checkpoint swap -----------------------------------------------------------
def test_reader_retries_when_a_swap_moves_the_checkpoint_it_checked(run, monkeypatch):
    r = RunDir(run)
    real = Checkpoints.load
    calls = []

    def swapping(self, warn=print):
        got = real(self, warn)
        if not calls:  # a trainer's swap begins right after the reader checked the files
            shutil.rmtree(run / CKPT_PREV)
            (run / CKPT).rename(run / CKPT_PREV)
        calls.append(1)
        return got

    monkeypatch.setattr(Checkpoints, "load", swapping)
    tensors, path = r.checkpoints.read_tensors("generator", warn=lambda m: None)
    assert len(calls) == 2 and path.parent.name == CKPT_PREV
    want = load_tensors(path)
    assert tensors.keys() == want.keys() and all(torch.equal(tensors[k], want[k]) for k in want)


# -- NaN between checkpoints -------------------------------------------------------------------
def test_nan_weights_stop_training_in_the_epoch_they_appear(run, monkeypatch):
    real = BASELINES["seqgan"].epoch

    def poisoned(st, data, fn):
        out = real(st, data, fn)
        with torch.no_grad():
            next(st.G.parameters()).fill_(float("nan"))
        return out

    monkeypatch.setitem(BASELINES, "seqgan", replace(BASELINES["seqgan"], epoch=poisoned))
    before = state(run)
    line = error_line(invoke("train", run, "--epochs", "4", "--checkpoint-every", "3", "--device", "cpu"))
    assert "NaN" in line
    assert state(run) == before
    assert "NaN" not in (run / "metrics.jsonl").read_text()
