"""The checkpoint-selection rule (``--select data-close``): the choice, the kept generator,
its readers, and that it leaves training untouched (resume bit-identical)."""
from __future__ import annotations

import json

import pytest
import torch

import seqgan
from bad_input_contract import abc_tune
from helpers import error_line, invoke, succeeds
from seqgan.training.selection import SELECTED_FILE, choose, gaps, style_metrics

REF = {"notes_per_bar": 2.0, "pitch_class_entropy": 2.0, "diversity": 0.5}


def rec(epoch, npb, pce, div, obj, phase="adversarial"):
    return {"phase": phase, "epoch": epoch, "metrics": {"notes_per_bar": npb, "pitch_class_entropy": pce,
                                                       "diversity": div, "ratio_of_steps": obj}}


def test_gaps_is_the_largest_relative_distance():
    assert gaps({"notes_per_bar": 2.2, "pitch_class_entropy": 1.9, "diversity": 0.5}, REF) == pytest.approx(0.1)
    assert gaps({"notes_per_bar": 2.0, "pitch_class_entropy": 2.0}, REF) is None  # diversity missing


def test_the_best_objective_within_ten_percent_wins():
    records = [rec(2, 2.1, 2.0, 0.5, 0.50), rec(4, 1.5, 2.0, 0.5, 0.90),  # 4: too few notes
               rec(6, 2.19, 1.81, 0.46, 0.60), rec(8, 2.0, 2.0, 0.5, 0.55),
               rec(40, 2.0, 2.0, 0.5, 0.99, phase="mle"), {"phase": "adversarial", "epoch": 9, "metrics": {}}]
    c = choose(records, REF, "ratio_of_steps", 0.1)
    assert (c.epoch, c.within, c.objective) == (6, True, 0.60)
    assert choose(records, REF, "ratio_of_steps", 0.05).epoch == 8  # 6 is off by 9.5 %
    tie = choose([rec(2, 2.0, 2.0, 0.5, 0.5), rec(4, 2.0, 2.0, 0.5, 0.5)], REF, "ratio_of_steps", 0.1)
    assert tie.epoch == 2  # the earliest on a tie


def test_objectives_within_the_tie_go_to_the_closer_epoch():
    records = [rec(2, 2.16, 2.0, 0.5, 0.600), rec(4, 2.04, 2.0, 0.5, 0.615),  # gaps 8 %, 2 %
               rec(6, 2.14, 2.0, 0.5, 0.640)]  # 7 %, but higher by more than 0.02
    assert [choose(records[:k], REF, "ratio_of_steps", 0.1).epoch for k in (1, 2, 3)] == [2, 4, 6]


def test_the_choice_only_ever_moves_to_the_newest_epoch():
    """What was written stays consistent: a new choice is always the epoch just evaluated."""
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        rs = [rec(e, *(REF[k] * (1 + 0.3 * (float(torch.rand(1, generator=g)) - 0.5)) for k in REF),
                  float(torch.rand(1, generator=g)) * 0.05 + 0.55) for e in range(1, 13)]
        prev = None
        for k in range(1, len(rs) + 1):
            now = choose(rs[:k], REF, "ratio_of_steps", 0.1).epoch
            assert now in (prev, k)
            prev = now


def test_none_within_falls_back_to_the_closest():
    c = choose([rec(2, 3.0, 2.0, 0.5, 0.9), rec(4, 2.5, 2.0, 0.5, 0.1), rec(6, 1.0, 2.0, 0.5, 0.95)],
               REF, "ratio_of_steps", 0.1)
    assert (c.epoch, c.within, c.gap) == (4, False, pytest.approx(0.25))
    assert choose([], REF, "ratio_of_steps", 0.1) is None
    # without an objective the closest within wins
    assert choose([rec(2, 2.1, 2.0, 0.5, 0.9), rec(4, 2.0, 2.0, 0.5, 0.1)], REF, None, 0.1).epoch == 4


