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
from seqgan.training.adversarial import objective_for
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


class Coevolution:
    """Coevolve the run ``run`` (opened for writing) with ``ecfg`` on ``device``."""

    def __init__(self, run: RunDir, ecfg: EvolveConfig, device: Any = None,
                 log: Callable[[str], Any] = print, progress: bool | None = None,
                 allow_import: bool = False, callbacks: tuple = ()):
        self.run, self.ecfg, self.log, self.progress = run, ecfg, log, progress
        self.callbacks = tuple(callbacks)
        self.dev = resolve_device(device)
        cfg = run.config
        data = run.data()
        oracle = run.oracle()
        if ecfg.mixture_score == "nll-oracle" and oracle is None:
            raise UserError("--mixture-score nll-oracle needs a run on oracle data; use nll")
        self.store = population_store(run)
        self.pop = Population(cfg, ecfg, self.dev, cfg.train.seed, data["train"].to(self.dev),
                              heldout_of(data, ecfg.heldout).to(self.dev),
                              oracle.to(self.dev) if oracle is not None else None, run.vocab,
                              objective_for(cfg.train, allow_import))
        self.seconds = 0.0

    def resume(self) -> "Coevolution":
        """Restore the last generation's population, or create the population."""
        self.store.recover()
        ck = self.store.load(warn=self.log)
        if ck is not None:
            state, paths = ck
            if state["grid"] != str(self.pop.torus):
                raise UserError(f"{self.run.path} coevolves a {state['grid']} grid, not {self.pop.torus}; "
                                f"omit --grid to resume it")
            self.pop.restore(state, paths)
            self.seconds = float(state.get("seconds", 0.0))
            self.run.metrics.truncate(int(state.get("metrics_lines", 0)))
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
        """Checkpoint the population (and the seconds spent) in RUN/population."""
        state = {**self.pop.state(), "seconds": self.seconds}
        self.store.save(state, self.pop.files(), self.run.metrics.count())

    def evolve(self) -> None:
        """Generations until ``ecfg.generations``, each checkpointed."""
        pop, total = self.pop, self.ecfg.generations
        disable = None if self.progress is None else not self.progress
        with tqdm(total=total, initial=pop.generation, desc=f"coevolve {pop.torus}", disable=disable,
                  leave=False, dynamic_ncols=True) as bar:
            while pop.generation < total:
                t0 = time.perf_counter()
                records = pop.step()
                for c in pop.cells:
                    c.st.check_finite()
                self.seconds += time.perf_counter() - t0
                for rec in records:
                    rec["seconds"] = round(self.seconds, 3)
                    self.run.metrics.append(rec)
                    for cb in self.callbacks:
                        cb(rec)
                best = pop.cells[pop.best()]
                bar.set_postfix(best=f"{best.score:.4f}", cell=best.index)
                bar.update(1)
                self.save()
