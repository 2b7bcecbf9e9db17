"""A population of cells on a torus, one generation at a time, and its files.

A generation (:meth:`Population.step`) first updates every cell from a snapshot of the
whole population's weights taken at its start (each cell reads only its neighbourhood's:
:func:`~seqgan.evolve.cell.update_cell`), then evolves every cell's mixture weights over
its neighbourhood's *new* generators by the (1+1)-ES (:func:`evolve_mixture`). Both are
pure functions of a cell, its neighbours' weights and (seed, cell, generation), so
``order`` — the order in which cells are updated — cannot change the result (a test runs
two orders), and a process that owns some cells computes exactly what this one does.
With ``batched_cells`` the owned cells are updated at once, as stacked models
(:func:`~seqgan.evolve.batched.update_cells`: the same draws and decisions, equal to float
rounding; the number of cells stacked, i.e. of processes, can change the last bits).

Mixture scores (lower is better): ``nll`` — the exact NLL per token of held-out data,
``logsumexp`` over the members' log-likelihoods (:mod:`seqgan.evolve.mixture`); or a score
of 256 sequences sampled from the mixture on a fixed stream (common random numbers for the
parent and its child), ``sample_score``: the oracle's NLL (``nll-oracle``), minus BLEU-4
against held-out text (``bleu``), minus the mean of an ORGAN objective (``objective``). The population's model is the best cell's
mixture (:meth:`Population.best`).

Files (a checkpoint of :class:`seqgan.runs.checkpoints.Checkpoints` in ``RUN/population``):
``cellK-generator``, ``cellK-discriminator``, ``cellK-rollout``, ``cellK-optim-g``,
``cellK-optim-d`` per cell; ``state.json`` holds the generation, the grid, and per cell
its learning rates, mixture weights and score.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch

from seqgan.evolve.batched import update_cells
from seqgan.evolve.cell import Cell, new_cell, set_lr, update_cell
from seqgan.evolve.grid import Torus
from seqgan.evolve.mixture import MixtureGenerator, mixture_nll, sequence_log_likelihoods
from seqgan.evolve.operators import cell_seed, es_step, normalise
from seqgan.runs.checkpoints import Files, load_optimizer, optimizer_tensors
from seqgan.runs.config import RunConfig
from seqgan.runs.evolve_config import EvolveConfig
from seqgan.training.d_training import d_round
from seqgan.training.persist import load_weights
from seqgan.files import load_tensors
from seqgan.models.generator import Generator

SAMPLES = 256  # sequences a sample-based mixture score draws
CELL_FILES = ("generator", "discriminator", "rollout", "optim-g", "optim-d")
# exchange(own: {cell: flat tensor}) -> {cell: flat tensor} for own cells and their neighbours
Exchange = Callable[[dict[int, torch.Tensor]], dict[int, torch.Tensor]]


def flatten(sds: Sequence[dict[str, torch.Tensor]]) -> torch.Tensor:
    """State dicts as one flat float32 tensor (what travels between processes)."""
    return torch.cat([v.detach().reshape(-1).float().cpu() for sd in sds for v in sd.values()])


def unflatten(flat: torch.Tensor, templates: Sequence[dict[str, torch.Tensor]], device: Any
              ) -> list[dict[str, torch.Tensor]]:
    """The inverse of :func:`flatten`, shaped like ``templates``."""
    out, i = [], 0
    for sd in templates:
        d = {}
        for k, v in sd.items():
            d[k] = flat[i:i + v.numel()].view(v.shape).to(device=device, dtype=v.dtype)
            i += v.numel()
        out.append(d)
    return out


def evolve_mixture(cell: Cell, score_fn: Callable[[torch.Tensor], float], seed: int, generation: int,
                   ecfg: EvolveConfig) -> None:
    """(1+1)-ES of ``cell.mixture`` (weights over its neighbourhood's generators), each
    candidate scored by ``score_fn(weights)``."""
    rng = torch.Generator().manual_seed(cell_seed(seed, cell.index, generation) ^ 0xE5)
    w = normalise(cell.mixture)
    score = score_fn(w)  # the members changed since the last generation: score the parent again
    for _ in range(ecfg.es_steps):
        w, score = es_step(w, score, score_fn, rng, ecfg.es_sigma)
    cell.mixture, cell.score = w, score


class Population:
    """The cells of an R×C torus (see the module docstring)."""

    def __init__(self, cfg: RunConfig, ecfg: EvolveConfig, device: torch.device, seed: int,
                 data: torch.Tensor, heldout: torch.Tensor, oracle: Any = None, vocab: Any = None,
                 objective: Any = None, owned: Sequence[int] | None = None,
                 exchange: Exchange | None = None,
                 sample_score: Callable[[torch.Tensor], float] | None = None):
        self.cfg, self.ecfg, self.device, self.seed = cfg, ecfg, device, seed
        self.torus = Torus.parse(ecfg.grid)
        self.neighbours = self.torus.neighbourhoods()
        self.data, self.heldout, self.oracle = data, heldout, oracle
        self.vocab, self.objective = vocab, objective
        self.sample_score = sample_score or (lambda samples: self.oracle.nll(samples))
        # the cells this process updates (all of them in one process) and how it gets the
        # neighbours' values it needs from the processes that own them
        self.owned = list(range(self.torus.size)) if owned is None else sorted(owned)
        self.exchange: Exchange = exchange or (lambda own: own)
        self.cells: dict[int, Cell] = {}
        self.generation = 0

    # -- creation -------------------------------------------------------------------------
    def populate(self, g_init: dict[str, torch.Tensor] | None) -> None:
        """A new cell in every place, its D pretrained for ``d_pretrain`` rounds."""
        tc = self.cfg.train
        self.cells = {}
        for k in self.owned:
            cell = new_cell(k, self.cfg, self.device, g_init, self.seed, len(self.neighbours[k]))
            for _ in range(self.ecfg.d_pretrain):
                d_round(cell.st.G, cell.st.d_trainer, self.data, 1, tc.d_samples)
            self.cells[k] = cell

    # -- one generation ---------------------------------------------------------------------
    def snapshot(self) -> dict[int, tuple[dict, dict]]:
        """The (G, D) weights of the owned cells and of their neighbours, as of now: what a
        generation's updates read (neighbours owned elsewhere arrive by ``exchange``)."""
        template = next(iter(self.cells.values())).weights()
        got = self.exchange({k: flatten(c.weights()) for k, c in self.cells.items()})
        return {j: tuple(unflatten(flat, template, self.device)) for j, flat in got.items()}

    def step(self, order: Sequence[int] | None = None) -> list[dict[str, Any]]:
        """One generation (owned cells updated in ``order``, default ascending; with
        ``batched_cells`` all at once, stacked in that order: :mod:`.batched`); the owned
        cells' records."""
        snaps = self.snapshot()
        gen = self.generation
        order = list(order if order is not None else self.owned)
        if self.ecfg.batched_cells:  # every owned cell at once, as stacked models
            update_cells([self.cells[k] for k in order], [[snaps[j] for j in self.neighbours[k]] for k in order],
                         self.data, self.cfg, self.ecfg, self.objective, self.vocab, self.seed, gen)
        else:
            for k in order:
                update_cell(self.cells[k], [snaps[j] for j in self.neighbours[k]], self.data, self.cfg,
                            self.ecfg, self.objective, self.vocab, self.seed, gen)
        self.generation += 1
        self.evolve_mixtures()
        return [self.record(self.cells[k]) for k in self.owned]

    def evolve_mixtures(self) -> None:
        """Every cell's (1+1)-ES step over its neighbourhood's current generators."""
        gen = self.generation
        if self.ecfg.mixture_score == "nll":
            ll = self.exchange({k: sequence_log_likelihoods(c.st.G, self.heldout) for k, c in self.cells.items()})
            T = self.heldout.shape[1]
            for c in self.cells.values():
                lls = torch.stack([ll[j] for j in self.neighbours[c.index]])
                evolve_mixture(c, lambda w, lls=lls: mixture_nll(lls, w, T), self.seed, gen, self.ecfg)
            return
        template = [next(iter(self.cells.values())).st.G.state_dict()]
        flats = self.exchange({k: flatten([c.st.G.state_dict()]) for k, c in self.cells.items()})
        gens = {}
        for j, flat in flats.items():
            gens[j] = self.cells[j].st.G if j in self.cells else \
                load_weights(Generator(self.cfg.generator).to(self.device),
                             unflatten(flat, template, self.device)[0], f"cell {j}").eval()
        for c in self.cells.values():  # a score of the mixture's samples
            members = [gens[j] for j in self.neighbours[c.index]]
            stream = cell_seed(self.seed, c.index, gen) ^ 0x0A

            def score(w, members=members, stream=stream):
                """The score of the mixture's samples on a fixed stream (lower is better)."""
                rng = torch.Generator(device=self.device).manual_seed(stream)
                return self.sample_score(MixtureGenerator(members, w).sample(SAMPLES, generator=rng))

            evolve_mixture(c, score, self.seed, gen, self.ecfg)

    def record(self, c: Cell) -> dict[str, Any]:
        """The metrics record of a cell for metrics.jsonl."""
        info = dict(c.info)
        metrics = {k: info.pop(k) for k in ("reward", "d_acc", "d_loss", "lr_g", "lr_d", "g_fitness",
                                             "d_fitness") if k in info}
        metrics["score"] = c.score
        return {"phase": "coevolve", "epoch": self.generation, "cell": c.index, "metrics": metrics,
                "mixture": [round(float(x), 6) for x in c.mixture], "neighbourhood": self.neighbours[c.index],
                **info}

    def best(self) -> int:
        """The owned cell whose mixture scores best (lowest)."""
        return min(self.owned, key=lambda k: self.cells[k].score)

    def mixture(self, k: int | None = None) -> MixtureGenerator:
        """Cell k's mixture (default: the best cell's) as one model."""
        k = self.best() if k is None else k
        return MixtureGenerator([self.cells[j].st.G for j in self.neighbours[k]], self.cells[k].mixture)

    # -- files ------------------------------------------------------------------------------
    def files(self) -> Files:
        """The checkpoint files of every cell ({name: (tensors, metadata)})."""
        out: Files = {}
        for c in self.cells.values():
            st = c.st
            out[f"cell{c.index}-generator"] = (st.G.state_dict(), None)
            out[f"cell{c.index}-discriminator"] = (st.D.state_dict(), None)
            out[f"cell{c.index}-rollout"] = (st.rollout.model.state_dict(), None)
            out[f"cell{c.index}-optim-g"] = optimizer_tensors(st.opt_adv)
            out[f"cell{c.index}-optim-d"] = optimizer_tensors(st.d_trainer.opt)
        return out

    def state(self) -> dict[str, Any]:
        """What state.json records: generation, grid, each cell's rates, mixture, score."""
        return {"generation": self.generation, "grid": str(self.torus),
                "cells": [self.cell_state(self.cells[k]) for k in self.owned]}

    @staticmethod
    def cell_state(c: Cell) -> dict[str, Any]:
        """A cell's learning rates, mixture weights and score, as state.json holds them."""
        return {"lr_g": c.lr_g, "lr_d": c.lr_d, "mixture": [float(x) for x in c.mixture],
                "score": c.score if c.score != float("inf") else None}

    def restore(self, state: dict[str, Any], paths: dict[str, Any]) -> None:
        """Cells from a population checkpoint (``state`` and its files' paths)."""
        self.generation = int(state["generation"])
        self.cells = {}
        for k in self.owned:
            info = state["cells"][k]
            cell = new_cell(k, self.cfg, self.device, None, self.seed, len(self.neighbours[k]))
            st = cell.st
            for name, module in (("generator", st.G), ("discriminator", st.D), ("rollout", st.rollout.model)):
                p = paths[f"cell{k}-{name}"]
                load_weights(module, load_tensors(p), p, f"this run's {name}")
            load_optimizer(st.opt_adv, paths[f"cell{k}-optim-g"])
            load_optimizer(st.d_trainer.opt, paths[f"cell{k}-optim-d"])
            cell.lr_g, cell.lr_d = float(info["lr_g"]), float(info["lr_d"])
            set_lr(st.opt_adv, cell.lr_g)
            set_lr(st.d_trainer.opt, cell.lr_d)
            cell.mixture = torch.tensor(info["mixture"], dtype=torch.float64)
            cell.score = float("inf") if info["score"] is None else float(info["score"])
            self.cells[k] = cell
