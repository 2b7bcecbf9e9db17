"""All of a process's cells updated in one go, as stacked models (``--batched-cells``).

:func:`update_cells` is :func:`~seqgan.evolve.cell.update_cell` for K cells at once: the
same algorithm (fitness, tournament selection, ``g_steps`` REINFORCE steps against drawn
opponents with drawn losses, ``d_steps`` rounds of D on a drawn neighbour's samples, lr
mutation, worst replaced by best) with every model of the K cells as one
:class:`~seqgan.models.stacked.StackedGenerator` or
:class:`~seqgan.models.stacked_d.StackedDiscriminator` of K members, so each step is a
few batched kernels instead of K times as many small ones. Where a cell reads a
neighbour's model (its j-th neighbour's G for fitness, a drawn opponent's D for rewards)
the stack gathers member k from cell k's own neighbourhood.

Random draws are the one-cell path's, made from per-cell streams instead of the global
one: cell k's choices come from ``torch.Generator(cell_seed)`` as there, and its sampling,
rollouts, shuffles and dropout from a generator holding exactly the state the global
stream has in :func:`update_cell` after ``torch.manual_seed(cell_seed ^ TRAIN_STREAM)`` and
the construction of its neighbourhood's models (on the CPU those draw initial weights
from it; the models are built here too, only for that). Every stacked step draws member
k's numbers from cell k's generator in the order the single models draw them, so both
paths make the same draws and take the same discrete decisions wherever float rounding
does not flip one: the stacked kernels (batched products, grouped convolutions, the LSTM
step formula instead of ``nn.LSTM``, other reduction orders) differ from one cell's in the
last bits, which a sampled token, a tournament or a replacement can amplify in rare
cases. Cells never mix, and the result does not depend on the order of the cells; it can
depend, at float level, on how many cells a process stacks (the number of workers).

The cells stay the population's state (:class:`~seqgan.evolve.cell.Cell`: files,
checkpoints, mixtures are unchanged): each generation stacks their weights, optimizer
state (:class:`~seqgan.models.stacked_optim.StackedAdam`) and rollout policies, and writes
them back, bit for bit, so a resumed run continues exactly.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch

from seqgan.evolve.cell import TRAIN_STREAM, Cell, Weights, adopt_discriminator, adopt_generator, set_lr
from seqgan.evolve.operators import cell_seed, mutate_lr, tournament
from seqgan.models.discriminator import Discriminator
from seqgan.models.generator import Generator
from seqgan.models.stacked import G_NAMES, StackedGenerator, StackedRollout, pg_update
from seqgan.models.stacked_optim import StackedAdam
from seqgan.models.stacked_d import D_NAMES, StackedDiscriminator, d_epoch
from seqgan.runs.config import RunConfig
from seqgan.runs.evolve_config import EvolveConfig
from seqgan.training.g_losses import draw, get_g_loss
from seqgan.training.rewards import RewardFn, check_rewards

Snap = tuple[Weights, Weights]  # a neighbour's (G, D) weights at the generation's start
SAMPLE_BATCH = 16_384  # Generator.sample's rows per batch (its draws come in these batches)
SCORE_ROWS = 32_768  # rows of all members together that one D evaluation takes at most


def cell_streams(cell: int, n: int, cfg: RunConfig, seed: int, generation: int, device: torch.device
                 ) -> tuple[torch.Generator, torch.Generator]:
    """Cell ``cell``'s (choices, training) streams of a generation with ``n`` neighbours:
    the ones :func:`~seqgan.evolve.cell.update_cell` uses (see the module docstring)."""
    s = cell_seed(seed, cell, generation)
    rng = torch.Generator().manual_seed(s)
    if device.type != "cpu":  # there the models' initialisation draws from the CPU stream
        return rng, torch.Generator(device=device).manual_seed(s ^ TRAIN_STREAM)
    gc, dc = cfg.generator, cfg.discriminator
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(s ^ TRAIN_STREAM)
        for _ in range(n):  # update_cell's _models: a G and a D per neighbour
            Generator(gc)
            Discriminator(dc, gc.vocab_size, gc.seq_len)
        gen = torch.Generator()
        gen.set_state(torch.get_rng_state())
    return rng, gen


def sample(G: StackedGenerator, n: int, gens: Sequence[torch.Generator]) -> torch.Tensor:
    """n sequences per member (K, n, T), member k's from ``gens[k]`` in the batches and
    order :meth:`Generator.sample` draws them."""
    G.eval()
    return torch.cat([G.sample(min(SAMPLE_BATCH, n - s), gens) for s in range(0, n, SAMPLE_BATCH)], 1)


def verdicts(D: StackedDiscriminator, tokens: torch.Tensor, critic: bool = False) -> torch.Tensor:
    """:meth:`StackedDiscriminator.verdicts` (K, M) of tokens (K, M, T), in chunks of rows;
    :meth:`~StackedDiscriminator.prob_real` unless ``critic``."""
    rows = max(1, SCORE_ROWS // D.k)
    fn = (lambda t: D.verdicts(t, True)) if critic else D.prob_real
    return torch.cat([fn(tokens[:, s:s + rows]) for s in range(0, tokens.shape[1], rows)], 1)


def in_stacked_order(model: torch.nn.Module, names: dict[str, str]) -> list[torch.Tensor]:
    """A single model's parameters in the order of its stacked model's (``names``: stacked
    name -> state-dict key; a discriminator registers its own in another order)."""
    return [model.get_parameter(key) for key in names.values()]


def write_adam(opt: torch.optim.Optimizer, params: Sequence[torch.Tensor], stacked: StackedAdam, k: int) -> None:
    """Member k's Adam state (moments, step, rate) into a single model's ``opt``, whose
    parameters ``params`` are in the stacked order, as ``torch.optim.Adam`` holds it (into
    the tensors it already has, where it has them: a captured CUDA graph keeps reading them)."""
    group = opt.param_groups[0]
    on_device = bool(group.get("capturable") or group.get("fused"))
    t = stacked.steps[k]
    with torch.no_grad():
        for i, p in enumerate(params):
            m, v = stacked.exp_avg[i][k], stacked.exp_avg_sq[i][k]
            old = opt.state.get(p)
            if not t:
                opt.state.pop(p, None)
            elif old and old.get("exp_avg") is not None and old["exp_avg"].shape == m.shape:
                old["step"].fill_(float(t))
                old["exp_avg"].copy_(m)
                old["exp_avg_sq"].copy_(v)
            else:
                step = torch.tensor(float(t), dtype=torch.float32, device=p.device if on_device else "cpu")
                opt.state[p] = {"step": step, "exp_avg": m.clone(), "exp_avg_sq": v.clone()}
    set_lr(opt, stacked.lr[k])


class StackedReward:
    """``(tokens (K, M, T), group_size) -> R (K, M)``: member k's tokens rewarded by cell k's
    opponent (member k of ``D``) through cell k's :class:`~seqgan.training.rewards.RewardFn`
    (its drawn generator loss, the λ-mix with the objective, the duplicate penalty)."""

    def __init__(self, D: StackedDiscriminator, fns: Sequence[RewardFn]):
        self.D, self.fns = D, list(fns)
        self.critic = D.cfg.loss == "wgan"

    def __call__(self, tokens: torch.Tensor, group_size: int) -> torch.Tensor:
        d = verdicts(self.D, tokens, self.critic) if self.fns[0].lambda_ > 0 else None
        return torch.stack([fn(tokens[k], group_size, None if d is None else d[k]) for k, fn in enumerate(self.fns)])


def _given(tokens: torch.Tensor) -> torch.Tensor:
    raise RuntimeError("the stacked reward computes D's verdicts for every member at once")


def reward_fn(name: str, cfg: RunConfig, objective: Any, vocab: Any) -> RewardFn:
    """A cell's reward for one REINFORCE step with generator loss ``name`` (the verdicts of
    its opponent come from :class:`StackedReward`)."""
    tc = cfg.train
    fn = RewardFn(_given if tc.lambda_ > 0 else None, tc.lambda_, objective, tc.objective or "", vocab,
                  tc.duplicate_penalty)
    fn.rescale = cfg.discriminator.loss == "wgan"
    fn.transform = None if name == "seqgan" else get_g_loss(name)
    return fn


class CellBatch:
    """K cells of one generation, their neighbourhoods' snapshots ``hoods`` (``hoods[k][j]``:
    cell k's j-th neighbour's (G, D) weights, j = 0 itself) and per-cell streams, with the
    stacks that gather member k from cell k's neighbourhood."""

    def __init__(self, cells: Sequence[Cell], hoods: Sequence[Sequence[Snap]], cfg: RunConfig, seed: int,
                 generation: int):
        self.cells, self.hoods, self.cfg = list(cells), hoods, cfg
        self.K, self.n = len(cells), len(hoods[0])
        if any(len(h) != self.n for h in hoods):
            raise ValueError("every cell of a torus has a neighbourhood of the same size")
        self.template = self.cells[0].st.D
        impl = cfg.discriminator.impl
        self.impl = impl if impl in ("fused", "conv") else "auto"
        streams = [cell_streams(c.index, self.n, cfg, seed, generation, self.template.bank_bias.device)
                   for c in self.cells]
        self.rngs = [r for r, _ in streams]  # choices: tournaments, opponents, losses, mutations
        self.gens = [g for _, g in streams]  # sampling, rollouts, shuffles, dropout

    def neighbours_g(self, js: Sequence[int]) -> StackedGenerator:
        """The stack whose member k is cell k's neighbour ``js[k]``'s generator."""
        return StackedGenerator(self.cfg.generator, [self.hoods[k][j][0] for k, j in enumerate(js)])

    def neighbours_d(self, js: Sequence[int]) -> StackedDiscriminator:
        """The stack whose member k is cell k's neighbour ``js[k]``'s discriminator."""
        return StackedDiscriminator(self.template, [self.hoods[k][j][1] for k, j in enumerate(js)], self.impl)

    def drawn(self) -> list[int]:
        """One neighbour index per cell, drawn from its choices stream."""
        return [int(torch.randint(self.n, (1,), generator=r)) for r in self.rngs]

    def shuffled(self, data: torch.Tensor, m: int) -> torch.Tensor:
        """Per cell, the first ``m`` rows of ``data`` in an order drawn from its stream,
        (K, min(m, N), T)."""
        return torch.stack([data[torch.randperm(len(data), device=data.device, generator=g)[:m]]
                            for g in self.gens])

    def stacks(self) -> tuple[StackedGenerator, StackedDiscriminator, StackedAdam, StackedAdam, StackedRollout]:
        """The cells' own G, D, their Adam states and rollout policies as stacks."""
        cells = self.cells
        G = StackedGenerator(self.cfg.generator, [c.st.G.state_dict() for c in cells])
        D = StackedDiscriminator(self.template, [c.st.D.state_dict() for c in cells], self.impl)
        g_opt = StackedAdam(G.parameters(), [c.lr_g for c in cells])
        d_opt = StackedAdam(D.parameters(), [c.lr_d for c in cells])
        rollout = StackedRollout(G)
        for k, c in enumerate(cells):
            g_opt.load_member_state(k, c.st.opt_adv, in_stacked_order(c.st.G, G_NAMES))
            d_opt.load_member_state(k, c.st.d_trainer.opt, in_stacked_order(c.st.D, D_NAMES))
            rollout.model.load_member(k, c.st.rollout.model.state_dict())
        return G, D, g_opt, d_opt, rollout


