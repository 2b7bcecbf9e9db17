"""Which adversarial generator a run keeps: the checkpoint-selection rule (``--select``).

Adversarial training can meet its objective by degenerating — ORGAN's ``ratio_of_steps``
rises when a melody plays fewer notes, so a generator may end up holding long notes. A
run with ``select = "data-close"`` therefore keeps, besides its final generator, the
generator of the adversarial evaluation epoch with the best objective among those whose
style stays close to the data's:

    gap(e)     =  max_m |x_m(e) - x_m(data)| / x_m(data),   m in SELECT_METRICS
    within(e)  ⇔  gap(e) ≤ tol

with ``x_m`` the music metrics of the evaluation samples (notes per bar, pitch-class
entropy, diversity; :mod:`seqgan.metrics.music`), ``O`` the mean of the run's objective
(without the duplicate penalty; a run without an objective ranks by closeness alone),
``tol = select_tolerance`` (0.1: within 10 %). Epochs are judged as they are evaluated:
one replaces the epoch kept so far (:func:`better`) when it is within and the kept one is
not, or both are within and its objective is higher — objectives closer than 0.02 (about
twice the noise of the difference of two epochs' means, :data:`OBJECTIVE_TIE`) count as a
tie that the epoch closer to the data wins, since the best objective alone sits at the
tolerance's edge, where fresh samples fall outside it half the time. While no evaluated
epoch is within, the one closest to the data is kept, and the log and metrics say so
(``"within": false``). The data's values come from all the training windows (diversity:
pairs drawn with the run's seed), so they are the same on every resume.

``select = "best-nll-test"`` (any run with held-out data) keeps instead the evaluated
adversarial epoch of lowest NLL-test, the early-stopping rule of a likelihood model
(:func:`lowest_nll_test`); SeqGAN's Table 1 reports it beside the final generator.

The choice is a function of the metrics log alone (whose records a resume truncates to
the restored checkpoint), so nothing is added to the checkpoint and training randomness is
untouched: evaluation samples from its own seeded generator. The kept weights are written
atomically to ``generator-selected.safetensors`` (metadata: epoch, within, objective) when
an evaluation becomes the choice; each adversarial record of such a run carries
``"selected": {"epoch", "within"}``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from seqgan.errors import UserError
from seqgan.files import atomic_save_tensors
from seqgan.metrics.music import diversity, notes_per_bar, pitch_class_entropy
from seqgan.objectives import get_objective

SELECTED_FILE = "generator-selected.safetensors"
SELECT_METRICS = ("notes_per_bar", "pitch_class_entropy", "diversity")
# objectives closer than this count as a tie, which the epoch closer to the data wins: the
# mean of 1,000 samples' ratio_of_steps varies by 0.006-0.008 between sample sets (the
# difference of two epochs' by about 0.01), and the best objective alone would pick the
# epoch at the edge of the tolerance
OBJECTIVE_TIE = 0.02
# pairs of samples whose edit distance estimates diversity during training: its standard
# error is about 0.002 at 2,000 pairs (pairwise distances / T spread by ~0.1), at a tenth of
# the cost of evaluate's 20,000 (seconds on a small CPU, at every evaluation)
EVAL_PAIRS = 2000


def style_metrics(tokens: torch.Tensor, vocab: Any, seed: int = 0, max_pairs: int = EVAL_PAIRS
                  ) -> dict[str, float]:
    """Notes per bar, pitch-class entropy (bits) and diversity (mean pairwise edit distance
    / T over at most ``max_pairs`` pairs drawn with ``seed``) of music ``tokens`` (N, T)."""
    return {"notes_per_bar": notes_per_bar(tokens, vocab) if tokens.numel() else 0.0,
            "pitch_class_entropy": pitch_class_entropy(tokens, vocab),
            "diversity": diversity(tokens, max_pairs=max_pairs, seed=seed)}


def objective_fn(name: str | None, allow_import: bool = False) -> Callable | None:
    """The objective ``name`` as a function, or None without one (or one that cannot be
    loaded here: a plug-in module not allowed to import is left out of the metrics)."""
    if not name:
        return None
    try:
        return get_objective(name, allow_import=allow_import)
    except UserError:
        return None


def music_eval(tokens: torch.Tensor, vocab: Any, objective: str | None, fn: Callable | None,
               max_pairs: int = EVAL_PAIRS) -> dict[str, float]:
    """What an evaluation of a music run records: :func:`style_metrics` and the mean of the
    run's objective under its own name."""
    out = style_metrics(tokens, vocab, max_pairs=max_pairs)
    if fn is not None and objective:
        out[objective] = float(fn(tokens, vocab).float().mean())
    return out


