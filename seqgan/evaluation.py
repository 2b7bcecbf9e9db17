"""Loading a run's generators, drawing seeded samples, and the tables of ``evaluate``.

Readers only: nothing here writes to a run or takes its lock, so all of it is safe while a
trainer works on the same run (checkpoint files are read as verified bytes).
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from seqgan.errors import UserError
from seqgan.evolve.coevolve import population_store
from seqgan.evolve.grid import Torus
from seqgan.evolve.mixture import MixtureGenerator
from seqgan.knobs import check_seed
from seqgan.metrics.registry import EvalContext, compute, default_metrics
from seqgan.models.generator import Generator
from seqgan.runs.rundir import RunDir
from seqgan.training.persist import load_weights
from seqgan.training.selection import SELECTED_FILE
from seqgan.training.state import resolve_device


def which_of(mle: bool, final: bool) -> str:
    """The generator a reader asked for: ``mle``, ``latest`` (``--final``) or ``default``."""
    if mle and final:
        raise UserError("--mle and --final name different generators; give one of them")
    return "mle" if mle else "latest" if final else "default"


def resolve_which(run: RunDir, which: str) -> str:
    """``"default"`` as the generator a reader uses: ``"selected"`` for a run whose rule
    (``--select``) keeps one and has written it, else ``"latest"``; other names unchanged."""
    if which != "default":
        return which
    keeps = run.config.train.select != "final" and (run.path / SELECTED_FILE).is_file()
    return "selected" if keeps else "latest"


def load_generator(run: RunDir, which: str = "latest", device: Any = None,
                   warn: Callable[[str], Any] = print) -> Generator:
    """The generator of ``run`` as MLE pretraining left it (``which="mle"``), as its
    latest checkpoint holds it (``"latest"``), as the selection rule kept it
    (``"selected"``, :mod:`seqgan.training.selection`) or the reader's default
    (``"default"``, see :func:`resolve_which`), in eval mode on ``device``."""
    dev = resolve_device(device)
    which = resolve_which(run, which)
    if which == "selected":
        path = run.path / SELECTED_FILE
        if not path.is_file():
            raise UserError(f"{run.path} has no selected generator (its rule is --select "
                            f"{run.config.train.select}); use the final one")
        g = Generator(run.config.generator)
        return load_weights(g, run.load_run_tensors(path.name), path, "this run's generator").to(dev).eval()
    if which != "mle":
        mixture = load_mixture(run, dev, warn)
        if mixture is not None:
            return mixture
    g = Generator(run.config.generator)
    if which == "mle":
        path = run.path / "generator-mle.safetensors"
        if not path.is_file():
            raise UserError(f"{run.path} has no MLE generator yet; run `seqgan pretrain --out {run.path}`")
        tensors = run.load_run_tensors(path.name)
    else:
        got = run.checkpoints.read_tensors("generator", warn=warn)
        if got is None:
            raise UserError(f"{run.path} has no trained generator yet; run `seqgan pretrain --out {run.path}`")
        tensors, path = got
    return load_weights(g, tensors, path, "this run's generator").to(dev).eval()


def load_mixture(run: RunDir, device: torch.device, warn: Callable[[str], Any] = print
                 ) -> MixtureGenerator | None:
    """A coevolution run's model: the mixture of its best cell (lowest score) over that
    cell's neighbourhood, read from one and the same population checkpoint; None for a
    run without a population."""
    torus = Torus.parse(run.config.evolve.grid)

    def best(state: dict) -> int:
        """The cell with the lowest mixture score (a cell never scored counts as +inf)."""
        scores = [c.get("score") for c in state["cells"]]
        return min(range(len(scores)), key=lambda k: float("inf") if scores[k] is None else scores[k])

    def members(state: dict) -> list[str]:
        """The generator files of the best cell's neighbourhood, in mixture order."""
        return [f"cell{j}-generator" for j in torus.neighbourhood(best(state))]

    got = population_store(run).read(members, warn)
    if got is None:
        return None
    state, tensors, paths = got
    gs = [load_weights(Generator(run.config.generator), tensors[n], paths[n], "this run's generator")
          .to(device).eval() for n in members(state)]
    return MixtureGenerator(gs, torch.tensor(state["cells"][best(state)]["mixture"], dtype=torch.float64))


MAX_TOKENS = 50_000_000  # n × length of one call: bounds the memory of a long sample


def sample_from(g: Generator | MixtureGenerator, n: int, temperature: float = 1.0, seed: int = 0,
                length: int | None = None) -> torch.Tensor:
    """``n`` sequences (n, T) from a loaded generator with a seeded sampling stream."""
    if n <= 0:
        raise UserError(f"-n must be > 0; got {n}")
    if not 0 < temperature < float("inf"):
        raise UserError(f"--temperature must be a finite number > 0; got {temperature}")
    check_seed(seed)
    if length is not None and not (isinstance(length, int) and 1 <= length and n * length <= MAX_TOKENS):
        raise UserError(f"--length must be an integer >= 1 with -n × --length <= {MAX_TOKENS:,}; got {length}")
    rng = torch.Generator(device=g.device).manual_seed(seed)
    return g.sample(n, temperature=temperature, generator=rng, length=length)


def randperm(n: int, seed: int) -> torch.Tensor:
    """A random permutation of 0..n-1, (n,) int64, from a CPU generator seeded with ``seed``."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))


def metrics_for(run: RunDir, has_references: bool) -> tuple[list[str], str]:
    """The default metrics of the run's kind that it can compute, and a note on the rest."""
    test = run.data().get("test")
    return default_metrics(run.vocab.kind, test is not None and len(test) > 0, has_references)


def evaluation_table(run: RunDir, names: list[str], n: int, seed: int = 0, which: str = "latest",
                     device: Any = None, references: list[list[str]] | None = None,
                     compare: bool = False, sample_size: int | None = None,
                     warn: Callable[[str], Any] = print) -> dict[str, dict[str, float]]:
    """Rows {label: {metric: value}} for the generator(s) of ``run`` (and, with
    ``compare``, the training data, the MLE, the selected (where the run keeps one) and
    the final generator)."""
    data = run.data()
    rows = {}
    gens = [("MLE generator" if which == "mle" else "generator", which)]
    if compare:
        selected = [("selected generator", "selected")] if resolve_which(run, "default") == "selected" else []
        gens = [("MLE generator", "mle"), *selected, ("final generator", "latest")]
    if compare:
        ref = data["train"]
        if sample_size:
            ref = ref[randperm(len(ref), seed)[:sample_size]]
        elif len(ref) > n:
            ref = ref[randperm(len(ref), seed)[:n]]
        ctx = EvalContext(ref, run.vocab, None, run.oracle(), data["train"], data.get("test"), references)
        rows["training data"] = compute([m for m in names if m not in ("nll-test", "nll-oracle")], ctx)
    oracle = run.oracle()
    for label, w in gens:
        g = load_generator(run, w, device, warn=warn)
        samples = sample_from(g, n, 1.0, seed).cpu()
        if sample_size:
            samples = samples[:sample_size]
        ctx = EvalContext(samples, run.vocab, g, oracle.to(g.device) if oracle is not None else None,
                          data["train"], data.get("test"), references)
        rows[label] = compute(names, ctx)
    return rows
