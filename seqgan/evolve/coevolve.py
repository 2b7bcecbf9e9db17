"""A run's coevolution: its population created, resumed, and advanced generation by
generation, with a checkpoint after each.

The population starts from the run's MLE generator (every cell the same G, its own D and
random stream) or, with ``from_scratch``, from generators initialised on each cell's own
stream. Each generation ends with a checkpoint of the whole population in
``RUN/population/`` (written and swapped in whole, like the pair's checkpoints) and one
record per cell in ``metrics.jsonl``, so a coevolution killed at any moment resumes from
the last generation and — on the CPU with a fixed seed — ends bit-identical to an
uninterrupted one. The grid is fixed once a population exists.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import torch
from tqdm import tqdm

from seqgan.errors import UserError
from seqgan.evolve.grid import Torus
from seqgan.evolve.population import Population
from seqgan.runs.checkpoints import Checkpoints
from seqgan.runs.evolve_config import EvolveConfig
from seqgan.runs.rundir import RunDir
from seqgan.objectives import get_objective
from seqgan.training.adversarial import bleu_scorer, objective_for
from seqgan.training.rewards import RewardFn
from seqgan.training.state import resolve_device

POPULATION = "population"


def population_store(run: RunDir) -> Checkpoints:
    """The checkpoints of a run's population (``RUN/population``)."""
    return Checkpoints(run.path, folder=POPULATION, required=(), check=_check_state)


def _check_state(state: dict, where: Any) -> None:
    g = state.get("generation")
    if not isinstance(g, int) or isinstance(g, bool) or g < 0:
        raise UserError(f"{where}: generation is {g!r}, not a count")
    try:
        torus = Torus.parse(state.get("grid", ""))
    except UserError:
        raise UserError(f"{where}: grid is {state.get('grid')!r}, not ROWSxCOLS") from None
    cells = state.get("cells")
    if not isinstance(cells, list) or len(cells) != torus.size or not all(isinstance(c, dict) for c in cells):
        raise UserError(f"{where}: cells do not match the {torus} grid")