def data_reference(train: torch.Tensor, vocab: Any, seed: int = 0, max_pairs: int = EVAL_PAIRS
                   ) -> dict[str, float]:
    """:func:`style_metrics` of all the training windows ``train`` (N, T), diversity over
    ``max_pairs`` pairs drawn with ``seed`` (a subset of windows would add its own noise:
    notes per bar of 1,000 windows varies by about 2 %)."""
    return style_metrics(train, vocab, seed=seed, max_pairs=max_pairs)


def gaps(values: dict[str, Any], reference: dict[str, float]) -> float | None:
    """``max_m |x_m - ref_m| / ref_m`` over SELECT_METRICS; None if a value is missing."""
    out = 0.0
    for m in SELECT_METRICS:
        v, r = values.get(m), reference[m]
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            return None
        out = max(out, abs(v - r) / r if r else (0.0 if v == r else float("inf")))
    return out


@dataclass(frozen=True)
class Choice:
    """The selected epoch, whether it is within the tolerance, its objective and gap."""

    epoch: int
    within: bool
    objective: float | None
    gap: float


def choose(records: Sequence[dict], reference: dict[str, float], objective: str | None,
           tol: float, tie: float = OBJECTIVE_TIE) -> Choice | None:
    """The epoch kept after the adversarial ``records`` of a metrics log, in order (records
    without the style metrics are skipped): each epoch replaces the one kept so far when
    :func:`better`, so the choice after any record is the generator written then; None
    when no record can be judged."""
    kept: Choice | None = None
    for r in records:
        if r.get("phase") != "adversarial" or not isinstance(r.get("epoch"), int):
            continue
        m = r.get("metrics") or {}
        g = gaps(m, reference)
        if g is None:
            continue
        o = m.get(objective) if objective else None
        o = float(o) if isinstance(o, (int, float)) and not isinstance(o, bool) else None
        c = Choice(r["epoch"], g <= tol, o, g)
        if kept is None or better(c, kept, tie):
            kept = c
    return kept


def lowest_nll_test(records: Sequence[dict]) -> Choice | None:
    """The adversarial record of lowest ``nll_test`` (the first of equals); None without
    one. ``gap`` holds its NLL-test, ``objective`` is None."""
    kept: Choice | None = None
    for r in records:
        v = (r.get("metrics") or {}).get("nll_test") if r.get("phase") == "adversarial" else None
        if isinstance(v, (int, float)) and not isinstance(v, bool) and isinstance(r.get("epoch"), int) \
                and (kept is None or v < kept.gap):
            kept = Choice(r["epoch"], True, None, float(v))
    return kept


def better(c: Choice, kept: Choice, tie: float = OBJECTIVE_TIE) -> bool:
    """Whether epoch ``c`` replaces ``kept``: within the tolerance where ``kept`` is not;
    both within and ``c``'s objective higher by more than ``tie``, or within ``tie`` of
    it and ``c`` closer to the data; neither within and ``c`` closer."""
    if c.within != kept.within:
        return c.within
    if c.within and c.objective is not None and kept.objective is not None \
            and abs(c.objective - kept.objective) > tie:
        return c.objective > kept.objective
    return c.gap < kept.gap


