"""Coevolution's parts against hand-worked values: generator losses as rewards, the
torus's neighbourhoods, selection, mutation, the (1+1)-ES, and the mixture's exact
likelihood against a float64 brute-force sum over every sequence of a tiny vocabulary."""
from __future__ import annotations

import itertools
import math

import pytest
import torch

from seqgan.errors import UserError
from seqgan.evolve.grid import Torus
from seqgan.evolve.mixture import MixtureGenerator, mixture_nll, sequence_log_likelihoods
from seqgan.evolve.operators import cell_seed, es_step, mutate_lr, normalise, tournament
from seqgan.models.generator import Generator, GeneratorConfig
from seqgan.training.g_losses import draw, get_g_loss


# -- generator losses -------------------------------------------------------------------------
@pytest.mark.parametrize("name,d,want", [
    ("seqgan", 0.25, 0.25), ("seqgan", 0.9, 0.9),
    ("heuristic", 0.25, math.log(0.25)), ("heuristic", 0.5, math.log(0.5)),
    ("bce", 0.25, -math.log(0.75)), ("bce", 0.5, math.log(2.0)),
    ("mse", 0.25, -0.5625), ("mse", 1.0, 0.0),
])
def test_generator_losses_as_rewards(name, d, want):
    assert float(get_g_loss(name)(torch.tensor([d], dtype=torch.float64))) == pytest.approx(want, abs=1e-12)


def test_log_losses_are_finite_at_the_ends():
    d = torch.tensor([0.0, 1.0])
    for name in ("heuristic", "bce"):
        assert torch.isfinite(get_g_loss(name)(d)).all()


def test_the_declared_choices_are_the_registry():
    from seqgan.runs.evolve_config import G_LOSS_NAMES
    from seqgan.training.g_losses import CHOICES

    assert CHOICES == G_LOSS_NAMES


def test_random_draws_every_loss_from_the_stream_and_unknown_names_fail():
    rng = torch.Generator().manual_seed(0)
    drawn = [draw("random", rng) for _ in range(200)]
    assert set(drawn) == {"seqgan", "heuristic", "bce", "mse"}
    again = torch.Generator().manual_seed(0)
    assert [draw("random", again) for _ in range(200)] == drawn
    assert draw("mse") == "mse"
    with pytest.raises(UserError, match="choose one of: seqgan, heuristic, bce, mse, random"):
        get_g_loss("wasserstein")


# -- the torus ----------------------------------------------------------------------------------
@pytest.mark.parametrize("grid,cell,want", [
    ("1x1", 0, [0]),
    ("1x3", 0, [0, 2, 1]), ("1x3", 1, [1, 0, 2]),
    ("2x2", 0, [0, 2, 1]), ("2x2", 3, [3, 1, 2]),
    ("3x3", 0, [0, 6, 3, 2, 1]), ("3x3", 4, [4, 1, 7, 3, 5]), ("3x3", 8, [8, 5, 2, 7, 6]),
    ("4x5", 0, [0, 15, 5, 4, 1]), ("4x5", 7, [7, 2, 12, 6, 8]), ("4x5", 19, [19, 14, 4, 18, 15]),
])
def test_von_neumann_neighbourhoods(grid, cell, want):
    assert Torus.parse(grid).neighbourhood(cell) == want


def test_neighbourhoods_are_symmetric_on_every_torus():
    for r, c in itertools.product(range(1, 6), range(1, 6)):
        t = Torus(r, c)
        hoods = t.neighbourhoods()
        for k, hood in enumerate(hoods):
            assert hood[0] == k and len(set(hood)) == len(hood) <= 5
            assert all(k in hoods[j] for j in hood)  # j is k's neighbour iff k is j's


@pytest.mark.parametrize("text", ["3", "0x3", "3x0", "axb", "3x3x3", ""])
def test_bad_grids_are_one_line(text):
    with pytest.raises(UserError, match="grid"):
        Torus.parse(text)