def heldout_of(data: dict[str, torch.Tensor], n: int) -> torch.Tensor:
    """The held-out sequences that score mixtures: the test set, or the last 5% of the
    training set when there is none; at most ``n``."""
    test = data.get("test")
    if test is None or not len(test):
        train = data["train"]
        test = train[-max(1, len(train) // 20):]
    return test[:n]


def sample_scorer(mode: str, run: RunDir, heldout: torch.Tensor, oracle: Any, allow_import: bool
                  ) -> Callable[[torch.Tensor], float] | None:
    """The score (lower is better) of a mixture's samples for ``--mixture-score``; None for
    ``nll``, which needs no samples."""
    if mode == "nll":
        return None
    if mode == "nll-oracle":
        if oracle is None:
            raise UserError("--mixture-score nll-oracle needs a run on oracle data; use nll")
        o = oracle.to(heldout.device)
        return lambda samples: o.nll(samples)
    if mode == "bleu":
        if run.vocab.kind != "text":
            raise UserError("--mixture-score bleu needs a run on text; use nll")
        ref = bleu_scorer(heldout, run.vocab, 4)
        return lambda samples: -float(ref(samples).mean())
    name = run.config.train.objective
    if not name:
        raise UserError("--mixture-score objective needs the run's objective: pass --objective NAME")
    fn = RewardFn(None, 0.0, get_objective(name, allow_import=allow_import), name, run.vocab)
    return lambda samples: -float(fn.objective_values(samples, len(samples)).mean())


class LocalGroup:
    """The group of a job of one process: every collective is the identity."""

    rank, world = 0, 1

    def barrier(self) -> None:
        """Nothing to wait for."""

    def gather(self, obj: Any) -> list[Any]:
        """[obj]: the only rank's."""
        return [obj]

    def broadcast(self, obj: Any = None) -> Any:
        """obj itself."""
        return obj


class Coevolution:
    """Coevolve the run ``run`` (opened for writing) with ``ecfg`` on ``device``.

    In a job of several processes (``group``: see :mod:`seqgan.distributed.group`) each
    rank owns the cells ``owned`` and gets its neighbours' weights through ``exchange``;
    rank 0 alone writes the metrics log and the checkpoint's manifest, every rank writes
    its own cells' files into the checkpoint being written, and a failure anywhere (a
    full disk, NaN weights) stops every rank with the same one-line error.
    """

    def __init__(self, run: RunDir, ecfg: EvolveConfig, device: Any = None,
                 log: Callable[[str], Any] = print, progress: bool | None = None,
                 allow_import: bool = False, callbacks: tuple = (), group: Any = None,
                 owned: list[int] | None = None, exchange: Any = None):
        self.run, self.ecfg, self.log, self.progress = run, ecfg, log, progress
        self.callbacks = tuple(callbacks)
        self.group = group or LocalGroup()
        self.dev = resolve_device(device)
        cfg = run.config
        data = run.data()
        oracle = run.oracle()
        heldout = heldout_of(data, ecfg.heldout).to(self.dev)
        self.store = population_store(run)
        self.pop = Population(cfg, ecfg, self.dev, cfg.train.seed, data["train"].to(self.dev),
                              heldout, oracle.to(self.dev) if oracle is not None else None, run.vocab,
                              objective_for(cfg.train, allow_import), owned, exchange,
                              sample_scorer(ecfg.mixture_score, run, heldout, oracle, allow_import))
        self.seconds = 0.0
        self.states: list[dict] = []  # rank 0: every cell's state.json entry, as last saved

    def _all(self, error: str | None) -> None:
        """A collective check: if any rank failed, every rank raises rank 0's word for it."""
        errors = self.group.gather(error)
        word = next((e for e in errors if e), None) if errors is not None else None
        word = self.group.broadcast(word)
        if word:
            raise UserError(word)

    def resume(self) -> "Coevolution":
        """Restore the last generation's population, or create the population."""
        if self.group.rank == 0:
            self.store.recover()
        self.group.barrier()
        ck = self.store.load(warn=self.log if self.group.rank == 0 else (lambda m: None))
        if ck is not None:
            state, paths = ck
            if state["grid"] != str(self.pop.torus):
                raise UserError(f"{self.run.path} coevolves a {state['grid']} grid, not {self.pop.torus}; "
                                f"omit --grid to resume it")
            self.pop.restore(state, paths)
            self.seconds = float(state.get("seconds", 0.0))
            self.states = list(state["cells"])
            if self.group.rank == 0:
                self.run.metrics.truncate(int(state.get("metrics_lines", 0)))
            self.group.barrier()
            return self
        g_init = None
        if not self.ecfg.from_scratch:
            if not (self.run.path / "generator-mle.safetensors").is_file():
                raise UserError(f"{self.run.path} has no MLE generator yet: run `seqgan pretrain --out "
                                f"{self.run.path}` first, or coevolve with --from-scratch")
            g_init = {k: v.to(self.dev) for k, v in self.run.load_run_tensors("generator-mle.safetensors").items()}
        self.pop.populate(g_init)
        self.save()
        return self

    def save(self) -> None:
        """Checkpoint the population (and the seconds spent) in RUN/population: rank 0
        begins it, every rank writes its cells' files, rank 0 commits the manifest."""
        g, error, digests = self.group, None, {}
        if g.rank == 0:
            try:
                self.store.begin()
            except UserError as e:
                error = str(e)
        self._all(error)
        try:
            digests = self.store.write_files(self.pop.files())
        except UserError as e:
            error = str(e)
        got = g.gather((error, digests, {k: self.pop.cell_state(c) for k, c in self.pop.cells.items()}))
        if g.rank == 0:
            error = next((e for e, _, _ in got if e), None)
            if error is None:
                files = {name: d for _, ds, _ in got for name, d in ds.items()}
                cells = {k: c for _, _, cs in got for k, c in cs.items()}
                self.states = [cells[k] for k in range(self.pop.torus.size)]
                state = {"generation": self.pop.generation, "grid": str(self.pop.torus), "cells": self.states,
                         "seconds": self.seconds}
                try:
                    self.store.commit(state, files, self.run.metrics.count())
                except UserError as e:
                    error = str(e)
            else:
                self.store.abort()
        self._all(error if g.rank == 0 else None)

    def best(self) -> tuple[int, float]:
        """(cell, score) of the best mixture, from the last saved states (rank 0)."""
        scores = [float("inf") if c["score"] is None else c["score"] for c in self.states]
        k = min(range(len(scores)), key=scores.__getitem__)
        return k, scores[k]

    def evolve(self) -> None:
        """Generations until ``ecfg.generations``, each checkpointed."""
        pop, total, g = self.pop, self.ecfg.generations, self.group
        disable = (None if self.progress is None else not self.progress) if g.rank == 0 else True
        with tqdm(total=total, initial=pop.generation, desc=f"coevolve {pop.torus}", disable=disable,
                  leave=False, dynamic_ncols=True) as bar:
            while pop.generation < total:
                t0 = time.perf_counter()
                error = None
                try:
                    records = pop.step()
                    for c in pop.cells.values():
                        c.st.check_finite()
                except UserError as e:
                    error, records = str(e), []
                self._all(error)
                self.seconds += time.perf_counter() - t0
                got = g.gather(records)
                if g.rank == 0:
                    try:
                        for rec in sorted((r for rs in got for r in rs), key=lambda r: r["cell"]):
                            rec["seconds"] = round(self.seconds, 3)
                            self.run.metrics.append(rec)
                            for cb in self.callbacks:
                                cb(rec)
                    except UserError as e:
                        error = str(e)
                self._all(error)
                self.save()
                if g.rank == 0:
                    k, score = self.best()
                    bar.set_postfix(best=f"{score:.4f}", cell=k)
                    bar.update(1)