class Selector:
    """Applies a run's rule during training (see the module docstring).

    ``metrics(G, rng)`` is what an evaluation of a music run records; ``update(epoch,
    metrics, records, G)`` is called at each adversarial evaluation before its record is
    appended and returns the record's ``"selected"`` entry (None for the rule ``final``).
    """

    def __init__(self, run: Any, train: torch.Tensor, log: Callable[[str], Any] = print,
                 allow_import: bool = False, has_test: bool = True):
        self.run, self.train, self.log = run, train, log
        self.music = run.vocab.kind == "music"
        if self.tc.select == "best-nll-test" and not has_test:
            raise UserError("--select best-nll-test needs held-out data, and this run has none; "
                            "use --select final, or a new run made with --test FILE")
        self.fn = objective_fn(self.tc.objective, allow_import) if self.music else None
        self._reference: dict[str, float] | None = None
        self._announced = False

    @property
    def tc(self) -> Any:
        """The run's training config (read each time: a resume may have changed it)."""
        return self.run.config.train

    @property
    def active(self) -> bool:
        """Whether the run keeps a selected generator: the rule best-nll-test, or a music
        run whose rule is data-close."""
        return self.tc.select == "best-nll-test" or (self.music and self.tc.select == "data-close")

    def _choose(self, records: Sequence[dict]) -> Choice | None:
        if self.tc.select == "best-nll-test":
            return lowest_nll_test(records)
        return choose(records, self.reference, self.tc.objective, self.tc.select_tolerance)

    @property
    def reference(self) -> dict[str, float]:
        """The data's values of the style metrics (computed once)."""
        if self._reference is None:
            self._reference = data_reference(self.train, self.run.vocab, self.tc.seed)
        return self._reference

    def metrics(self, G: Any, rng: torch.Generator) -> dict[str, float]:
        """The style metrics and the objective of ``eval_samples`` samples of ``G`` drawn with
        ``rng`` (nothing for a run that is not music)."""
        if not self.music:
            return {}
        samples = G.sample(self.tc.eval_samples, generator=rng)  # (N, T)
        return music_eval(samples, self.run.vocab, self.tc.objective, self.fn)

    def update(self, epoch: int, metrics: dict[str, float], records: Sequence[dict], G: Any
               ) -> dict[str, Any] | None:
        """Choose among the earlier adversarial ``records`` and this epoch's ``metrics``;
        write G as the selected generator when this epoch is the choice."""
        if not self.active:
            return None
        if not self._announced and self.tc.select == "data-close":
            self._announced = True
            self.log("select: the data's " + ", ".join(f"{k} {v:.3f}" for k, v in self.reference.items())
                     + f"; keeping the best {self.tc.objective or 'closest'} epoch within "
                     f"{self.tc.select_tolerance:.0%} of them")
        now = {"phase": "adversarial", "epoch": epoch, "metrics": metrics}
        c = self._choose([*records, now])
        if c is None:
            return None
        if c.epoch == epoch:
            meta = {"epoch": str(epoch), "within": str(c.within).lower(), "rule": self.tc.select,
                    "objective": "" if c.objective is None else repr(c.objective)}
            atomic_save_tensors(self.run.path / SELECTED_FILE, G.state_dict(), metadata=meta)
            if not c.within:
                self.log(f"select: no evaluated epoch is within {self.tc.select_tolerance:.0%} of the "
                         f"data yet; keeping the closest, epoch {epoch} (off by {c.gap:.1%})")
        return {"epoch": c.epoch, "within": c.within}

    def summary(self, records: Sequence[dict]) -> None:
        """Log which epoch the run keeps (at the end of adversarial training)."""
        if not self.active:
            return
        c = self._choose(records)
        if c is None:
            return
        if self.tc.select == "best-nll-test":
            self.log(f"select: keeping adversarial epoch {c.epoch} (lowest NLL-test, {c.gap:.4f}) as "
                     f"{SELECTED_FILE}; sample and evaluate use it (--final: the last epoch)")
            return
        obj = f"{self.tc.objective} {c.objective:.3f}, " if c.objective is not None else ""
        self.log(f"select: keeping adversarial epoch {c.epoch} ({obj}style "
                 f"{'within' if c.within else 'off by'} {c.gap:.1%} of the data's) as {SELECTED_FILE}; "
                 f"sample, evaluate and export-midi use it (--final: the last epoch)")
