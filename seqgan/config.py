"""Typed configuration: dataclasses with defaults, named presets, strict (de)serialisation.

Names follow the papers (Yu et al. 2017, SeqGAN; Guimaraes et al. 2017, ORGAN):
``rollout_num``, ``update_rate``, ``lambda_``, ``g_steps``, ``d_steps``, ``k_epochs``.
A :class:`RunConfig` is written to ``config.json`` in every run directory; unknown keys
are errors so a typo in a config file never goes unnoticed.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from seqgan.errors import UserError

SEQGAN_FILTER_SIZES = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20)
SEQGAN_NUM_FILTERS = (100, 200, 200, 200, 200, 100, 100, 100, 100, 100, 160, 160)


@dataclass
class GeneratorConfig:
    """LSTM generator G_θ (SeqGAN §4): embedding E, hidden H, vocabulary V, length T."""

    vocab_size: int = 5000
    emb_dim: int = 32
    hidden_dim: int = 32
    seq_len: int = 20
    start_token: int = 0
    init_std: float = 0.1  # SeqGAN initialises every parameter N(0, 0.1)


DISCRIMINATOR_IMPLS = ("auto", "grouped", "fused", "conv")


@dataclass
class DiscriminatorConfig:
    """SeqGAN's CNN discriminator: filter banks, one highway layer, dropout, L2 output."""

    emb_dim: int = 64
    filter_sizes: tuple[int, ...] = SEQGAN_FILTER_SIZES
    num_filters: tuple[int, ...] = SEQGAN_NUM_FILTERS
    dropout: float = 0.25
    l2_reg: float = 0.2
    lr: float = 1e-4
    batch_size: int = 64  # SeqGAN's; a larger batch is a documented speed option
    # "auto" (fused on GPUs, conv on the CPU) | "fused" (one matmul over windows)
    # | "grouped" (a few matmuls over windows; fewer FLOPs, not yet timed on a GPU)
    # | "conv" (Conv1d per bank)
    impl: str = "auto"
    cuda_graph: bool = True  # capture the whole training step in a CUDA graph on GPUs
    # on GPUs, torch.compile the step's forward and backward before capture (opt-in: not
    # yet timed on a GPU; costs a one-time compile of ~a minute per process)
    compile: bool = False


@dataclass
class TrainConfig:
    """Schedule of MLE pretraining, discriminator pretraining and adversarial training."""

    seed: int = 0
    batch_size: int = 64
    # MLE pretraining (SeqGAN: Adam 0.01, clip 5, 120 epochs)
    mle_epochs: int = 120
    mle_lr: float = 0.01
    grad_clip: float = 5.0
    eval_every: int = 5
    eval_samples: int = 10_000
    # discriminator pretraining: d_pretrain_steps rounds of fresh negatives x d_pretrain_epochs
    d_pretrain_steps: int = 50
    d_pretrain_epochs: int = 3
    # adversarial training (SeqGAN Algorithm 1)
    adv_epochs: int = 200
    adv_lr: float = 0.01
    g_steps: int = 1
    d_steps: int = 5
    d_samples: int | None = None  # positives per D round (a random subset; None = all, as SeqGAN)
    k_epochs: int = 3
    rollout_num: int = 16
    update_rate: float = 0.8
    adv_eval_every: int = 5
    checkpoint_every: int = 1  # discriminator rounds / adversarial epochs between checkpoints
    # reward R(Y) = λ·D(Y) + (1-λ)·O(Y)·w(Y)
    lambda_: float = 1.0
    objective: str | None = None
    duplicate_penalty: bool = False
    reward_baseline: bool = False
    rollout_chunk: int = 32_768  # completions scored at once (bounds memory)
    # which generator training: "seqgan" (adversarial), "mle", "ss", "pg-bleu"
    baseline: str = "seqgan"
    ss_max_prob: float = 0.25  # scheduled sampling: final probability of feeding a sample
    pg_bleu_n: int = 4


@dataclass
class DataConfig:
    """Where the data comes from and how it becomes (N, T) token tensors."""

    spec: str = "oracle"
    test_spec: str | None = None
    n_train: int = 10_000  # oracle: sequences sampled as training data
    n_test: int = 10_000  # oracle: held-out sequences for NLL-test
    seq_len: int | None = None  # None: from the preset / the data
    options: dict[str, Any] = field(default_factory=dict)  # source-specific (tokenizer, grid, ...)


