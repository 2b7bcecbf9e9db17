"""Coevolution end to end through the CLI: a 2×2 population killed at many moments and
resumed ends bit-identical to an uninterrupted one; the update order of the cells does
not matter; a coevolution run samples, evaluates and refuses pair training; its options
are checked."""
from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import torch

import seqgan
from seqgan.errors import UserError
from bad_input_contract import abc_tune
from helpers import error_line, invoke, succeeds
from seqgan.datasets import load_corpus
from seqgan.evolve.population import Population
from seqgan.runs.evolve_config import EvolveConfig
from seqgan.runs.presets import get_preset

PRETRAIN = ["pretrain", "--data", "oracle", "--preset", "quick", "--seed", "9", "--epochs", "2",
            "--device", "cpu"]
COEVOLVE = ["--grid", "2x2", "--generations", "3", "--d-pretrain", "1", "--g-loss", "random",
            "--device", "cpu"]


def population_state(run: Path) -> dict:
    return json.loads((run / "population" / "state.json").read_text())


def records(run: Path) -> list[dict]:
    out = []
    for line in (run / "metrics.jsonl").read_text().splitlines():
        rec = json.loads(line)
        rec.pop("seconds")
        out.append(rec)
    return out


def test_killed_anywhere_and_resumed_equals_uninterrupted(tmp_path, server):
    ref, run = tmp_path / "ref", tmp_path / "run"
    for r in (ref, run):
        assert server.run([*PRETRAIN, "--out", r])[0] == 0
    code, log = server.run(["coevolve", ref, *COEVOLVE])
    assert code == 0, log[-2000:]
    kills = 0
    for kill in ("swap:1",          # the first population checkpoint, between its renames
                 "rollout:3",       # mid generation 1, cell 2's REINFORCE step
                 "tensorwrite:9",   # half-way through a population file
                 "metrics:2",       # half a cell's metrics line
                 "rollout:4",       # mid generation 2
                 "swap:1"):         # between the renames of a later generation's checkpoint
        code, log = server.run(["coevolve", run, *COEVOLVE], kill)
        assert code == -signal.SIGKILL, (kill, code, log[-2000:])
        kills += 1
    assert kills == 6
    code, log = server.run(["coevolve", run, *COEVOLVE])
    assert code == 0, log[-2000:]
    a, b = population_state(ref), population_state(run)
    assert a["generation"] == b["generation"] == 3
    assert a["files"] == b["files"]  # every cell's weights and optimizers, by sha256
    assert a["cells"] == b["cells"]  # learning rates, mixture weights, scores
    assert records(ref) == records(run)


def test_update_order_does_not_change_the_population():
    cfg = get_preset("quick")
    corpus = load_corpus("oracle", cfg.data, cfg.data.seq_len, 0)
    cfg.generator.vocab_size = len(corpus.vocab)
    pops = []
    for order in ([0, 1, 2, 3], [3, 1, 0, 2]):
        pop = Population(cfg, EvolveConfig(grid="2x2", d_pretrain=1, fitness_samples=32),
                         torch.device("cpu"), 5, corpus.train, corpus.test[:64], corpus.oracle, corpus.vocab)
        pop.populate(None)
        for _ in range(2):
            pop.step(order)
        pops.append(pop)
    a, b = pops
    for ca, cb in zip(a.cells.values(), b.cells.values()):
        for (ka, va), (kb, vb) in zip(ca.st.G.state_dict().items(), cb.st.G.state_dict().items()):
            assert ka == kb and torch.equal(va, vb)
        for va, vb in zip(ca.st.D.state_dict().values(), cb.st.D.state_dict().values()):
            assert torch.equal(va, vb)
        assert (ca.lr_g, ca.lr_d, ca.score) == (cb.lr_g, cb.lr_d, cb.score)
        assert torch.equal(ca.mixture, cb.mixture)


