"""``--batched-cells`` (seqgan.evolve.batched): a population whose cells are updated as one
stacked model per generation makes the same random draws and discrete decisions as the
default path (one cell at a time) and ends with the same weights, learning rates, metrics
and mixtures to float tolerance (SeqGAN's reward, and a WGAN critic with an ORGAN
objective, the duplicate penalty, a baseline, subsets of positives and several steps);
the stacking order changes nothing; the knob is recorded in the run, and a killed and
resumed batched run ends bit-identical to an uninterrupted one."""
from __future__ import annotations

import json
import shutil
import signal

import pytest
import torch

from seqgan.datasets import load_corpus
from seqgan.evolve.population import Population
from seqgan.runs.evolve_config import EvolveConfig
from seqgan.runs.presets import get_preset

DISCRETE = ("g_losses", "selected", "replaced", "epoch", "cell", "neighbourhood")
PRETRAIN = ["pretrain", "--data", "oracle", "--preset", "quick", "--seed", "3", "--epochs", "1",
            "--device", "cpu"]
COEVOLVE = ["--grid", "1x3", "--generations", "2", "--d-pretrain", "1", "--device", "cpu"]


def even_tokens(tokens: torch.Tensor, vocab) -> torch.Tensor:
    """A toy objective in [0, 1]: the share of even token ids."""
    return (tokens % 2 == 0).float().mean(1)


def populations(grid: str, variant: str, orders=(None,), generations: int = 2, fitness: int = 32):
    cfg = get_preset("quick")
    corpus = load_corpus("oracle", cfg.data, cfg.data.seq_len, 0)
    cfg.generator.vocab_size = len(corpus.vocab)
    objective = None
    if variant == "wgan-organ":
        cfg.discriminator.loss, cfg.discriminator.impl = "wgan", "fused"
        tc = cfg.train
        tc.lambda_, tc.objective, tc.duplicate_penalty, tc.reward_baseline = 0.5, "even", True, True
        tc.g_steps, tc.d_steps, tc.k_epochs, tc.d_samples = 2, 2, 2, 96
        objective = even_tokens
    out = []
    for batched, order in [(False, None)] + [(True, o) for o in orders]:
        ecfg = EvolveConfig(grid=grid, d_pretrain=1, fitness_samples=fitness, batched_cells=batched)
        pop = Population(cfg, ecfg, torch.device("cpu"), 5, corpus.train, corpus.test[:64], corpus.oracle,
                         corpus.vocab, objective)
        pop.populate(None)
        recs = [r for _ in range(generations) for r in pop.step(order)]
        out.append((pop, recs))
    return out


def assert_close_populations(a, b, exact: bool = False):
    (pa, ra), (pb, rb) = a, b
    assert len(ra) == len(rb)
    for x, y in zip(ra, rb):
        for key in DISCRETE:
            assert x[key] == y[key], (x["epoch"], x["cell"], key)
        mx, my = x["metrics"], y["metrics"]
        assert mx.keys() == my.keys()
        for key in mx:
            assert mx[key] == (my[key] if exact else pytest.approx(my[key], rel=1e-4, abs=1e-6)), key
        assert x["mixture"] == (y["mixture"] if exact else pytest.approx(y["mixture"], abs=1e-5))
    for ca, cb in zip(pa.cells.values(), pb.cells.values()):
        assert (ca.lr_g, ca.lr_d) == (cb.lr_g, cb.lr_d)  # mutations: the same draws
        for name in ("G", "D"):
            sa, sb = getattr(ca.st, name).state_dict(), getattr(cb.st, name).state_dict()
            for key in sa:
                if exact:
                    assert torch.equal(sa[key], sb[key]), (ca.index, name, key)
                else:
                    torch.testing.assert_close(sa[key], sb[key], rtol=1e-3, atol=1e-4)
        for oa, ob in ((ca.st.opt_adv, cb.st.opt_adv), (ca.st.d_trainer.opt, cb.st.d_trainer.opt)):
            for p, q in zip(oa.param_groups[0]["params"], ob.param_groups[0]["params"]):
                sa, sb = oa.state.get(p, {}), ob.state.get(q, {})
                assert sa.keys() == sb.keys()  # fresh (adopted after training) in both or neither
                if sa:
                    assert int(sa["step"]) == int(sb["step"])
                    torch.testing.assert_close(sa["exp_avg_sq"], sb["exp_avg_sq"], rtol=1e-3, atol=1e-9)