@dataclass
class RunConfig:
    preset: str = "seqgan-oracle"
    data: DataConfig = field(default_factory=DataConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        return _from_dict(cls, d, "config")


def _from_dict(cls: type, d: Any, where: str) -> Any:
    if not isinstance(d, dict):
        raise UserError(f"{where}: expected an object, got {type(d).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(d) - set(known))
    if unknown:
        raise UserError(f"{where}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(known)}")
    kwargs = {}
    for name, value in d.items():
        sub = _NESTED.get((cls, name))
        if sub is not None:
            kwargs[name] = _from_dict(sub, value, f"{where}.{name}")
        elif isinstance(value, list):
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    return cls(**kwargs)


_NESTED = {
    (RunConfig, "data"): DataConfig,
    (RunConfig, "generator"): GeneratorConfig,
    (RunConfig, "discriminator"): DiscriminatorConfig,
    (RunConfig, "train"): TrainConfig,
}


def _seqgan_oracle() -> RunConfig:
    return RunConfig(preset="seqgan-oracle")


def _quick() -> RunConfig:
    """Tiny settings: a whole pipeline in seconds on a CPU (tests, smoke runs)."""
    return RunConfig(
        preset="quick",
        data=DataConfig(spec="oracle", n_train=256, n_test=128, seq_len=8,
                        options={"vocab_size": 50, "oracle_dim": 16}),
        generator=GeneratorConfig(vocab_size=50, emb_dim=16, hidden_dim=16, seq_len=8),
        discriminator=DiscriminatorConfig(emb_dim=16, filter_sizes=(1, 2, 3, 4),
                                          num_filters=(8, 8, 8, 8)),
        train=TrainConfig(batch_size=32, mle_epochs=3, eval_every=1, eval_samples=128,
                          d_pretrain_steps=2, d_pretrain_epochs=1, adv_epochs=3,
                          d_steps=1, k_epochs=1, rollout_num=4, adv_eval_every=1),
    )


PRESETS = {
    "seqgan-oracle": _seqgan_oracle,
    "quick": _quick,
}


def register_preset(name: str):
    """Decorator: register a zero-argument function returning a :class:`RunConfig`."""

    def deco(fn):
        PRESETS[name] = fn
        return fn

    return deco


def get_preset(name: str) -> RunConfig:
    import seqgan.presets  # noqa: F401  (registers the other presets)

    try:
        return PRESETS[name]()
    except KeyError:
        raise UserError(f"unknown preset {name!r}; choose one of: {', '.join(sorted(PRESETS))}") from None


def override(cfg: Any, **values: Any) -> Any:
    """Return a copy of a config dataclass with the non-None ``values`` replaced."""
    values = {k: v for k, v in values.items() if v is not None}
    return dataclasses.replace(cfg, **values) if values else cfg


# -- configuration values read from a run -------------------------------------------------
_AT_LEAST_ONE = {"vocab_size", "emb_dim", "hidden_dim", "batch_size", "eval_every", "eval_samples",
                 "d_pretrain_epochs", "g_steps", "k_epochs", "rollout_num", "adv_eval_every",
                 "checkpoint_every", "rollout_chunk", "pg_bleu_n", "d_samples"}
_POSITIVE = {"mle_lr", "adv_lr", "lr", "grad_clip"}
_LEARNING_RATES, MAX_LR = {"mle_lr", "adv_lr", "lr"}, 10.0  # Adam overflows far above this
_UNIT = {"update_rate", "lambda_", "ss_max_prob", "dropout"}  # in [0, 1]
_ANY_SIGN = {"seed"}


def _type_ok(value: Any, hint: Any) -> bool:
    import types
    import typing

    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if hint is str:
        return isinstance(value, str)
    if origin is tuple:
        return isinstance(value, tuple) and all(_type_ok(v, args[0]) for v in value)
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    return True


MAX_SEED = 2**63 - 1  # torch generators take 64-bit seeds


def check_seed(seed: int, name: str = "--seed") -> int:
    """A seed every random stream accepts: an integer in 0..2**63-1."""
    if not 0 <= seed <= MAX_SEED:
        raise UserError(f"{name} must be an integer in 0..{MAX_SEED}; got {seed}")
    return seed


def validate_config(cfg: Any, where: str = "config") -> None:
    """Check every value of a (nested) config dataclass against its type and range.

    A config.json edited by hand or damaged must fail here with one line naming the key,
    not deep inside training.
    """
    import dataclasses
    import typing

    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        v, key = getattr(cfg, f.name), f"{where}.{f.name}"
        if dataclasses.is_dataclass(v):
            validate_config(v, key)
            continue
        if not _type_ok(v, hints[f.name]):
            hint = hints[f.name]
            name = hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")
            raise UserError(f"{key} is {v!r}, expected {'a finite ' if hint is float else ''}{name}")
        if f.name == "seed" and not isinstance(v, bool) and isinstance(v, int):
            check_seed(v, key)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or f.name in _ANY_SIGN:
            continue
        if f.name in _UNIT and not 0 <= v <= 1:
            raise UserError(f"{key} is {v!r}, expected a value in [0, 1]")
        if f.name in _LEARNING_RATES and v > MAX_LR:
            raise UserError(f"{key} is {v!r}, expected a learning rate in (0, {MAX_LR:g}]")
        if f.name in _AT_LEAST_ONE and v < 1 or f.name in _POSITIVE and not v > 0 or v < 0:
            raise UserError(f"{key} is {v!r}, expected a {'positive' if v <= 0 else 'valid'} value")
    if hasattr(cfg, "seq_len") and cfg.seq_len is not None and cfg.seq_len < 2:
        raise UserError(f"{where}.seq_len is {cfg.seq_len}, expected at least 2")
    if hasattr(cfg, "filter_sizes") and (len(cfg.filter_sizes) != len(cfg.num_filters)
                                         or not cfg.filter_sizes or min(cfg.filter_sizes) < 1
                                         or min(cfg.num_filters) < 1):
        raise UserError(f"{where}: filter_sizes and num_filters must be equally long lists of "
                        f"positive integers")
    if hasattr(cfg, "impl") and cfg.impl not in DISCRIMINATOR_IMPLS:
        raise UserError(f"{where}.impl is {cfg.impl!r}; choose one of: {', '.join(DISCRIMINATOR_IMPLS)}")
    if hasattr(cfg, "start_token") and not 0 <= cfg.start_token < cfg.vocab_size:
        raise UserError(f"{where}.start_token {cfg.start_token} is outside 0..{cfg.vocab_size - 1}")