def test_a_coevolution_run_is_a_run(tmp_path):
    run = tmp_path / "run"
    succeeds(invoke(*PRETRAIN, "--out", run))
    succeeds(invoke("coevolve", run, "--grid", "1x3", "--generations", "2", "--d-pretrain", "0",
                    "--g-loss", "mse", "--device", "cpu"))
    recs = [r for r in records(run) if r["phase"] == "coevolve"]
    assert [(r["epoch"], r["cell"]) for r in recs] == [(g, c) for g in (1, 2) for c in range(3)]
    assert all(r["g_losses"] == ["mse"] and len(r["mixture"]) == 3 for r in recs)
    assert abs(sum(recs[-1]["mixture"]) - 1.0) < 1e-5
    # the model is the best cell's mixture: it samples and evaluates like any run's
    r = invoke("sample", run, "-n", "4", "--device", "cpu")
    assert r.exit_code == 0 and len(r.output.splitlines()) == 4
    state = population_state(run)
    best = min(state["cells"], key=lambda c: c["score"])["score"]
    got = seqgan.open_run(run).evaluate(["nll-test"], n=8, device="cpu")  # the mixture's exact NLL
    assert abs(got["nll-test"] - best) < 1e-9
    # pair training on it is refused; a different grid is refused; more generations resume
    assert "is a coevolution run" in error_line(invoke("train", run, "--device", "cpu"))
    assert "coevolves a 1x3 grid, not 2x2" in error_line(invoke("coevolve", run, "--grid", "2x2"))
    succeeds(invoke("coevolve", run, "--generations", "3", "--device", "cpu"))
    assert population_state(run)["generation"] == 3


def test_bad_coevolution_options_are_one_line(tmp_path):
    run = tmp_path / "run"
    succeeds(invoke(*PRETRAIN, "--out", run))
    for args, words in ((["--grid", "3"], "ROWSxCOLS"), (["--grid", "0x2"], "grid"),
                        (["--generations", "-1"], "--generations"),
                        (["--mixture-score", "nll-oracle", "--lambda", "2"], "--lambda"),
                        (["--lambda", "0.5"], "needs an objective"),
                        (["--device", "tpu"], "unknown device")):
        line = error_line(invoke("coevolve", run, *args))
        assert words in line, (args, line)
    with pytest.raises(UserError, match="choose one of: seqgan, heuristic, bce, mse, random"):
        seqgan.open_run(run).coevolve(g_loss="nope")
    assert not (run / "population").exists()
    # a run without an MLE generator coevolves only from scratch
    bare = seqgan.create_run(tmp_path / "bare", data="oracle", preset="quick")
    with pytest.raises(UserError, match="no MLE generator yet.*--from-scratch"):
        bare.coevolve(grid="1x2", generations=1, device="cpu", progress=False)
    assert bare.coevolve(grid="1x2", generations=1, from_scratch=True, d_pretrain=0, device="cpu",
                         progress=False)["generation"] == 1


def test_sample_based_mixture_scores(tmp_path):
    """nll-oracle, bleu (text) and objective (music) score a mixture by its samples."""
    oracle = tmp_path / "oracle"
    succeeds(invoke(*PRETRAIN, "--out", oracle))
    succeeds(invoke("coevolve", oracle, "--grid", "1x2", "--generations", "1", "--d-pretrain", "0",
                    "--mixture-score", "nll-oracle", "--device", "cpu"))
    assert population_state(oracle)["cells"][0]["score"] > 0  # an NLL
    text = tmp_path / "s.txt"
    text.write_text("".join(f"the cat {w} on the mat .\n" for w in ("sat", "lay", "slept", "sat") * 10))
    run = tmp_path / "text"
    succeeds(invoke("pretrain", "--data", text, "--preset", "quick", "--epochs", "2", "--out", run,
                    "--device", "cpu"))
    assert "needs the run's objective" in error_line(invoke("coevolve", run, "--mixture-score", "objective",
                                                           "--device", "cpu"))
    assert "needs a run on oracle data" in error_line(invoke("coevolve", run, "--mixture-score",
                                                            "nll-oracle", "--device", "cpu"))
    succeeds(invoke("coevolve", run, "--grid", "1x2", "--generations", "1", "--d-pretrain", "0",
                    "--mixture-score", "bleu", "--device", "cpu"))
    scores = [c["score"] for c in population_state(run)["cells"]]
    assert all(-1.0 <= s <= 0.0 for s in scores)  # minus a BLEU
    abc = tmp_path / "tunes.abc"
    abc.write_text("".join(abc_tune(body=b, x=i) for i, b in enumerate(
        ["CDEF GABc|cBAG FEDC|", "EGce gecG|FAcf afcA|", "GABc dcBA|GFED CDEF|", "ccGG AAGz|FFEE DDCz|"] * 4)))
    music = tmp_path / "music"
    succeeds(invoke("pretrain", "--data", abc, "--preset", "quick", "--epochs", "1", "--out", music,
                    "--data-option", "window=8", "--data-option", "cache=false", "--device", "cpu"))
    succeeds(invoke("coevolve", music, "--grid", "1x2", "--generations", "1", "--d-pretrain", "0",
                    "--objective", "ratio_of_steps", "--mixture-score", "objective", "--device", "cpu"))
    assert all(-1.0 <= c["score"] <= 0.0 for c in population_state(music)["cells"])  # minus a mean in [0, 1]