def update_cells(cells: Sequence[Cell], hoods: Sequence[Sequence[Snap]], data: torch.Tensor, cfg: RunConfig,
                 ecfg: EvolveConfig, objective: Any, vocab: Any, seed: int, generation: int) -> None:
    """One generation of every cell of ``cells`` (in place; ``cell.info``: its metrics),
    ``hoods[k]`` cell k's neighbourhood's snapshot weights (index 0 its own): what
    :func:`~seqgan.evolve.cell.update_cell` does to each (module docstring)."""
    b = CellBatch(cells, hoods, cfg, seed, generation)
    K, n, gens, rngs, tc = b.K, b.n, b.gens, b.rngs, cfg.train

    # 1. fitness of the neighbourhood (its snapshot models) on a real batch and each G's samples
    fs = ecfg.fitness_samples
    real = b.shuffled(data, fs)  # (K, R, T)
    fakes = torch.stack([sample(b.neighbours_g([j] * K), fs, gens) for j in range(n)], 1)  # (K, n, fs, T)
    ds = [b.neighbours_d([j] * K) for j in range(n)]  # ds[j]: every cell's j-th neighbour's D
    p_fake = torch.stack([verdicts(d, fakes.flatten(1, 2)).view(K, n, -1) for d in ds], 1)  # (K, nd, ng, fs)
    p_real = torch.stack([verdicts(d, real) for d in ds], 1)  # (K, nd, R)
    g_fit = p_fake.mean(dim=(1, 3)).tolist()  # (K, ng)
    d_fit = (((p_real > 0.5).float().mean(2) + (p_fake < 0.5).float().mean(dim=(2, 3))) / 2).tolist()

    # 2. tournament selection of the centre's pair
    selected = []
    for k, cell in enumerate(cells):
        gi = tournament(g_fit[k], rngs[k], ecfg.tournament_size)
        di = tournament(d_fit[k], rngs[k], ecfg.tournament_size)
        if gi:
            adopt_generator(cell, hoods[k][gi][0])
        if di:
            adopt_discriminator(cell, hoods[k][di][1])
        selected.append([gi, di])

    # 3. the cells' pairs as stacks, trained against opponents drawn from their neighbourhoods
    G, D, g_opt, d_opt, rollout = b.stacks()
    losses: list[list[str]] = [[] for _ in cells]
    rewards: list[list[float]] = []  # per step, per cell: the mean reward
    B = tc.batch_size
    for _ in range(tc.g_steps):
        opp = b.drawn()
        names = [draw(ecfg.g_loss, r) for r in rngs]
        score = StackedReward(b.neighbours_d(opp), [reward_fn(m, cfg, objective, vocab) for m in names])
        seqs = sample(G, B, gens)  # (K, B, T)
        q = rollout.rewards(seqs, score, tc.rollout_num, gens, max(B, tc.rollout_chunk // K))  # (K, B, T)
        check_rewards(q)
        rewards.append(q.mean(dim=(1, 2)).tolist())
        if tc.reward_baseline:
            q = q - q.mean(dim=1, keepdim=True)
        pg_update(G, g_opt, seqs, q, tc.grad_clip)
        for k, m in enumerate(names):
            losses[k].append(m)
    rollout.update(G, tc.update_rate)
    d_out: dict[str, list[float]] = {}
    for _ in range(tc.d_steps):  # d_round: every cell on its drawn neighbour's samples
        opp_g = b.neighbours_g(b.drawn())
        pos = data.expand(K, *data.shape)  # d_round: all positives, or a subset of d_samples
        if tc.d_samples and tc.d_samples < len(data):
            pos = b.shuffled(data, tc.d_samples)
        neg = sample(opp_g, pos.shape[1], gens)
        epochs = [d_epoch(D, d_opt, pos, neg, cfg.discriminator.batch_size, gens) for _ in range(tc.k_epochs)]
        d_out = {key: torch.stack([e[key] for e in epochs]).mean(0).tolist() for key in ("d_loss", "d_acc")}

    # 4. learning rates mutate
    lo_g, lo_d = tc.adv_lr, cfg.discriminator.lr
    for k, cell in enumerate(cells):
        cell.lr_g = mutate_lr(cell.lr_g, rngs[k], ecfg.mutation_prob, ecfg.mutation_std, lo_g * ecfg.lr_min,
                              lo_g * ecfg.lr_max)
        cell.lr_d = mutate_lr(cell.lr_d, rngs[k], ecfg.mutation_prob, ecfg.mutation_std, lo_d * ecfg.lr_min,
                              lo_d * ecfg.lr_max)
        g_opt.set_lr(k, cell.lr_g)
        d_opt.set_lr(k, cell.lr_d)

    # 5. the trained pair against the neighbourhood, back into the cells, the worst replaced
    own = sample(G, fs, gens)
    g_now = torch.stack([verdicts(d, own) for d in ds], 1).mean(dim=(1, 2)).tolist()  # (K,)
    real_ok = (verdicts(D, real) > 0.5).float().mean(1)  # (K,)
    fake_ok = (verdicts(D, fakes.flatten(1, 2)).view(K, n, -1) < 0.5).float().mean(2).mean(1)
    d_now = ((real_ok + fake_ok) / 2).tolist()
    for k, cell in enumerate(cells):
        st = cell.st
        st.G.load_state_dict(G.member(k))
        st.rollout.model.load_state_dict(rollout.model.member(k))
        st.D.load_state_dict(D.member(k))
        write_adam(st.opt_adv, in_stacked_order(st.G, G_NAMES), g_opt, k)
        write_adam(st.d_trainer.opt, in_stacked_order(st.D, D_NAMES), d_opt, k)
        replaced = []
        if n > 1 and g_now[k] < min(g_fit[k][1:]):
            adopt_generator(cell, hoods[k][max(range(n), key=g_fit[k].__getitem__)][0])
            replaced.append("generator")
        if n > 1 and d_now[k] < min(d_fit[k][1:]):
            adopt_discriminator(cell, hoods[k][max(range(n), key=d_fit[k].__getitem__)][1])
            replaced.append("discriminator")
        st.G.train()
        st.D.train()
        cell.info = {"g_losses": losses[k], "reward": sum(r[k] for r in rewards) / len(rewards),
                     "d_acc": d_out["d_acc"][k] if d_out else None,
                     "d_loss": d_out["d_loss"][k] if d_out else None, "lr_g": cell.lr_g, "lr_d": cell.lr_d,
                     "g_fitness": g_now[k], "d_fitness": d_now[k], "selected": selected[k], "replaced": replaced}
