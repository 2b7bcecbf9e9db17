"""A run's typed configuration: :class:`RunConfig` = data + generator + discriminator + train.

Names follow the papers (Yu et al. 2017, SeqGAN; Guimaraes et al. 2017, ORGAN):
``rollout_num``, ``update_rate``, ``lambda_``, ``g_steps``, ``d_steps``, ``k_epochs``.
Each field is a knob (:mod:`seqgan.knobs`): its help, range and command-line flag are
declared here once, and the CLI's options and every check are made from that. A
:class:`RunConfig` is written to ``config.json`` in every run directory; unknown keys are
errors so a typo in a config file never goes unnoticed. The model configs live beside
their models (:class:`GeneratorConfig`, :class:`DiscriminatorConfig`), the data config
beside the data (:class:`DataConfig`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from seqgan.datasets.config import DataConfig
from seqgan.errors import UserError
from seqgan.knobs import MAX_LR, MAX_SEED, check, knob
from seqgan.metrics.bleu_smoothing import SMOOTHINGS as BLEU_SMOOTHINGS
from seqgan.models.discriminator import DiscriminatorConfig
from seqgan.models.generator import GeneratorConfig
from seqgan.runs.evolve_config import G_LOSS_NAMES, EvolveConfig

# scheduled sampling's schedules (seqgan.training.ss_schedule)
SS_SCHEDULES = ("linear", "constant", "inverse-sigmoid", "exponential")
LR = {"lo": 0.0, "lo_open": True, "hi": MAX_LR}  # a learning rate: (0, 10]


@dataclass
class TrainConfig:
    """Schedule of MLE pretraining, discriminator pretraining and adversarial training."""

    seed: int = knob(0, "Random seed.", lo=0, hi=MAX_SEED, command="pretrain", fixed=True)
    batch_size: int = knob(64, "Batch size.", lo=1, command="pretrain", fixed=True)
    # MLE pretraining (SeqGAN: Adam 0.01, clip 5, 120 epochs)
    mle_epochs: int = knob(120, "MLE epochs in total; on an existing run, more continues MLE.",
                           lo=0, command="pretrain", flag="epochs")
    mle_lr: float = knob(0.01, "MLE learning rate.", **LR, command="pretrain", flag="lr", fixed=True)
    grad_clip: float = knob(5.0, "Gradient-norm clip of the generator.", lo=0.0, lo_open=True)
    eval_every: int = knob(5, "Evaluate every K MLE epochs.", lo=1, command="pretrain")
    eval_samples: int = knob(10_000, "Samples drawn for each evaluation.", lo=1)
    # discriminator pretraining: d_pretrain_steps rounds of fresh negatives x d_pretrain_epochs
    d_pretrain_steps: int = knob(50, "Discriminator pretraining rounds.", lo=0, command="train")
    d_pretrain_epochs: int = knob(3, "Epochs per discriminator pretraining round.", lo=1)
    # adversarial training (SeqGAN Algorithm 1)
    adv_epochs: int = knob(200, "Adversarial epochs in total.", lo=0, command="train", flag="epochs")
    adv_lr: float = knob(0.01, "Generator learning rate in adversarial training.", **LR)
    g_steps: int = knob(1, "Generator steps per epoch.", lo=1, command=("train", "coevolve"))
    d_steps: int = knob(5, "Discriminator rounds per epoch.", lo=0, command=("train", "coevolve"))
    d_samples: int | None = knob(None, "Positives per discriminator round (a random subset) "
                                 "[all, as SeqGAN].", lo=1, command=("train", "coevolve"))
    k_epochs: int = knob(3, "Epochs per discriminator round.", lo=1, command=("train", "coevolve"))
    rollout_num: int = knob(16, "Monte Carlo rollouts N.", lo=1, command=("train", "coevolve"))
    update_rate: float = knob(0.8, "Rollout policy delay ρ; 0 = what SeqGAN's code actually did.",
                              lo=0.0, hi=1.0, command=("train", "coevolve"))
    adv_eval_every: int = knob(5, "Evaluate every K adversarial epochs.", lo=1, command="train",
                               flag="eval-every")
    checkpoint_every: int = knob(1, "Checkpoint every K adversarial epochs / D rounds.", lo=1,
                                 command="train")
    # which adversarial generator readers use (seqgan.training.selection)
    select: str = knob("final", "The generator that sample/evaluate/export-midi use: final; "
                       "best-nll-test (the evaluated adversarial epoch of lowest NLL on the held-out "
                       "data); or, for music, data-close (the evaluated epoch with the best objective "
                       "among those whose notes per bar, pitch-class entropy and diversity are within "
                       "--select-tolerance of the data's).", choices=("final", "data-close", "best-nll-test"),
                       command="train")
    select_tolerance: float = knob(0.1, "data-close: the relative distance from the data's values "
                                   "allowed (0.1 = 10 %).", lo=0.0, lo_open=True, command="train")
    # progress snapshots: the same seeds sampled every K epochs (seqgan animate)
    snapshot_every: int = knob(0, "Keep fixed-seed samples every K MLE / adversarial epochs; "
                               "0 = about 20 snapshots per run.", lo=0, command=("pretrain", "train"))
    snapshot_samples: int = knob(8, "Samples in each snapshot (0 = no snapshots).", lo=0, hi=256,
                                 command=("pretrain", "train"))
    # reward R(Y) = λ·D(Y) + (1-λ)·O(Y)·w(Y)
    lambda_: float = knob(1.0, "Reward weight λ in [0, 1]: 1 = SeqGAN, 0 = objective only.",
                          lo=0.0, hi=1.0, command=("train", "coevolve"), flag="lambda")
    objective: str | None = knob(None, "ORGAN objective: tonality, melodicity, ratio_of_steps, a "
                                 "plug-in name or module:function.", command=("train", "coevolve"))
    duplicate_penalty: bool = knob(False, "ORGAN's penalty on repeated sequences in the objective.",
                                   command=("train", "coevolve"), negatable=True)
    reward_baseline: bool = knob(False, "Subtract the batch-mean reward (variance reduction).",
                                 command="train", negatable=True)
    rollout_chunk: int = knob(32_768, "Completions scored at once (bounds memory).", lo=1)
    g_loss: str = knob("seqgan", "Generator loss as reward of D's verdict d: seqgan (d), heuristic "
                       "(log d), bce (-log(1-d)), mse (-(d-1)^2), or random (one drawn per step).",
                       choices=G_LOSS_NAMES, command="train")
    baseline: str = knob("seqgan", "Generator training: seqgan (adversarial), mle, ss (scheduled "
                         "sampling) or pg-bleu.", command="train")
    # scheduled sampling (seqgan.training.ss_schedule): p of feeding the model's own token
    ss_max_prob: float = knob(0.25, "Scheduled sampling: the largest probability of feeding the "
                              "model's own token (linear: reached at the last epoch).", lo=0.0, hi=1.0,
                              command="train")
    ss_schedule: str = knob("linear", "Scheduled sampling: linear (per epoch up to --ss-max-prob), "
                            "constant, or Bengio et al.'s per-minibatch decays inverse-sigmoid, "
                            "exponential (capped at --ss-max-prob).", choices=SS_SCHEDULES, command="train")
    ss_k: float = knob(0.0, "Scheduled sampling: k of the inverse-sigmoid (>= 1) or exponential "
                       "(< 1) decay; 0 = teacher forcing half the time at mid-run.", lo=0.0, command="train")
    ss_unit: str = knob("token", "Scheduled sampling: a coin per token (Bengio et al.) or per sequence.",
                        choices=("token", "sequence"), command="train")
    ss_pick: str = knob("sample", "Scheduled sampling: feed a sample of the model's distribution "
                        "(Bengio et al.) or its argmax.", choices=("sample", "argmax"), command="train")
    # PG-BLEU: BLEU-n of each completion against the training data as the reward
    pg_bleu_n: int = knob(4, "PG-BLEU: the BLEU order of the reward.", lo=1, hi=5, command="train")
    pg_bleu_refs: int = knob(0, "PG-BLEU: training sequences used as references, drawn with the "
                             "run's seed (0 = all).", lo=0, command="train")
    pg_bleu_smoothing: str = knob("method1", "PG-BLEU: nltk's smoothing of zero n-gram counts: "
                                  "method1 (epsilon 0.1, as our BLEU), method0 (none: BLEU 0), method2 "
                                  "(add one for n > 1).", choices=BLEU_SMOOTHINGS, command="train")


@dataclass
class RunConfig:
    """A run's whole configuration: its preset's name and the data, generator, discriminator
    and training configs (what config.json stores)."""

    preset: str = knob("seqgan-oracle", "The preset the run was made from.")
    data: DataConfig = field(default_factory=DataConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    evolve: EvolveConfig = field(default_factory=EvolveConfig)

    def to_dict(self) -> dict[str, Any]:
        """The config as nested plain dicts and lists (``dataclasses.asdict``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        """The config of :meth:`to_dict`'s form: unknown keys are a UserError and lists become
        tuples; values are checked by :func:`validate_config`, not here."""
        return _from_dict(cls, d, "config")


_NESTED = {"data": DataConfig, "generator": GeneratorConfig, "discriminator": DiscriminatorConfig,
           "train": TrainConfig, "evolve": EvolveConfig}


def _from_dict(cls: type, d: Any, where: str) -> Any:
    if not isinstance(d, dict):
        raise UserError(f"{where}: expected an object, got {type(d).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise UserError(f"{where}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(known)}")
    kwargs = {}
    for name, value in d.items():
        if cls is RunConfig and name in _NESTED:
            kwargs[name] = _from_dict(_NESTED[name], value, f"{where}.{name}")
        else:
            kwargs[name] = tuple(value) if isinstance(value, list) else value
    return cls(**kwargs)


def validate_config(cfg: Any, where: str = "config") -> None:
    """Check every value of a (nested) config against its type and declared range.

    A config.json edited by hand or damaged fails here with one line naming the key, not
    deep inside training.
    """
    check(cfg, where)
    if isinstance(cfg, RunConfig):
        check_relations(cfg, f"{where}: ")


def check_relations(cfg: RunConfig, where: str = "") -> None:
    """The checks that involve several knobs at once (each knob's own range is
    :func:`seqgan.knobs.check`'s): a UserError where ``ss_k`` is on the wrong side of 1 for
    the decay it parameterises. Run on every config read and every set of options applied."""
    tc = cfg.train
    if tc.ss_k and tc.ss_schedule in ("exponential", "inverse-sigmoid") \
            and (tc.ss_schedule == "exponential") != (tc.ss_k < 1):
        need = "below 1" if tc.ss_schedule == "exponential" else "at least 1"
        raise UserError(f"{where}--ss-k of the {tc.ss_schedule} schedule must be {need} (0 chooses it); "
                        f"got {tc.ss_k:g}")