def test_style_metrics_by_hand():
    from seqgan.datasets.vocab import Vocabulary

    vocab = Vocabulary(["C4", "D4", "E4", "_", "R"], kind="music", meta={"steps_per_bar": 4})
    toks = torch.tensor([[0, 3, 1, 3], [0, 1, 2, 4]])  # C4 _ D4 _ | C4 D4 E4 R
    m = style_metrics(toks, vocab)
    assert m["notes_per_bar"] == pytest.approx(5 / 2)  # 5 onsets in 2 bars
    assert m["diversity"] == pytest.approx(3 / 4)  # one pair, edit distance 3, T 4
    assert m["pitch_class_entropy"] == pytest.approx((1.0 + 1.584962500721156) / 2)  # 2 and 3 classes


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny music run, MLE then 4 adversarial epochs with --select data-close, and a copy
    trained to 2 epochs then resumed to 4."""
    abc = tmp_path_factory.mktemp("tunes") / "tunes.abc"
    abc.write_text("".join(abc_tune(body=b, x=i) for i, b in enumerate(
        ["CDEF GABc|cBAG FEDC|", "EGce gecG|FAcf afcA|", "GABc dcBA|GFED CDEF|", "ccGG AAGz|FFEE DDCz|"] * 4)))
    base = tmp_path_factory.mktemp("runs")
    runs = {}
    for name in ("whole", "resumed"):
        run = base / name
        succeeds(invoke("pretrain", "--data", abc, "--preset", "quick", "--epochs", "2", "--out", run,
                        "--data-option", "window=8", "--data-option", "cache=false", "--device", "cpu"))
        runs[name] = run
    opts = ("--objective", "ratio_of_steps", "--lambda", "0.5", "--select", "data-close",
            "--select-tolerance", "0.5", "--eval-every", "1", "--device", "cpu")
    succeeds(invoke("train", runs["whole"], "--epochs", "4", *opts))
    succeeds(invoke("train", runs["resumed"], "--epochs", "2", *opts))
    succeeds(invoke("train", runs["resumed"], "--epochs", "4", "--device", "cpu"))
    return runs


def test_each_evaluation_records_style_and_the_selected_epoch(trained):
    recs = [json.loads(line) for line in (trained["whole"] / "metrics.jsonl").read_text().splitlines()]
    adv = [r for r in recs if r["phase"] == "adversarial"]
    assert [r["epoch"] for r in adv] == [1, 2, 3, 4]
    for r in recs[1:]:  # the MLE phase had no objective yet (preset quick)
        want = {"notes_per_bar", "pitch_class_entropy", "diversity"} | \
            ({"ratio_of_steps"} if r["phase"] == "adversarial" else set())
        assert r["phase"] == "d-pretrain" or want <= set(r["metrics"])
    ref = seqgan.open_run(trained["whole"])
    from seqgan.training.selection import data_reference

    want = choose(adv, data_reference(ref.dir.data()["train"], ref.vocab, ref.config.train.seed),
                  "ratio_of_steps", 0.5)
    assert adv[-1]["selected"] == {"epoch": want.epoch, "within": want.within}
    assert (trained["whole"] / SELECTED_FILE).is_file()


def test_resume_is_bit_identical_with_selection(trained):
    a, b = trained["whole"], trained["resumed"]
    from safetensors import safe_open

    files = [safe_open(str(r / SELECTED_FILE), "pt") for r in (a, b)]
    last = json.loads((a / "metrics.jsonl").read_text().splitlines()[-1])
    assert files[0].metadata() == files[1].metadata() and files[0].metadata()["epoch"] == str(last["selected"]["epoch"])
    assert files[0].keys() == files[1].keys()
    assert all(torch.equal(files[0].get_tensor(k), files[1].get_tensor(k)) for k in files[0].keys())
    strip = [{k: v for k, v in json.loads(line).items() if k != "seconds"}
             for line in (a / "metrics.jsonl").read_text().splitlines()]
    strip_b = [{k: v for k, v in json.loads(line).items() if k != "seconds"}
               for line in (b / "metrics.jsonl").read_text().splitlines()]
    assert strip == strip_b


def test_readers_use_the_selected_generator_unless_final(trained):
    run = seqgan.open_run(trained["whole"])
    from safetensors.torch import load_file

    from seqgan.evaluation import load_generator

    sel = load_file(trained["whole"] / SELECTED_FILE)
    g = load_generator(run.dir, "default", "cpu")
    assert all(torch.equal(g.state_dict()[k], v) for k, v in sel.items())
    rows = run.evaluate(["music"], n=32, compare=True)
    assert list(rows) == ["training data", "MLE generator", "selected generator", "final generator"]
    default, final = invoke("sample", trained["whole"], "-n", "3"), invoke("sample", trained["whole"], "-n", "3", "--final")
    assert default.exit_code == 0 and final.exit_code == 0
    assert default.output == "\n".join(run.decode(run.sample_tokens(3))) + "\n"
    assert final.output == "\n".join(run.decode(run.sample_tokens(3, final=True))) + "\n"
    assert "--mle and --final" in error_line(invoke("sample", trained["whole"], "--mle", "--final"))
