"""The variants of SeqGAN's Table-1 baselines: scheduled sampling's schedules, units and
picks (Bengio et al. 2015), PG-BLEU's smoothing and reference subsets (nltk as the
reference), and the best-NLL-test stopping rule (``--select best-nll-test``)."""
from __future__ import annotations

import json
import math
import random
from types import SimpleNamespace

import pytest
import torch
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

import seqgan
from helpers import invoke, succeeds
from seqgan.errors import UserError
from seqgan.metrics.bleu import BleuReference, eos_lengths
from seqgan.models.generator import Generator, GeneratorConfig
from seqgan.training.mle import ss_logits
from seqgan.training.selection import SELECTED_FILE, Selector, lowest_nll_test
from seqgan.training.ss_schedule import auto_k, ss_probability


# -- the schedules ------------------------------------------------------------------------
def test_linear_is_the_per_epoch_ramp():
    assert [ss_probability("linear", 0.25, 0, e, 200, b, 157) for e, b in ((0, 0), (0, 156), (99, 3), (199, 0))] \
        == [0.25 / 200, 0.25 / 200, 0.125, 0.25]
    assert ss_probability("constant", 0.3, 0, 7, 10, 5, 9) == 0.3


def test_bengio_decays_by_hand():
    # inverse sigmoid, k = 10, minibatch i = 2 * 10 + 3 = 23: eps = 10 / (10 + e^2.3)
    eps = 10 / (10 + math.exp(2.3))
    assert ss_probability("inverse-sigmoid", 1.0, 10, 2, 5, 3, 10) == pytest.approx(1 - eps, abs=1e-15)
    assert ss_probability("exponential", 1.0, 0.99, 1, 5, 0, 10) == pytest.approx(1 - 0.99 ** 10)
    assert ss_probability("inverse-sigmoid", 0.25, 10, 4, 5, 9, 10) == 0.25  # capped
    assert ss_probability("inverse-sigmoid", 1.0, 10, 0, 5, 0, 10) == pytest.approx(1 - 10 / 11)


@pytest.mark.parametrize("schedule", ["inverse-sigmoid", "exponential"])
@pytest.mark.parametrize("epochs,batches", [(200, 157), (3, 4), (1, 1)])
def test_auto_k_gives_even_odds_at_mid_run(schedule, epochs, batches):
    m = max(epochs * batches / 2, 1.0)  # the midpoint; at least one minibatch
    k = auto_k(schedule, epochs * batches / 2)
    p_mid = 1 - k / (k + math.exp(m / k)) if schedule == "inverse-sigmoid" else 1 - k ** m
    assert p_mid == pytest.approx(0.5, abs=1e-9)
    assert (k >= 1) if schedule == "inverse-sigmoid" else (0 < k < 1)


# -- scheduled sampling's forward pass -----------------------------------------------------
@pytest.fixture(scope="module")
def gen():
    torch.manual_seed(0)
    g = Generator(GeneratorConfig(vocab_size=30, emb_dim=8, hidden_dim=8, seq_len=6))
    g.eval()
    return g, torch.randint(0, 30, (40, 6), generator=torch.Generator().manual_seed(1))


def greedy_logits(g, batch):
    """Logits of feeding the argmax after every step (p = 1), step by step by hand."""
    h, c = g.init_state(len(batch))
    x = torch.full((len(batch),), g.cfg.start_token, dtype=torch.long)
    out = []
    for _ in range(batch.shape[1]):
        h, c, logits = g.step(x, h, c)
        out.append(logits)
        x = logits.argmax(-1)
    return torch.stack(out, 1)


def test_ss_extremes_are_teacher_forcing_and_free_running(gen):
    g, batch = gen
    with torch.no_grad():
        forced = g(batch)
        assert torch.allclose(ss_logits(g, batch, 0.0), forced, atol=1e-5)
        free = greedy_logits(g, batch)
        for unit in ("token", "sequence"):
            assert torch.allclose(ss_logits(g, batch, 1.0, "argmax", unit), free, atol=1e-5)


def test_a_sequence_coin_feeds_a_row_all_or_nothing(gen):
    g, batch = gen
    torch.manual_seed(3)
    with torch.no_grad():
        mixed = ss_logits(g, batch, 0.5, "argmax", "sequence")
        forced, free = g(batch), greedy_logits(g, batch)
    as_forced = [torch.allclose(mixed[r], forced[r], atol=1e-5) for r in range(len(batch))]
    as_free = [torch.allclose(mixed[r], free[r], atol=1e-5) for r in range(len(batch))]
    assert all(a or b for a, b in zip(as_forced, as_free))
    assert 5 < sum(as_free) < 35  # about half the rows ran free
    torch.manual_seed(3)
    with torch.no_grad():  # a coin per token mixes within rows
        per_token = ss_logits(g, batch, 0.5, "argmax", "token")
    assert sum(torch.allclose(per_token[r], forced[r], atol=1e-5) or torch.allclose(per_token[r], free[r], atol=1e-5)
               for r in range(len(batch))) < len(batch) // 2


# -- PG-BLEU's reward variants ------------------------------------------------------------
NLTK = {"method0": SmoothingFunction().method0, "method1": SmoothingFunction().method1,
        "method2": SmoothingFunction().method2}


