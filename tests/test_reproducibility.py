"""Same seed and device, same results: samples, metrics and weights; and a run records
what is needed to reproduce it (seed, versions, the full configuration)."""
from __future__ import annotations

import dataclasses
import json
import platform
from pathlib import Path

import pytest
from helpers import invoke as _invoke, succeeds
import torch

import seqgan
from seqgan.files import load_tensors
from seqgan.runs.config import RunConfig
from seqgan.runs.presets import get_preset

CKPT_FILES = ("generator", "discriminator", "rollout", "optim-g-mle", "optim-g-adv", "optim-d", "rng")


def invoke(*args):
    r = _invoke(*args)
    succeeds(r)
    return r


def tiny_run(path: Path, seed: int) -> Path:
    invoke("pretrain", "--data", "oracle", "--preset", "quick", "--out", path, "--seed", seed,
           "--epochs", "2", "--device", "cpu")
    invoke("train", path, "--epochs", "2", "--d-pretrain-steps", "1", "--device", "cpu")
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("repro")
    return {"a": tiny_run(d / "a", 7), "b": tiny_run(d / "b", 7), "other": tiny_run(d / "other", 8)}


def metrics(run: Path) -> list[dict]:
    recs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for r in recs:
        assert isinstance(r.pop("seconds"), float)
    return recs


def weights(run: Path) -> dict[str, dict[str, torch.Tensor]]:
    return {n: load_tensors(run / "checkpoint" / f"{n}.safetensors") for n in CKPT_FILES}


def test_same_seed_same_metrics_and_weights(runs):
    ma, mb = metrics(runs["a"]), metrics(runs["b"])
    assert [(r["phase"], r["epoch"]) for r in ma] == [("mle", 0), ("mle", 1), ("mle", 2),
                                                       ("d-pretrain", 1), ("adversarial", 1),
                                                       ("adversarial", 2)]
    assert ma == mb  # every value, bit for bit
    wa, wb = weights(runs["a"]), weights(runs["b"])
    for name in CKPT_FILES:
        assert wa[name].keys() == wb[name].keys() and wa[name], name
        for k in wa[name]:
            assert torch.equal(wa[name][k], wb[name][k]), f"{name}: {k}"


def test_another_seed_gives_other_results(runs):
    """(So that the equalities above mean something.)"""
    assert metrics(runs["a"]) != metrics(runs["other"])
    ga, go = weights(runs["a"])["generator"], weights(runs["other"])["generator"]
    assert not all(torch.equal(ga[k], go[k]) for k in ga)


def test_sampling_is_seeded(runs):
    run = runs["a"]
    first = invoke("sample", run, "-n", "20", "--seed", "3").stdout
    assert invoke("sample", run, "-n", "20", "--seed", "3").stdout == first
    assert invoke("sample", runs["b"], "-n", "20", "--seed", "3").stdout == first
    lines = first.splitlines()
    assert len(lines) == 20 and len(set(lines)) > 1
    assert invoke("sample", run, "-n", "20", "--seed", "4").stdout != first
    hot = invoke("sample", run, "-n", "20", "--seed", "3", "--temperature", "0.5").stdout
    assert hot == invoke("sample", run, "-n", "20", "--seed", "3", "--temperature", "0.5").stdout
    assert hot != first


def test_config_json_holds_seed_versions_and_the_full_config(runs):
    meta = json.loads((runs["a"] / "config.json").read_text())
    assert meta["seed"] == 7 and meta["config"]["train"]["seed"] == 7
    assert meta["versions"] == {"seqgan": seqgan.__version__, "torch": torch.__version__,
                                "python": platform.python_version()}
    want = get_preset("quick")
    want.data = dataclasses.replace(want.data, spec="oracle")
    want.train = dataclasses.replace(want.train, seed=7, mle_epochs=2, adv_epochs=2, d_pretrain_steps=1)
    assert meta["config"] == json.loads(json.dumps(want.to_dict()))  # every field, resolved
    assert RunConfig.from_dict(meta["config"]) == want


def test_evaluate_prints_seed_and_versions_and_repeats_itself(runs, tmp_path):
    args = ("evaluate", runs["a"], "--metrics", "nll-oracle,nll-test,distinct", "-n", "64", "--seed", "5")
    out = invoke(*args).output
    assert "seed 7" in out and f"torch {torch.__version__}" in out and f"seqgan {seqgan.__version__}" in out
    assert "sampling seed 5" in out
    assert invoke(*args).output == out
    r = invoke(*args, "--json", tmp_path / "e.json")
    saved = json.loads((tmp_path / "e.json").read_text())
    assert saved["versions"]["torch"] == torch.__version__ and saved["config"]["train"]["seed"] == 7
    (row,) = saved["rows"].values()
    assert 0 < row["nll-oracle"] < 10 and f"{row['nll-oracle']:.4f}" in r.output
