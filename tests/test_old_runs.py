"""A run made by an older version keeps resuming: the run-directory format only grows.

``tests/fixtures/run-8c621b9`` is a quick oracle run made by commit 8c621b9 (the flat
layout, before the library API): 2 MLE epochs, 1 discriminator round, 1 adversarial
epoch, seed 7. That version then trained it to 2 adversarial epochs; its generator and
last metrics line are kept beside it. Resumed by today's code, the run must end the same.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

import seqgan
from helpers import invoke, succeeds
from seqgan.files import load_tensors

FIXTURES = Path(__file__).parent / "fixtures"
OLD = FIXTURES / "run-8c621b9"


@pytest.fixture
def old_run(tmp_path) -> Path:
    run = tmp_path / "old"
    shutil.copytree(OLD, run)
    return run


def test_an_old_run_opens_and_reads(old_run):
    run = seqgan.open_run(old_run)
    assert run.kind == "ids" and run.state["adv_epoch"] == 1
    assert len(run.sample(3, device="cpu")) == 3
    assert [r["epoch"] for r in run.metrics() if r["phase"] == "adversarial"] == [1]


def test_an_old_run_resumes_to_what_the_old_version_made(old_run):
    succeeds(invoke("train", old_run, "--epochs", "2", "--device", "cpu"))  # (one thread: conftest)
    want = load_tensors(FIXTURES / "run-8c621b9-epoch2-generator.safetensors")
    got = load_tensors(old_run / "checkpoint" / "generator.safetensors")
    for k in want:  # the same math; exact on the machine that made it, float noise elsewhere
        torch.testing.assert_close(got[k], want[k], rtol=1e-5, atol=1e-6)
    last = json.loads((old_run / "metrics.jsonl").read_text().splitlines()[-1])
    ref = json.loads((FIXTURES / "run-8c621b9-epoch2-metrics.json").read_text())
    assert (last["phase"], last["epoch"]) == (ref["phase"], ref["epoch"])
    assert last["metrics"] == pytest.approx(ref["metrics"], rel=1e-4)