# -- operators ------------------------------------------------------------------------------------
def test_cell_streams_depend_only_on_seed_cell_and_generation():
    assert cell_seed(1, 2, 3) == cell_seed(1, 2, 3)
    seeds = {cell_seed(s, c, g) for s in range(3) for c in range(4) for g in range(5)}
    assert len(seeds) == 60 and all(0 <= x < 2**63 for x in seeds)


def test_tournament_keeps_the_fitter_of_two_draws():
    fit = [0.1, 0.9, 0.5, 0.3]
    rng = torch.Generator().manual_seed(3)
    picks = torch.randint(4, (2,), generator=torch.Generator().manual_seed(3)).tolist()
    assert tournament(fit, rng, 2) == max(picks, key=fit.__getitem__)
    wins = [tournament(fit, rng, 2) for _ in range(2000)]
    # P(win) for size 2 with replacement: (2·rank + 1) / 16 for ranks 0..3 from the worst
    for i, rank in ((0, 0), (3, 1), (2, 2), (1, 3)):
        assert wins.count(i) / 2000 == pytest.approx((2 * rank + 1) / 16, abs=0.03)


def test_learning_rate_mutation():
    rng = torch.Generator().manual_seed(5)
    ref = torch.Generator().manual_seed(5)
    torch.rand((), generator=ref)  # the draw that decides whether to mutate
    eps = float(torch.randn((), generator=ref))
    got = mutate_lr(0.01, rng, prob=1.0, std=0.1, lo=0.001, hi=0.1)
    assert got == pytest.approx(0.01 * (1 + 0.1 * eps))
    assert mutate_lr(0.01, torch.Generator(), prob=0.0, std=0.1, lo=0.0, hi=1.0) == 0.01
    clipped = [mutate_lr(0.01, rng, 1.0, 50.0, 0.005, 0.02) for _ in range(100)]
    assert min(clipped) == 0.005 and max(clipped) == 0.02


def test_es_step_keeps_a_better_child_only():
    target = torch.tensor([0.7, 0.2, 0.1], dtype=torch.float64)

    def score(w):
        return float((w - target).abs().sum())

    w = torch.full((3,), 1 / 3, dtype=torch.float64)
    s = score(w)
    rng = torch.Generator().manual_seed(0)
    for _ in range(3000):
        w2, s2 = es_step(w, s, score, rng, sigma=0.01)
        assert s2 <= s and torch.isclose(w2.sum(), torch.tensor(1.0, dtype=torch.float64))
        assert (w2 >= 0).all()
        w, s = w2, s2
    assert s < 0.05
    assert torch.equal(normalise(torch.tensor([-1.0, -2.0])), torch.tensor([0.5, 0.5], dtype=torch.float64))


# -- the mixture's exact likelihood ----------------------------------------------------------------
def tiny_generators(k: int, double: bool = True) -> list[Generator]:
    torch.manual_seed(11)
    cfg = GeneratorConfig(vocab_size=3, emb_dim=4, hidden_dim=5, seq_len=3, init_std=0.8)
    gs = [Generator(cfg).eval() for _ in range(k)]
    return [g.double() for g in gs] if double else gs


def test_mixture_nll_equals_a_brute_force_sum_over_all_sequences():
    gs = tiny_generators(3)
    w = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    every = torch.tensor(list(itertools.product(range(3), repeat=3)))  # all 27 sequences
    # brute force in float64: p_i(x) = prod_t softmax(...)[x_t], p(x) = sum_i w_i p_i(x)
    probs = []
    for g in gs:
        with torch.no_grad():
            p = torch.softmax(g(every).double(), -1).gather(2, every.unsqueeze(2)).squeeze(2).prod(1)
        probs.append(p)
    probs = torch.stack(probs)  # (3, 27)
    assert torch.allclose(probs.sum(1), torch.ones(3, dtype=torch.float64))  # each a distribution
    mix = (w.unsqueeze(1) * probs).sum(0)
    assert float(mix.sum()) == pytest.approx(1.0, abs=1e-12)
    data = every[[0, 5, 5, 13, 26, 7]]
    want = -float(torch.log(mix[[0, 5, 5, 13, 26, 7]]).mean()) / 3
    ll = torch.stack([sequence_log_likelihoods(g, data) for g in gs])
    assert mixture_nll(ll, w, 3) == pytest.approx(want, abs=1e-12)
    assert MixtureGenerator(gs, w).nll(data) == pytest.approx(want, abs=1e-12)
    # one member with all the weight is that member's NLL; a zero weight drops a member
    one = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    assert mixture_nll(ll, one, 3) == pytest.approx(-float(torch.log(probs[1][[0, 5, 5, 13, 26, 7]]).mean()) / 3)


