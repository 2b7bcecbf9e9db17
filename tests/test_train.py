"""Training phases, checkpoints and resume on tiny oracle runs."""
from __future__ import annotations

import json

import pytest
import torch

from seqgan.files import load_tensors
from seqgan.runs.rundir import RunDir, create_run_dir
from seqgan.runs.presets import get_preset
from seqgan.datasets import load_corpus
from seqgan.errors import TrainingError, UserError
from seqgan.training.loop import RunTrainer


def make_run(tmp_path, name="r", **train):
    cfg = get_preset("quick")
    for k, v in train.items():
        setattr(cfg.train, k, v)
    corpus = load_corpus("oracle", cfg.data, cfg.data.seq_len, cfg.train.seed)
    cfg.generator.vocab_size = len(corpus.vocab)
    return create_run_dir(tmp_path / name, cfg, corpus)


def quiet(run, **kw):
    return RunTrainer(run, device="cpu", log=lambda m: None, progress=False, **kw).resume()


def test_pretraining_lowers_nll_oracle(tmp_path):
    run = make_run(tmp_path, mle_epochs=6, eval_every=6)
    quiet(run).pretrain_mle()
    recs = [r for r in run.metrics.read() if r["phase"] == "mle"]
    assert recs[0]["epoch"] == 0 and recs[-1]["epoch"] == 6
    assert recs[-1]["metrics"]["nll_oracle"] < recs[0]["metrics"]["nll_oracle"] - 0.3
    assert (run.path / "generator-mle.safetensors").is_file()


def test_checkpoint_round_trip_is_exact(tmp_path):
    run = make_run(tmp_path)
    t = quiet(run)
    t.train_all()
    t2 = quiet(RunDir(run.path))
    for a, b in zip(t.st.G.parameters(), t2.st.G.parameters()):
        assert torch.equal(a, b)
    for a, b in zip(t.st.D.parameters(), t2.st.D.parameters()):
        assert torch.equal(a, b)
    for a, b in zip(t.st.rollout.model.parameters(), t2.st.rollout.model.parameters()):
        assert torch.equal(a, b)
    assert t2.state["phase"] == "done" and t2.state["adv_epoch"] == 3
    sa, sb = t.st.opt_adv.state_dict(), t2.st.opt_adv.state_dict()
    for k in sa["state"]:
        for name in sa["state"][k]:
            assert torch.equal(torch.as_tensor(sa["state"][k][name]), torch.as_tensor(sb["state"][k][name]))


def test_resume_after_interruption_equals_uninterrupted(tmp_path):
    full = make_run(tmp_path, "full")
    quiet(full).train_all()
    part = make_run(tmp_path, "part")
    t = quiet(part)
    t.pretrain_mle()
    t.pretrain_discriminator()
    # stop after one adversarial epoch, as a kill right after its checkpoint would
    t.tc.adv_epochs = 1
    t.train_adversarial()
    assert json.loads((part.path / "checkpoint" / "state.json").read_text())["adv_epoch"] == 1
    resumed = quiet(RunDir(part.path))
    assert resumed.state["adv_epoch"] == 1
    resumed.train_all()
    a = load_tensors(full.path / "checkpoint" / "generator.safetensors")
    b = load_tensors(part.path / "checkpoint" / "generator.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    ma = [r["metrics"] for r in full.metrics.read()]
    mb = [r["metrics"] for r in RunDir(part.path).metrics.read()]
    assert ma == mb


def test_corrupt_checkpoint_falls_back_to_previous(tmp_path):
    run = make_run(tmp_path)
    quiet(run).pretrain_mle()
    gen = run.path / "checkpoint" / "generator.safetensors"
    gen.write_bytes(gen.read_bytes()[:100])
    warnings = []
    t = RunTrainer(RunDir(run.path), device="cpu", log=warnings.append, progress=False).resume()
    assert any("generator.safetensors" in w and "corrupt" in w for w in warnings)
    assert t.state["mle_epoch"] == 3  # the previous checkpoint: MLE finished, phase not yet moved


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    run = make_run(tmp_path)
    t = quiet(run)
    t.pretrain_mle()
    before = (run.path / "checkpoint" / "generator.safetensors").read_bytes()
    with torch.no_grad():
        t.st.G.out.weight.fill_(float("nan"))
    with pytest.raises(TrainingError, match="NaN"):
        t.train_all()
    assert (run.path / "checkpoint" / "generator.safetensors").read_bytes() == before


def test_plugin_objective_needs_explicit_permission(tmp_path):
    run = make_run(tmp_path, lambda_=0.5, objective="json:dumps")
    t = quiet(run)
    t.pretrain_mle()
    t.pretrain_discriminator()
    with pytest.raises(UserError, match="imported only when"):
        t.train_adversarial()


def test_tiny_adversarial_run_has_finite_metrics(tmp_path):
    run = make_run(tmp_path)
    quiet(run).train_all()
    adv = [r for r in run.metrics.read() if r["phase"] == "adversarial"]
    assert len(adv) == 3
    for r in adv:
        assert all(v == v and abs(v) < 1e6 for v in r["metrics"].values())
        assert 0.0 <= r["metrics"]["reward"] <= 1.0
