"""Evaluation metrics and their registry (what ``seqgan evaluate --metrics`` can name).

- ``nll-oracle``: mean per-token NLL under the oracle of sequences sampled from G
  (SeqGAN, Yu et al. 2017, Table 1; lower is better; MLE reaches 9.038).
- ``nll-test``: G's mean per-token NLL of the held-out set (teacher forcing).
- ``bleu``: BLEU-2..5 of samples against references (nltk's ``sentence_bleu``, uniform
  weights, smoothing method1, each hypothesis against the whole reference set, averaged:
  Texygen's convention), computed exactly by :mod:`seqgan.metrics.bleu`. References are
  ``--references FILE`` or else the run's tokenised test set; there the unknown-word
  token never matches (a sampled ``<unk>`` does not earn credit for an ``<unk>`` in a
  reference, just as it matches no word of a raw reference file), and references are
  cut to the run's length T. That is ``--bleu-mode nltk``; the Texygen modes pass a
  :class:`~seqgan.metrics.bleu_modes.TexygenReferences` as the references (every line of
  a file, blank ones kept, nltk's ``word_tokenize``; :mod:`seqgan.metrics.bleu_modes`).
- ``self-bleu``: BLEU-2..5 of each sample against all the other samples (Zhu et al. 2018).
- ``distinct``: distinct-1..4 and percent unique samples.
- ``music``: ORGAN's objectives, diversity, uniqueness, novelty, pitch-class entropy and
  notes per bar (:mod:`seqgan.metrics.music`).
- any objective name (``tonality``, ...): its mean over the samples.

A metric function takes an :class:`EvalContext` and returns ``{column: value}``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from seqgan.errors import UserError
from seqgan.metrics.bleu_modes import TexygenReferences


@dataclass
class EvalContext:
    """What a metric may read: the samples (N, T), the vocabulary, generator and oracle, the
    training and test sets (M, T), BLEU references and a per-evaluation cache."""

    samples: torch.Tensor  # (N, T) sequences being evaluated
    vocab: Any
    generator: Any = None  # scores nll-test; None for the training-data row
    oracle: Any = None
    train: torch.Tensor | None = None  # (M, T)
    test: torch.Tensor | None = None
    references: list[list[str]] | TexygenReferences | None = None  # token lists for BLEU
    cache: dict[str, Any] = field(default_factory=dict)

    def hypotheses(self) -> list[list[str]]:
        """The samples decoded to token lists (cut at EOS, PAD and BOS dropped), cached."""
        if "hyps" not in self.cache:
            self.cache["hyps"] = [self.vocab.decode(row) for row in self.samples.tolist()]
        return self.cache["hyps"]


def nll_oracle(ctx: EvalContext) -> dict[str, float]:
    """``nll-oracle``: mean per-token NLL of the samples under the oracle (SeqGAN, Yu et al.
    2017, Table 1; lower is better); a UserError for a run without an oracle."""
    if ctx.oracle is None:
        raise UserError("nll-oracle needs a run on oracle data (seqgan pretrain --data oracle)")
    return {"nll-oracle": ctx.oracle.nll(ctx.samples.to(ctx.oracle.W.device))}


def nll_test(ctx: EvalContext) -> dict[str, float]:
    """``nll-test``: G's mean per-token NLL of the test set (teacher forcing); NaN for the
    training-data row (no generator), a UserError for a run without a test set."""
    if ctx.test is None or not len(ctx.test):
        raise UserError("nll-test needs held-out data and this run has none; create the run with "
                        "`seqgan pretrain --test FILE` for text, or a test_fraction above 0 for music")
    if ctx.generator is None:
        return {"nll-test": float("nan")}
    return {"nll-test": ctx.generator.nll(ctx.test)}


NO_MATCH = "\x00unknown"  # stands for an unknown reference word; no sample token equals it


def _refs(ctx: EvalContext) -> list[list[str]]:
    if ctx.references is not None:
        return ctx.references
    if ctx.test is not None and len(ctx.test):
        unk = ctx.vocab.tokens[ctx.vocab.unk] if ctx.vocab.unk is not None else None
        return [[NO_MATCH if w == unk else w for w in ctx.vocab.decode(r)] for r in ctx.test.tolist()]
    raise UserError("bleu needs references and this run has no test set: pass --references FILE")


def bleu(ctx: EvalContext) -> dict[str, float]:
    """``bleu``: BLEU-2..5 (Papineni et al. 2002; Texygen's mean sentence BLEU) of the decoded
    samples against the references, each in [0, 1]; read and tokenised as Texygen does when
    the references are :class:`TexygenReferences`."""
    from seqgan.metrics.bleu import corpus_bleu_scores

    if isinstance(ctx.references, TexygenReferences):
        unk = ctx.vocab.tokens[ctx.vocab.unk] if getattr(ctx.vocab, "unk", None) is not None else None
        return ctx.references.bleu_scores(ctx.hypotheses(), (2, 3, 4, 5), unk)
    return corpus_bleu_scores(ctx.hypotheses(), _refs(ctx), ns=(2, 3, 4, 5))


def self_bleu(ctx: EvalContext) -> dict[str, float]:
    """``self-bleu``: self-BLEU-2..5 of the decoded samples (Zhu et al. 2018), each in [0, 1];
    higher is less diverse."""
    from seqgan.metrics.bleu import self_bleu_scores

    return self_bleu_scores(ctx.hypotheses(), ns=(2, 3, 4, 5))


def distinct(ctx: EvalContext) -> dict[str, float]:
    """``distinct``: distinct-1..4 of the decoded samples, in [0, 1], and ``unique-%`` (0..100)."""
    from seqgan.metrics.diversity import distinct_n, percent_unique

    hyps = ctx.hypotheses()
    out = {f"distinct-{n}": distinct_n(hyps, n) for n in (1, 2, 3, 4)}
    out["unique-%"] = percent_unique(hyps)
    return out


def music(ctx: EvalContext) -> dict[str, float]:
    """``music``: the music metrics of the samples (ORGAN's objectives, diversity, uniqueness, ...;
    :mod:`seqgan.metrics.music`)."""
    from seqgan.metrics.music import music_metrics

    return music_metrics(ctx.samples, ctx.vocab, ctx.train)


METRICS: dict[str, Callable[[EvalContext], dict[str, float]]] = {
    "nll-oracle": nll_oracle,
    "nll-test": nll_test,
    "bleu": bleu,
    "self-bleu": self_bleu,
    "distinct": distinct,
    "music": music,
}

DEFAULT_METRICS = {"ids": "nll-oracle,nll-test", "text": "bleu,self-bleu,nll-test,distinct",
                   "music": "music,nll-test"}
NEEDS_TEST = {"nll-test": "no test set", "bleu": "no test set and no --references"}


def default_metrics(kind: str, has_test: bool, has_references: bool = False) -> tuple[list[str], str]:
    """The default metrics of a run's kind that it can compute, and a note on those left out
    (``nll-test`` without a test set, ``bleu`` without a test set or references)."""
    names = parse_metrics(DEFAULT_METRICS[kind])
    left = [n for n in names if not has_test and not (n == "bleu" and has_references) and n in NEEDS_TEST]
    note = "; ".join(f"{n} left out ({NEEDS_TEST[n]})" for n in left)
    return [n for n in names if n not in left], note


def get_metric(name: str) -> Callable[[EvalContext], dict[str, float]]:
    """The metric function called ``name`` (for an objective's name: its mean over the
    samples); a UserError listing the valid names."""
    if name in METRICS:
        return METRICS[name]
    from seqgan.objectives import available_objectives, get_objective

    if name in available_objectives():
        fn = get_objective(name)
        return lambda ctx: {name: float(fn(ctx.samples, ctx.vocab).float().mean())}
    raise UserError(f"unknown metric {name!r}; choose from: {', '.join(sorted(METRICS))}, "
                    f"or an objective ({', '.join(available_objectives())})")


def parse_metrics(spec: str) -> list[str]:
    """The names of a comma-separated ``--metrics`` spec, each checked; a UserError for an
    empty spec or an unknown name."""
    names = [m.strip() for m in spec.split(",") if m.strip()]
    if not names:
        raise UserError("--metrics is empty; name at least one metric")
    for n in names:
        get_metric(n)
    return names


def compute(names: list[str], ctx: EvalContext) -> dict[str, float]:
    """Every named metric on ``ctx``, merged into one {column: value} dict."""
    out: dict[str, float] = {}
    for n in names:
        out.update(get_metric(n)(ctx))
    return out