def test_batched_cells_equal_one_cell_at_a_time_and_any_order():
    default, batched, reordered = populations("2x2", "seqgan", orders=(None, [3, 1, 0, 2]))
    assert_close_populations(default, batched)
    assert_close_populations(batched, reordered, exact=True)  # members never mix
    assert any(r["selected"] != [0, 0] for r in batched[1])  # a neighbour's model was adopted


def test_batched_wgan_critic_with_an_organ_objective():
    default, batched = populations("1x3", "wgan-organ", fitness=256)  # all 256 rows, reshuffled
    assert_close_populations(default, batched)
    assert all(len(r["g_losses"]) == 2 for r in batched[1])


def test_the_knob_is_recorded_and_a_killed_batched_run_resumes_bit_identical(tmp_path, server):
    ref, run = tmp_path / "ref", tmp_path / "run"
    assert server.run([*PRETRAIN, "--out", ref])[0] == 0
    shutil.copytree(ref, run)
    code, log = server.run(["coevolve", ref, *COEVOLVE, "--batched-cells"])
    assert code == 0, log[-2000:]
    assert json.loads((ref / "config.json").read_text())["config"]["evolve"]["batched_cells"] is True
    # 15 files a checkpoint (5 a cell): the 17th is half-written in generation 1's
    code, log = server.run(["coevolve", run, *COEVOLVE, "--batched-cells"], "tensorwrite:17")
    assert code == -signal.SIGKILL, (code, log[-2000:])
    code, log = server.run(["coevolve", run, *COEVOLVE])  # the run's config keeps the knob on
    assert code == 0, log[-2000:]
    a, b = (json.loads((r / "population" / "state.json").read_text()) for r in (ref, run))
    assert a["generation"] == b["generation"] == 2
    assert a["files"] == b["files"] and a["cells"] == b["cells"]
    ra, rb = ([{k: v for k, v in json.loads(line).items() if k != "seconds"}
               for line in (r / "metrics.jsonl").read_text().splitlines()] for r in (ref, run))
    assert ra == rb and sum(r["phase"] == "coevolve" for r in ra) == 6


@pytest.mark.gpu
def test_batched_cells_on_cuda():
    """On a GPU (TF32 products, other kernels) the paths can sample different tokens, so
    only what comes from the cells' CPU choice streams must agree: the losses drawn and the
    learning-rate mutations; the rest must be finite and in range."""
    cfg = get_preset("quick")
    corpus = load_corpus("oracle", cfg.data, cfg.data.seq_len, 0)
    cfg.generator.vocab_size = len(corpus.vocab)
    dev = torch.device("cuda")
    recs, pops = {}, {}
    for batched in (False, True):
        ecfg = EvolveConfig(grid="2x2", d_pretrain=1, fitness_samples=64, batched_cells=batched)
        pop = Population(cfg, ecfg, dev, 5, corpus.train.to(dev), corpus.test[:64].to(dev),
                         corpus.oracle.to(dev), corpus.vocab)
        pop.populate(None)
        recs[batched] = [r for _ in range(2) for r in pop.step()]
        pops[batched] = pop
    for a, b in zip(recs[False], recs[True]):
        assert a["g_losses"] == b["g_losses"]
        assert (a["metrics"]["lr_g"], a["metrics"]["lr_d"]) == (b["metrics"]["lr_g"], b["metrics"]["lr_d"])
        assert 0 <= b["metrics"]["g_fitness"] <= 1 and 0 <= b["metrics"]["d_fitness"] <= 1
    for cell in pops[True].cells.values():
        cell.st.check_finite()
        assert cell.st.G.device.type == "cuda" and cell.score < 10