@pytest.mark.filterwarnings("ignore::UserWarning")  # nltk's method0 warns on zero counts
@pytest.mark.parametrize("smoothing", list(NLTK))
@pytest.mark.parametrize("n", [2, 3, 4])
def test_bleu_smoothings_equal_nltk(smoothing, n):
    rng = random.Random(n)
    refs = [[rng.randrange(8) for _ in range(rng.randrange(3, 10))] for _ in range(30)]
    hyps = [[rng.randrange(10) for _ in range(rng.randrange(1, 10))] for _ in range(40)] + [[9, 9, 9]]
    for r in rng.sample(refs, 20):  # near copies of references: their 4-grams match
        h = list(r)
        h[rng.randrange(len(h))] = rng.randrange(10)
        hyps.append(h[:rng.randrange(2, len(h) + 1)])
    T = max(map(len, hyps))
    toks = torch.tensor([h + [0] * (T - len(h)) for h in hyps])
    got = BleuReference(refs, max_n=n).score_tensor(toks, torch.tensor([len(h) for h in hyps]), n, smoothing=smoothing)
    want = [sentence_bleu(refs, h, weights=(1 / n,) * n, smoothing_function=NLTK[smoothing]) for h in hyps]
    assert got.tolist() == pytest.approx(want, abs=1e-12)
    assert len({round(v, 9) for v in want}) > 5 and 0.0 in want  # varied cases, some zero


def test_pg_bleu_reference_subset_is_seeded_and_matters():
    from seqgan.training.adversarial import bleu_scorer

    data = torch.randint(2, 40, (300, 8), generator=torch.Generator().manual_seed(0))
    vocab = SimpleNamespace(eos=None, strip=lambda row: row)
    hyps = torch.randint(2, 40, (50, 8), generator=torch.Generator().manual_seed(1))
    full = bleu_scorer(data, vocab, 3)(hyps)
    sub = bleu_scorer(data, vocab, 3, refs=20, seed=5)(hyps)
    pick = torch.randperm(300, generator=torch.Generator().manual_seed(5))[:20]
    ref = BleuReference(data[pick].tolist(), max_n=3).score_tensor(hyps, eos_lengths(hyps, None), 3).float()
    assert torch.equal(sub, ref)
    assert (sub <= full + 1e-6).all() and (sub < full - 1e-3).any()  # fewer references, fewer matches
    assert torch.equal(bleu_scorer(data, vocab, 3, refs=300)(hyps), full)  # all of them


# -- the best-NLL-test rule ---------------------------------------------------------------
def test_lowest_nll_test_of_a_log():
    recs = [{"phase": "mle", "epoch": 5, "metrics": {"nll_test": 1.0}},
            {"phase": "adversarial", "epoch": 1, "metrics": {"nll_test": 3.0}},
            {"phase": "adversarial", "epoch": 2, "metrics": {"nll_test": 2.5}},
            {"phase": "adversarial", "epoch": 3, "metrics": {}},
            {"phase": "adversarial", "epoch": 4, "metrics": {"nll_test": 2.5}},
            {"phase": "adversarial", "epoch": 5, "metrics": {"nll_test": 2.7}}]
    c = lowest_nll_test(recs)
    assert (c.epoch, c.gap) == (2, 2.5)
    assert lowest_nll_test(recs[:1]) is None


def test_best_nll_test_needs_held_out_data():
    run = SimpleNamespace(vocab=SimpleNamespace(kind="oracle"), config=SimpleNamespace(
        train=SimpleNamespace(select="best-nll-test", objective=None)))
    with pytest.raises(UserError, match="needs held-out data"):
        Selector(run, torch.zeros(1, 1), has_test=False)
    assert Selector(run, torch.zeros(1, 1), has_test=True).active


def test_best_nll_test_keeps_the_epoch_and_readers_use_it(tmp_path):
    run = tmp_path / "r"
    succeeds(invoke("pretrain", "--data", "oracle", "--preset", "quick", "--out", run, "--device", "cpu"))
    succeeds(invoke("train", run, "--baseline", "ss", "--epochs", "4", "--select", "best-nll-test",
                    "--ss-schedule", "constant", "--ss-max-prob", "0.9", "--ss-pick", "argmax", "--device", "cpu"))
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    adv = [r for r in recs if r["phase"] == "adversarial"]
    assert [r["metrics"]["ss_prob"] for r in adv] == [0.9] * 4
    best = min(adv, key=lambda r: r["metrics"]["nll_test"])
    assert best["epoch"] < adv[-1]["epoch"]  # (this seed) so the kept and the final generators differ
    assert adv[-1]["selected"]["epoch"] == best["epoch"]
    r = seqgan.open_run(run)
    from safetensors.torch import load_file

    from seqgan.evaluation import load_generator

    sel = load_file(run / SELECTED_FILE)
    g = load_generator(r.dir, "default", "cpu")
    assert all(torch.equal(g.state_dict()[k], v) for k, v in sel.items())
    # evaluate scores the kept generator: its NLL-test is the one recorded at the kept epoch
    assert r.evaluate(["nll-test"])["nll-test"] == pytest.approx(best["metrics"]["nll_test"], abs=1e-6)
    assert r.evaluate(["nll-test"], final=True)["nll-test"] == pytest.approx(adv[-1]["metrics"]["nll_test"], abs=1e-6)


def test_a_decay_constant_on_the_wrong_side_is_one_line(tmp_path):
    from helpers import error_line

    run = tmp_path / "r"
    succeeds(invoke("pretrain", "--data", "oracle", "--preset", "quick", "--epochs", "1", "--out", run,
                    "--device", "cpu"))
    before = (run / "config.json").read_text()
    line = error_line(invoke("train", run, "--baseline", "ss", "--ss-schedule", "exponential", "--ss-k", "5",
                             "--device", "cpu"))
    assert "--ss-k of the exponential schedule must be below 1" in line
    assert "at least 1" in error_line(invoke("train", run, "--baseline", "ss", "--ss-schedule",
                                             "inverse-sigmoid", "--ss-k", "0.5", "--device", "cpu"))
    assert (run / "config.json").read_text() == before