def test_mixture_samples_members_by_weight():
    gs = tiny_generators(2, double=False)
    w = torch.tensor([1.0, 0.0], dtype=torch.float64)
    got = MixtureGenerator(gs, w).sample(50, generator=torch.Generator().manual_seed(4))
    assert got.shape == (50, 3)
    # with all the weight on member 0 every row comes from it: same stream after the draw
    rng2 = torch.Generator().manual_seed(4)
    torch.multinomial(w.float(), 50, replacement=True, generator=rng2)
    assert torch.equal(got, gs[0].sample(50, generator=rng2))
    half = MixtureGenerator(gs, torch.tensor([0.5, 0.5])).sample(400, generator=torch.Generator())
    assert half.shape == (400, 3)


# -- the Wasserstein critic -----------------------------------------------------------------------
def test_rescale_groups_by_hand():
    from seqgan.training.rewards import rescale_groups

    d = torch.tensor([1.0, 3.0, 2.0, 5.0, 5.0, 5.0])
    got = rescale_groups(d, 3)
    assert torch.allclose(got, torch.tensor([0.0, 1.0, 0.5, 0.5, 0.5, 0.5]))


def test_wgan_critic_loss_and_clipping():
    from seqgan.models.discriminator import Discriminator, DiscriminatorConfig
    from seqgan.training.d_training import DiscriminatorTrainer

    torch.manual_seed(2)
    cfg = DiscriminatorConfig(emb_dim=8, filter_sizes=(1, 2), num_filters=(4, 4), loss="wgan", clip=0.05)
    d = Discriminator(cfg, vocab_size=10, seq_len=6)
    x = torch.randint(10, (8, 6))
    y = torch.tensor([1, 1, 1, 1, 0, 0, 0, 0])
    d.eval()
    loss, logits = d.loss(x, y)
    s = (logits[:, 1] - logits[:, 0]).detach()
    assert float(loss.detach()) == pytest.approx(float((s[4:].mean() - s[:4].mean()) / 2), abs=1e-6)
    assert torch.allclose(d.critic(x), s, atol=1e-6)
    assert torch.allclose(d.prob_real(x), torch.sigmoid(s), atol=1e-6)
    tr = DiscriminatorTrainer(d, lr=0.1, batch_size=4)
    tr.train_epochs(x[:4], x[4:], 2)
    assert max(float(p.abs().max()) for p in d.parameters()) <= 0.05 + 1e-7


def test_a_wgan_run_trains_and_coevolves(tmp_path):
    from helpers import invoke, succeeds

    run = tmp_path / "run"
    succeeds(invoke("pretrain", "--data", "oracle", "--preset", "quick", "--epochs", "1", "--out", run,
                    "--device", "cpu"))
    pair = tmp_path / "pair"
    import shutil

    shutil.copytree(run, pair)
    succeeds(invoke("train", pair, "--d-loss", "wgan", "--g-loss", "random", "--epochs", "2",
                    "--d-pretrain-steps", "1", "--device", "cpu"))
    succeeds(invoke("coevolve", run, "--d-loss", "wgan", "--grid", "1x2", "--generations", "1",
                    "--d-pretrain", "1", "--device", "cpu"))
