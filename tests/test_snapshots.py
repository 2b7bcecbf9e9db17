"""Progress snapshots: every K epochs the same seeds sampled into ``RUN/snapshots/``, named
by phase and epoch, drawn from their own stream so that training is bit for bit the same
with or without them."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

import seqgan
from helpers import invoke, succeeds
from seqgan.datasets import format_samples
from seqgan.evaluation import load_generator
from seqgan.files import load_tensors
from seqgan.runs.config import TrainConfig
from seqgan.runs.presets import get_preset
from seqgan.runs.snapshots import Snapshotter, list_snapshots, snapshot_interval, snapshot_seed

CKPT = ("generator", "discriminator", "rollout", "optim-g-mle", "optim-g-adv", "optim-d", "rng")


def test_the_interval_aims_at_twenty_snapshots():
    cfg = get_preset("quick")
    cfg.train = TrainConfig(mle_epochs=40, adv_epochs=30)
    assert snapshot_interval(cfg.train) == 4  # ceil((40 + 30) / 20)
    assert snapshot_interval(TrainConfig()) == 16  # SeqGAN's 120 + 200 epochs
    assert snapshot_interval(TrainConfig(mle_epochs=3, adv_epochs=3)) == 1
    assert snapshot_interval(TrainConfig(snapshot_every=7)) == 7
    s = Snapshotter("unused", None, cfg)
    mle = [e for e in range(41) if s.due(e, 40)]
    adv = [e for e in range(1, 31) if s.due(e, 30)]
    assert mle == list(range(0, 41, 4)) and adv == [4, 8, 12, 16, 20, 24, 28, 30]
    assert len(mle) + len(adv) == 19
    cfg.train = TrainConfig(mle_epochs=40, adv_epochs=30, snapshot_samples=0)
    assert not any(s.due(e, 40) for e in range(41))
    assert snapshot_seed(0) == 1_000_000_007 and snapshot_seed(2**63 - 1) == 1_000_000_006


def _run(path, samples: int):
    run = seqgan.create_run(path, data="oracle", preset="quick", seed=3, snapshot_every=2,
                            snapshot_samples=samples, log=lambda m: None)
    run.pretrain(epochs=3, progress=False)
    run.train(epochs=2, d_pretrain_steps=1, progress=False)
    return run


def test_snapshots_are_the_same_seeds_and_leave_training_alone(tmp_path):
    a, b = _run(tmp_path / "a", 8), _run(tmp_path / "b", 0)
    snaps = list_snapshots(a.path)
    assert [(s.phase, s.epoch) for s in snaps] == [("mle", 0), ("mle", 2), ("mle", 3), ("adversarial", 2)]
    assert sorted(p.name for p in (a.path / "snapshots").iterdir()) == [
        "adv-0002.safetensors", "adv-0002.txt", "mle-0000.safetensors", "mle-0000.txt",
        "mle-0002.safetensors", "mle-0002.txt", "mle-0003.safetensors", "mle-0003.txt"]
    assert list_snapshots(b.path) == [] and not (b.path / "snapshots").exists()
    # the same training with and without snapshots: every checkpoint file and metric
    for name in CKPT:
        ta, tb = (load_tensors(r.path / "checkpoint" / f"{name}.safetensors") for r in (a, b))
        assert ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta), name
    strip = lambda r: [{k: v for k, v in x.items() if k != "seconds"} for x in r.metrics()]  # noqa: E731
    assert strip(a) == strip(b)
    # the last snapshot is the final generator sampled with the run's snapshot seed
    g = load_generator(a.dir, "latest", "cpu")
    want = g.sample(8, generator=torch.Generator().manual_seed(snapshot_seed(3)))
    last = snaps[-1]
    assert torch.equal(last.tokens(), want) and last.tokens().shape == (8, 8)
    assert last.lines() == format_samples(a.vocab, want)
    with safe_open(str(last.tokens_path), "pt") as f:
        assert f.metadata() == {"phase": "adversarial", "epoch": "2", "seed": str(snapshot_seed(3))}
    # the same seeds every time: the untrained and the trained generator differ, rows stay rows
    assert not torch.equal(snaps[0].tokens(), last.tokens())


def test_resuming_can_change_the_snapshot_knobs(tmp_path, quick_run_factory):
    run = quick_run_factory(tmp_path / "run")
    succeeds(invoke("pretrain", "--out", run, "--snapshot-every", "5", "--snapshot-samples", "3"))
    cfg = json.loads((run / "config.json").read_text())["config"]["train"]
    assert (cfg["snapshot_every"], cfg["snapshot_samples"]) == (5, 3)
    succeeds(invoke("train", run, "--epochs", "5", "--device", "cpu"))  # adversarial 1 -> 5
    got = [(s.phase, s.epoch, len(s.lines())) for s in list_snapshots(run)]
    assert got[-1] == ("adversarial", 5, 3) and ("adversarial", 1, 8) in got
    assert [e for p, e, _ in got if p == "adversarial"] == [1, 5]  # 5 % 5 and the phase's last epoch


@pytest.mark.gpu
def test_snapshots_on_cuda(tmp_path):
    """On a GPU the snapshot stream is a CUDA generator: the files hold CPU tokens, the last
    one is the final generator's sample with the snapshot seed, and the GIF has a frame each."""
    import io

    from PIL import Image

    from seqgan.report.animate import gif_bytes

    run = seqgan.create_run(tmp_path / "r", data="oracle", preset="quick", seed=3, log=lambda m: None)
    run.pretrain(epochs=2, device="cuda", progress=False)
    snaps = list_snapshots(run.path)
    assert [(s.phase, s.epoch) for s in snaps] == [("mle", 0), ("mle", 1), ("mle", 2)]
    g = load_generator(run.dir, "latest", "cuda")
    want = g.sample(8, generator=torch.Generator(device="cuda").manual_seed(snapshot_seed(3))).cpu()
    assert torch.equal(snaps[-1].tokens(), want)
    assert Image.open(io.BytesIO(gif_bytes(run.dir))).n_frames == 3
