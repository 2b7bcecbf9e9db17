"""Progress snapshots: the same seeds sampled every K epochs, kept in ``RUN/snapshots/``.

While a run trains, every K-th MLE epoch and every K-th adversarial epoch (and the last
epoch of each phase, and the untrained generator as MLE epoch 0) the generator draws
``snapshot_samples`` sequences from a fresh ``torch.Generator`` seeded with
:func:`snapshot_seed` — the same seed every time, so snapshot k and snapshot k+1 differ
only by training, and a frame-by-frame animation (``seqgan animate``) shows how the same
seeds evolve. The stream is its own: a snapshot never touches the global RNG that
training draws from, so a run with snapshots trains bit for bit like one without, and a
resumed run like an uninterrupted one. Discriminator rounds do not change G and get none.

Files, named by phase and the epoch within it (four digits or more), written atomically::

    snapshots/mle-0000.txt           decoded samples, one a line (words, note names, ids)
    snapshots/mle-0000.safetensors   {"tokens": (n, T) int32}; metadata phase, epoch, seed
    snapshots/adv-0004.txt ...       adversarial (or baseline) epochs

K is ``snapshot_every``, or when that is 0, ``ceil((mle_epochs + adv_epochs) / 20)``:
about 20 snapshots over a run's two phases. A snapshot of 8 sequences costs one
sampling pass of 8 rows (milliseconds), far below an epoch.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from seqgan.datasets import format_samples
from seqgan.files import atomic_save_tensors, atomic_write_bytes, load_tensors
from seqgan.knobs import MAX_SEED

FOLDER = "snapshots"
PHASE_FILES = {"mle": "mle", "adversarial": "adv"}  # training phase -> file prefix
PHASE_NAMES = {v: k for k, v in PHASE_FILES.items()}
TARGET = 20  # snapshots per run when snapshot_every is 0
_NAME = re.compile(r"^(mle|adv)-(\d{4,})\.txt$")


def snapshot_seed(seed: int) -> int:
    """The seed of a run's snapshot stream: ``(seed + 1_000_000_007) mod 2**63`` (fixed per
    run, apart from the streams training and evaluation draw from)."""
    return (seed + 1_000_000_007) % (MAX_SEED + 1)


def snapshot_interval(tc) -> int:
    """K for the train config ``tc``: ``snapshot_every``, or ``ceil((mle_epochs + adv_epochs)
    / 20)`` (at least 1) when it is 0."""
    return tc.snapshot_every or max(1, math.ceil((tc.mle_epochs + tc.adv_epochs) / TARGET))


@dataclass(frozen=True)
class Snapshot:
    """One snapshot on disk: its phase (``mle`` or ``adversarial``), epoch and files."""

    phase: str
    epoch: int
    text: Path
    tokens_path: Path

    @property
    def label(self) -> str:
        """``MLE epoch 4`` / ``adversarial epoch 10``: for a frame's title."""
        return f"{'MLE' if self.phase == 'mle' else 'adversarial'} epoch {self.epoch}"

    def lines(self) -> list[str]:
        """The decoded samples, one per line of the text file."""
        return self.text.read_text(encoding="utf-8").splitlines()

    def tokens(self) -> torch.Tensor | None:
        """The samples' tokens (n, T) int64, or None when the file is missing."""
        if not self.tokens_path.is_file():
            return None
        return load_tensors(self.tokens_path)["tokens"].long()


def snapshot_path(run_path: Path, phase: str, epoch: int) -> Path:
    """``RUN/snapshots/{mle|adv}-NNNN.txt`` of a phase's epoch."""
    return Path(run_path) / FOLDER / f"{PHASE_FILES[phase]}-{epoch:04d}.txt"


def list_snapshots(run_path: str | Path) -> list[Snapshot]:
    """The snapshots of a run in training order (MLE epochs, then adversarial ones)."""
    folder = Path(run_path) / FOLDER
    found = []
    for p in folder.glob("*.txt") if folder.is_dir() else ():
        m = _NAME.match(p.name)
        if m:
            found.append(Snapshot(PHASE_NAMES[m.group(1)], int(m.group(2)), p, p.with_suffix(".safetensors")))
    return sorted(found, key=lambda s: (s.phase != "mle", s.epoch))


class Snapshotter:
    """Writes a run's snapshots while it trains (see the module docstring)."""

    def __init__(self, run_path: str | Path, vocab, cfg):
        self.path, self.vocab, self.cfg = Path(run_path), vocab, cfg  # cfg.train is read at each epoch

    @property
    def tc(self):
        """The run's train config as it is now (``pretrain --epochs`` may replace it)."""
        return self.cfg.train

    def due(self, epoch: int, total: int) -> bool:
        """Whether epoch ``epoch`` of a phase of ``total`` epochs gets a snapshot."""
        return self.tc.snapshot_samples > 0 and (epoch % snapshot_interval(self.tc) == 0 or epoch == total)

    def take(self, phase: str, epoch: int, G, total: int) -> Path | None:
        """Sample G with the run's snapshot seed and write the snapshot of ``phase``'s epoch
        ``epoch`` if it is due; its text file's path, or None."""
        if phase not in PHASE_FILES or not self.due(epoch, total):
            return None
        seed = snapshot_seed(self.tc.seed)
        was_training = G.training
        G.eval()
        tokens = G.sample(self.tc.snapshot_samples, generator=torch.Generator(device=G.device).manual_seed(seed))
        G.train(was_training)
        tokens = tokens.cpu()
        path = snapshot_path(self.path, phase, epoch)
        path.parent.mkdir(exist_ok=True)
        atomic_save_tensors(path.with_suffix(".safetensors"), {"tokens": tokens.to(torch.int32)},
                            {"phase": phase, "epoch": str(epoch), "seed": str(seed)})
        atomic_write_bytes(path, ("\n".join(format_samples(self.vocab, tokens)) + "\n").encode("utf-8"))
        return path
