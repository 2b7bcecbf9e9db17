"""One cell of a population and its update: a pure function of the cell and its
neighbours' weights.

A generation, for a cell c with neighbourhood N(c) = (c, n_1, ...) (its snapshot weights
at the start of the generation):

1. fitness of every generator and discriminator of N(c) against the others, on one batch
   of real sequences and one of samples per generator: a generator's fitness is the mean
   probability the neighbourhood's discriminators give its samples (it fools them); a
   discriminator's is its mean accuracy on the real batch and every generator's samples;
2. tournament selection (size 2): the centre's generator and discriminator are the winners
   (a neighbour's weights are copied in, with fresh optimizer state);
3. one epoch of training against opponents drawn from N(c): ``g_steps`` REINFORCE steps,
   each against a random neighbour's discriminator and with a generator loss drawn per
   minibatch (:mod:`seqgan.training.g_losses`), the rollout policy's update, then
   ``d_steps`` discriminator rounds, each on samples of a random neighbour's generator;
4. learning rates mutate (:func:`~seqgan.evolve.operators.mutate_lr`);
5. the worst of the sub-population is replaced by the best: if the trained generator (or
   discriminator) is now less fit than every neighbour, it takes the fittest one's weights.

Every draw comes from the cell's random stream for this generation
(:func:`~seqgan.evolve.operators.cell_seed`), so the result is the same whatever order
the cells are updated in and whichever process does it. The mixture weights evolve after
all cells are updated (:mod:`seqgan.evolve.population`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from seqgan.runs.evolve_config import EvolveConfig
from seqgan.evolve.operators import cell_seed, mutate_lr, tournament
from seqgan.models.discriminator import Discriminator
from seqgan.models.generator import Generator
from seqgan.runs.config import RunConfig
from seqgan.training.adversarial import discriminator_reward, pg_step
from seqgan.training.d_training import d_round
from seqgan.training.g_losses import draw, get_g_loss
from seqgan.training.rollout import RolloutPolicy
from seqgan.training.state import TrainingState

Weights = dict[str, torch.Tensor]
# a cell's second stream (sampling, rollouts, shuffles, dropout) is seeded cell_seed ^ this
TRAIN_STREAM = 0x5DEECE66D


@dataclass
class Cell:
    """A cell's own state: its pair in training, learning rates and mixture weights."""

    index: int
    st: TrainingState
    lr_g: float
    lr_d: float
    mixture: torch.Tensor  # (K,) float64 over the neighbourhood, in Torus.neighbourhood order
    score: float = float("inf")  # the mixture's score (lower is better)
    info: dict[str, Any] = field(default_factory=dict)  # the last generation's metrics

    def weights(self) -> tuple[Weights, Weights]:
        """(G, D) state dicts: what a neighbour receives."""
        return self.st.G.state_dict(), self.st.D.state_dict()


def new_cell(index: int, cfg: RunConfig, device: torch.device, g_init: Weights | None,
             seed: int, neighbours: int) -> Cell:
    """A fresh cell: G from ``g_init`` (or initialised from the cell's stream), a new D."""
    torch.manual_seed(cell_seed(seed, index, -1))
    st = TrainingState.build(cfg, device, log=lambda m: None)
    if g_init is not None:
        st.G.load_state_dict(g_init)
    st.ensure_adversarial(need_d=True)
    return Cell(index, st, cfg.train.adv_lr, cfg.discriminator.lr,
                torch.full((neighbours,), 1.0 / neighbours, dtype=torch.float64))


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    """Set the learning rate of every parameter group of ``opt``."""
    for group in opt.param_groups:
        group["lr"] = lr


def _models(cfg: RunConfig, device: torch.device, snaps: list[tuple[Weights, Weights]]
            ) -> tuple[list[Generator], list[Discriminator]]:
    gc, dc = cfg.generator, cfg.discriminator
    gs, ds = [], []
    for g_sd, d_sd in snaps:
        g = Generator(gc).to(device)
        g.load_state_dict(g_sd)
        d = Discriminator(dc, gc.vocab_size, gc.seq_len).to(device)
        d.load_state_dict(d_sd)
        gs.append(g.eval())
        ds.append(d.eval())
    return gs, ds


@torch.no_grad()
def fitness(gs: list[Generator], ds: list[Discriminator], real: torch.Tensor, n: int
            ) -> tuple[list[float], list[float], list[torch.Tensor]]:
    """(generator fitness, discriminator fitness, the samples used): see the module docstring."""
    fakes = [g.sample(n) for g in gs]
    p_fake = torch.stack([torch.stack([d.prob_real(f) for f in fakes]) for d in ds])  # (Kd, Kg, n)
    p_real = torch.stack([d.prob_real(real) for d in ds])  # (Kd, R)
    g_fit = p_fake.mean(dim=(0, 2))  # (Kg,)
    d_fit = ((p_real > 0.5).float().mean(1) + (p_fake < 0.5).float().mean(dim=(1, 2))) / 2  # (Kd,)
    return g_fit.tolist(), d_fit.tolist(), fakes


