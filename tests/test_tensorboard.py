"""``--tensorboard``: every epoch's scalars (the values of metrics.jsonl) and music piano
rolls in ``RUN/tensorboard/``, read back with TensorBoard's own reader; without the
package, one line saying how to install it and nothing written."""
from __future__ import annotations

import sys

import pytest

import seqgan
from bad_input_contract import abc_tune
from helpers import fails_cleanly, invoke, no_run_left, succeeds
from seqgan.report.tensorboard import TensorBoardLog, scalars

PRETRAIN = ("--preset", "quick", "--data-option", "window=8", "--data-option", "cache=false", "--device", "cpu")


@pytest.fixture(scope="module")
def abc(tmp_path_factory):
    path = tmp_path_factory.mktemp("tunes") / "tunes.abc"
    path.write_text("".join(abc_tune(body=b, x=i) for i, b in enumerate(["CDEF GABc|cBAG FEDC|",
                                                                        "EGce gecG|FAcf afcA|"] * 3)))
    return path


def events(run):
    """TensorBoard's view of ``run/tensorboard``: ``({tag: [(step, value)]}, {tag: [step]})``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    ea.Reload()
    tags = ea.Tags()
    return ({t: [(e.step, e.value) for e in ea.Scalars(t)] for t in tags["scalars"]},
            {t: [e.step for e in ea.Images(t)] for t in tags["images"]})


def test_scalars_and_piano_rolls_of_a_music_run(tmp_path, abc):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    run = tmp_path / "run"
    succeeds(invoke("pretrain", "--data", abc, "--out", run, "--epochs", "2", "--tensorboard",
                    "--snapshot-every", "1", *PRETRAIN))
    succeeds(invoke("train", run, "--epochs", "1", "--d-pretrain-steps", "1", "--rollout-num", "1",
                    "--d-samples", "32", "--tensorboard", "--device", "cpu"))
    got, images = events(run)
    want = {}  # every record of metrics.jsonl, as PHASE/METRIC at its epoch
    for rec in seqgan.open_run(run).metrics():
        for k, v in rec["metrics"].items():
            want.setdefault(f"{rec['phase']}/{k}", []).append((rec["epoch"], v))
    assert {"mle/loss", "mle/nll_test", "d-pretrain/d_loss", "adversarial/reward", "adversarial/nll_test"} <= set(want)
    assert set(got) == set(want)
    for tag, points in want.items():
        assert [s for s, _ in got[tag]] == [s for s, _ in points], tag
        assert [v for _, v in got[tag]] == pytest.approx([v for _, v in points], rel=1e-6), tag
    assert got["mle/nll_test"][0][0] == 0  # the untrained generator's evaluation too
    assert images == {"piano_roll/mle": [0, 1, 2], "piano_roll/adversarial": [1]}  # every snapshot


def test_the_log_does_not_change_training(tmp_path, abc):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    logs = []
    for name, flag in (("plain", ()), ("board", ("--tensorboard",))):
        succeeds(invoke("pretrain", "--data", abc, "--out", tmp_path / name, "--epochs", "1", *flag, *PRETRAIN))
        logs.append([(r["phase"], r["epoch"], r["metrics"]) for r in seqgan.open_run(tmp_path / name).metrics()])
    assert logs[0] == logs[1] and (tmp_path / "board" / "tensorboard").is_dir()
    assert not (tmp_path / "plain" / "tensorboard").exists()


def test_coevolution_records_and_replay(tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    rec = {"phase": "coevolve", "epoch": 3, "cell": 1, "metrics": {"score": 2.5, "d_acc": None,
                                                                     "lr_g": float("nan"), "ok": True}}
    assert scalars(rec) == {"coevolve/score/cell1": 2.5}
    board = TensorBoardLog(tmp_path, vocab=None)
    board.replay([rec, {**rec, "cell": 0, "metrics": {"score": 1.0}}, {**rec, "epoch": 4}])
    board.close()
    got, images = events(tmp_path)
    assert got == {"coevolve/score/cell1": [(3, 2.5), (4, 2.5)], "coevolve/score/cell0": [(3, 1.0)]}
    assert images == {}


def test_without_tensorboard_one_line_and_nothing_written(tmp_path, abc, monkeypatch):
    run = tmp_path / "run"
    succeeds(invoke("pretrain", "--data", abc, "--out", run, "--epochs", "1", *PRETRAIN))
    before = (run / "metrics.jsonl").read_bytes()
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if the package were absent
    want = ("--tensorboard needs the tensorboard package", 'pip install "seqgan[tensorboard]"')
    fails_cleanly(invoke("pretrain", "--data", abc, "--out", tmp_path / "new", "--tensorboard", *PRETRAIN), *want)
    no_run_left(tmp_path / "new")
    fails_cleanly(invoke("train", run, "--epochs", "1", "--tensorboard", "--device", "cpu"), *want)
    fails_cleanly(invoke("coevolve", run, "--grid", "1x2", "--generations", "1", "--tensorboard"), *want)
    assert (run / "metrics.jsonl").read_bytes() == before and not (run / "tensorboard").exists()
