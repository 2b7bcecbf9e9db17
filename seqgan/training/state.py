"""The explicit training state of one generator/discriminator pair.

:class:`TrainingState` holds what changes while a pair trains: the generator G and its two
Adam optimizers (MLE, adversarial), the discriminator D and its trainer, the rollout policy
G_β, and the counters (phase, epochs, rounds, seconds). Every training step
(:mod:`.mle`, :mod:`.d_training`, :mod:`.adversarial`, :mod:`.baselines`) is a function of
a state and its data; nothing here touches a file, so a population can hold many states
(one per cell) that are not tied to a run directory. :mod:`.persist` maps a state to a
checkpoint's files and back.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from seqgan.errors import TrainingError, UserError
from seqgan.models.discriminator import Discriminator
from seqgan.models.generator import Generator
from seqgan.runs.config import RunConfig
from seqgan.training.d_training import DiscriminatorTrainer
from seqgan.training.rollout import RolloutPolicy
from seqgan.training.shard import Shard

PHASE_WORDS = {"mle": "MLE pretraining", "d-pretrain": "discriminator pretraining",
               "adversarial": "adversarial training", "done": "adversarial training"}


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``cpu``, ``cuda``, ``cuda:N`` or None/"auto" (CUDA when there is one) as a device;
    a UserError for anything else or a GPU that is not there."""
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise UserError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from None
    if dev.type not in ("cpu", "cuda"):
        raise UserError(f"unsupported device {device!r}; use cpu, cuda or cuda:N")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but no CUDA GPU is available; use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise UserError(f"--device {device}: there are only {torch.cuda.device_count()} CUDA GPU(s)")
    if dev.type == "cuda":  # TF32 matmuls and convolutions: ~3x faster fp32 products on GPUs
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return dev


def new_counters() -> dict[str, Any]:
    """Fresh counters: phase ``mle``, every epoch and round count 0, 0.0 seconds."""
    return {"phase": "mle", "mle_epoch": 0, "d_round": 0, "adv_epoch": 0, "seconds": 0.0}


@dataclass
class TrainingState:
    """A generator/discriminator pair in training (see the module docstring).

    D, its trainer, the adversarial optimizer and the rollout policy exist once a phase
    needs them (:meth:`ensure_adversarial`); ``counters`` is what a checkpoint's
    ``state.json`` records besides the files. ``shard`` says which rows of each batch this
    process computes on in a data-parallel job (:mod:`.shard`; by default all of them).
    """

    cfg: RunConfig
    device: torch.device
    G: Generator
    opt_mle: torch.optim.Optimizer
    D: Discriminator | None = None
    d_trainer: DiscriminatorTrainer | None = None
    opt_adv: torch.optim.Optimizer | None = None
    rollout: RolloutPolicy | None = None
    counters: dict[str, Any] = field(default_factory=new_counters)
    log: Callable[[str], Any] = print
    shard: Shard = field(default_factory=Shard)

    @classmethod
    def build(cls, cfg: RunConfig, device: torch.device, log: Callable[[str], Any] = print,
              shard: Shard | None = None) -> "TrainingState":
        """A fresh state: G initialised from the current RNG (SeqGAN's N(0, 0.1))."""
        G = Generator(cfg.generator).to(device)
        return cls(cfg, device, G, torch.optim.Adam(G.parameters(), lr=cfg.train.mle_lr), log=log,
                   shard=shard or Shard())

    def ensure_adversarial(self, need_d: bool) -> None:
        """Create D (and its trainer) if ``need_d``, the adversarial optimizer and G_β."""
        if need_d and self.D is None:
            dc, gc = self.cfg.discriminator, self.cfg.generator
            self.D = Discriminator(dc, gc.vocab_size, gc.seq_len).to(self.device)
            self.d_trainer = DiscriminatorTrainer(self.D, dc.lr, dc.batch_size, dc.cuda_graph,
                                                  dc.compile, log=self.log, shard=self.shard)
        if self.opt_adv is None:
            self.opt_adv = torch.optim.Adam(self.G.parameters(), lr=self.cfg.train.adv_lr)
        if self.rollout is None:
            self.rollout = RolloutPolicy(self.G)

    def check_finite(self) -> None:
        """TrainingError if any weight of G or D became NaN or infinite."""
        for name, model in (("generator", self.G), ("discriminator", self.D)):
            if model is not None and not torch.stack([torch.isfinite(p).all() for p in model.parameters()]).all():
                raise TrainingError(f"the {name}'s weights became NaN or infinite; training stopped "
                                    f"and the last good checkpoint is kept (try a lower learning rate)")