def adopt_generator(cell: Cell, g_sd: Weights) -> None:
    """The cell's G takes the weights ``g_sd``, with a fresh Adam (at ``cell.lr_g``) and
    rollout policy (a copy of the new G)."""
    st = cell.st
    st.G.load_state_dict(g_sd)
    st.opt_adv = torch.optim.Adam(st.G.parameters(), lr=cell.lr_g)
    st.rollout = RolloutPolicy(st.G)


def adopt_discriminator(cell: Cell, d_sd: Weights) -> None:
    """The cell's D takes the weights ``d_sd``, with a fresh Adam (at ``cell.lr_d``)."""
    st = cell.st
    st.D.load_state_dict(d_sd)
    st.d_trainer.reset_optimizer(cell.lr_d)


def update_cell(cell: Cell, snaps: list[tuple[Weights, Weights]], data: torch.Tensor, cfg: RunConfig,
                ecfg: EvolveConfig, objective: Any, vocab: Any, seed: int, generation: int) -> Cell:
    """One generation of ``cell`` given its neighbourhood's snapshot weights ``snaps``
    (index 0 its own); updates the cell in place and returns it (``cell.info``: metrics)."""
    s = cell_seed(seed, cell.index, generation)
    rng = torch.Generator().manual_seed(s)
    torch.manual_seed(s ^ TRAIN_STREAM)  # the stream of sampling, rollouts, shuffles, dropout
    st, tc, dev = cell.st, cfg.train, cell.st.device
    gs, ds = _models(cfg, dev, snaps)
    real = data[torch.randperm(len(data), device=data.device)[:ecfg.fitness_samples]]
    g_fit, d_fit, fakes = fitness(gs, ds, real, ecfg.fitness_samples)
    gi = tournament(g_fit, rng, ecfg.tournament_size)
    di = tournament(d_fit, rng, ecfg.tournament_size)
    if gi:
        adopt_generator(cell, snaps[gi][0])
    if di:
        adopt_discriminator(cell, snaps[di][1])

    losses, rewards = [], []
    for _ in range(tc.g_steps):
        opp = ds[int(torch.randint(len(ds), (1,), generator=rng))]
        name = draw(ecfg.g_loss, rng)
        reward_fn = discriminator_reward(opp, tc, objective, vocab)
        reward_fn.transform = None if name == "seqgan" else get_g_loss(name)
        rewards.append(float(pg_step(st, reward_fn)))
        losses.append(name)
    st.rollout.update(st.G, tc.update_rate)
    d_out: dict[str, float] = {}
    for _ in range(tc.d_steps):
        opp_g = gs[int(torch.randint(len(gs), (1,), generator=rng))]
        d_out = d_round(opp_g, st.d_trainer, data, tc.k_epochs, tc.d_samples)

    lo_g, lo_d = cfg.train.adv_lr, cfg.discriminator.lr
    cell.lr_g = mutate_lr(cell.lr_g, rng, ecfg.mutation_prob, ecfg.mutation_std, lo_g * ecfg.lr_min,
                          lo_g * ecfg.lr_max)
    cell.lr_d = mutate_lr(cell.lr_d, rng, ecfg.mutation_prob, ecfg.mutation_std, lo_d * ecfg.lr_min,
                          lo_d * ecfg.lr_max)
    set_lr(st.opt_adv, cell.lr_g)
    set_lr(st.d_trainer.opt, cell.lr_d)

    # replace the worst of the sub-population by the best
    st.G.eval()
    st.D.eval()
    with torch.no_grad():
        own = st.G.sample(ecfg.fitness_samples)
        g_now = float(torch.stack([d.prob_real(own) for d in ds]).mean())
        d_now = float(((st.D.prob_real(real) > 0.5).float().mean()
                       + torch.stack([(st.D.prob_real(f) < 0.5).float().mean() for f in fakes]).mean()) / 2)
    replaced = []
    if len(gs) > 1 and g_now < min(g_fit[1:]):
        adopt_generator(cell, snaps[max(range(len(g_fit)), key=g_fit.__getitem__)][0])
        replaced.append("generator")
    if len(ds) > 1 and d_now < min(d_fit[1:]):
        adopt_discriminator(cell, snaps[max(range(len(d_fit)), key=d_fit.__getitem__)][1])
        replaced.append("discriminator")
    st.G.train()
    st.D.train()
    cell.info = {"g_losses": losses, "reward": sum(rewards) / max(len(rewards), 1),
                 "d_acc": d_out.get("d_acc"), "d_loss": d_out.get("d_loss"), "lr_g": cell.lr_g,
                 "lr_d": cell.lr_d, "g_fitness": g_now, "d_fitness": d_now,
                 "selected": [gi, di], "replaced": replaced}
    return cell
