"""Where a run's data comes from and how it becomes (N, T) token tensors."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from seqgan.knobs import knob


@dataclass
class DataConfig:
    """A data spec (see :func:`seqgan.datasets.resolve_spec`) and how to read it."""

    spec: str = knob("oracle", "Data spec: oracle, oracle:PATH.npz, music21:essen, a MIDI/MusicXML "
                     "folder, FILE.abc or FILE.txt.")
    test_spec: str | None = knob(None, "Held-out file for NLL-test / BLEU references.",
                                 command="pretrain", flag="test", fixed=True)
    n_train: int = knob(10_000, "Oracle: sequences sampled as training data.", lo=0)
    n_test: int = knob(10_000, "Oracle: held-out sequences for NLL-test.", lo=0)
    seq_len: int | None = knob(None, "Sequence length T [default: from preset/data].", lo=2, hi=100_000,
                               command="pretrain", fixed=True)
    # source-specific (tokenizer, grid, ...), checked by each source's typed checker
    options: dict[str, Any] = knob(help="Source options (--data-option KEY=VALUE).", factory=dict)
