"""TensorBoard logs of a run (``--tensorboard``): every epoch's scalars and piano rolls.

:class:`TensorBoardLog` is a training callback (see :mod:`seqgan.api`): each epoch's
record ``{"phase", "epoch", "metrics"}`` becomes one scalar per metric, tagged
``PHASE/METRIC`` at step ``epoch`` (the epoch within its phase, as in ``metrics.jsonl``:
``mle/loss``, ``mle/nll_test``, ``d-pretrain/d_acc``, ``adversarial/nll_oracle``, ...;
the untrained generator's evaluation, MLE epoch 0, is taken from ``metrics.jsonl`` at
the first MLE epoch); a coevolution record, one per cell and generation, is tagged
``coevolve/METRIC/cellK``. Values that are not finite numbers are left out. For music,
each progress snapshot (:mod:`seqgan.runs.snapshots`: the same seeds sampled every K MLE
or adversarial epochs) becomes a piano-roll image ``piano_roll/PHASE`` at its epoch,
drawn by :func:`seqgan.datasets.midi.piano_roll_png` from its first
:data:`IMAGE_SAMPLES` tunes; a snapshot is written after the callbacks of its epoch, so
its image is added at the next record (or when the log closes).

The events go to ``RUN/tensorboard/`` with ``torch.utils.tensorboard``, flushed after
every record (a killed run keeps what it logged; a resumed run adds a new events file
beside the old ones, which TensorBoard reads as one run)::

    tensorboard --logdir runs/

torch.utils.tensorboard needs the ``tensorboard`` package (``pip install
"seqgan[tensorboard]"``); :func:`require_tensorboard` says so in one line.
"""
from __future__ import annotations

import contextlib
import math
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from seqgan.errors import UserError
from seqgan.runs.metrics_log import MetricsLog
from seqgan.runs.snapshots import list_snapshots

FOLDER = "tensorboard"
IMAGE_SAMPLES = 4
INSTALL = 'pip install "seqgan[tensorboard]"'


def require_tensorboard() -> Any:
    """``torch.utils.tensorboard.SummaryWriter``, or a one-line UserError saying how to install it."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:
        raise UserError(f"--tensorboard needs the tensorboard package: {INSTALL} ({e})") from None
    return SummaryWriter


def scalars(record: dict[str, Any]) -> dict[str, float]:
    """``{tag: value}`` of a record's finite numeric metrics (see the module docstring)."""
    phase = record.get("phase", "train")
    cell = record.get("cell")
    out = {}
    for k, v in (record.get("metrics") or {}).items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            continue
        out[f"{phase}/{k}" + (f"/cell{cell}" if cell is not None else "")] = float(v)
    return out


class TensorBoardLog:
    """A callback writing a run's records (and music snapshots) to ``RUN/tensorboard/``."""

    def __init__(self, run_path: str | Path, vocab: Any = None):
        self.SummaryWriter = require_tensorboard()
        self.run_path = Path(run_path)
        self.vocab = vocab
        self.images = getattr(vocab, "kind", None) == "music"
        self._writer = None  # made at the first record: a command that fails first leaves no file
        # snapshots already there were drawn by an earlier command (or predate TensorBoard)
        self.drawn = {(s.phase, s.epoch) for s in list_snapshots(self.run_path)} if self.images else set()

    @property
    def writer(self) -> Any:
        """The ``SummaryWriter`` of ``RUN/tensorboard/`` (made on first use)."""
        if self._writer is None:
            self._writer = self.SummaryWriter(log_dir=str(self.run_path / FOLDER))
        return self._writer

    def __call__(self, record: dict[str, Any]) -> None:
        """Write one record's scalars at its epoch, and the snapshots that appeared since."""
        if record.get("phase") == "mle" and record.get("epoch") == 1:  # the untrained generator's
            first = MetricsLog(self.run_path / "metrics.jsonl").read()[:1]  # record skips the callbacks
            if first and first[0].get("phase") == "mle" and first[0].get("epoch") == 0:
                self._scalars(first[0])
        self._scalars(record)
        self._draw_new_snapshots()
        self.writer.flush()

    def _scalars(self, record: dict[str, Any]) -> None:
        for tag, v in scalars(record).items():
            self.writer.add_scalar(tag, v, int(record.get("epoch", 0)))

    def replay(self, records: Iterable[dict[str, Any]]) -> None:
        """Write records made elsewhere (e.g. by the workers of a distributed job)."""
        for r in records:
            self(r)

    def _draw_new_snapshots(self) -> None:
        if not self.images:
            return
        for s in list_snapshots(self.run_path):
            if (s.phase, s.epoch) in self.drawn:
                continue
            tokens = s.tokens()
            if tokens is not None and len(tokens):
                self.writer.add_image(f"piano_roll/{s.phase}", self._piano_roll(tokens[:IMAGE_SAMPLES]),
                                      s.epoch, dataformats="HWC")
            self.drawn.add((s.phase, s.epoch))

    def _piano_roll(self, tokens):
        """The piano rolls of ``tokens`` (n, T) as an RGB array (H, W, 3) in [0, 1]."""
        from matplotlib.image import imread

        from seqgan.datasets.midi import piano_roll_png

        with tempfile.TemporaryDirectory(prefix="seqgan-tb-") as tmp:
            path = piano_roll_png(self.vocab, tokens, Path(tmp) / "roll.png", cols=len(tokens))
            return imread(path)[..., :3]

    def close(self) -> None:
        """Draw the last snapshots and close the events file (if anything was logged)."""
        if self._writer is not None:
            self._draw_new_snapshots()
            self._writer.close()


@contextlib.contextmanager
def with_tensorboard(run_path: str | Path, vocab: Any, callbacks: Sequence, on: bool) -> Iterator[tuple]:
    """``callbacks`` as a tuple, with a :class:`TensorBoardLog` of the run last when ``on``
    (closed when the block ends, however it ends)."""
    board = TensorBoardLog(run_path, vocab) if on else None
    try:
        yield (*callbacks, board) if board else tuple(callbacks)
    finally:
        if board:
            board.close()
