"""Everything that turns files into token tensors and back.

A *data spec* names a source (see :func:`resolve_spec`):

=============================  ==============================================
``oracle``                     SeqGAN's synthetic data from a random oracle LSTM
``oracle:PATH.npz``            ... from published oracle parameters (SeqGAN's ``params.npz``)
``music21:essen``              a corpus built into music21 (``essen``, ``oneills``, ``bach``)
``FOLDER``                     MIDI / MusicXML files (melodies)
``FILE.abc``                   many tunes in ABC notation
``FILE.txt`` (any other file)  text, one sentence a line
=============================  ==============================================

Each source module exposes ``load(arg, cfg, seq_len, seed) -> Corpus``. Sources are
imported lazily so that, e.g., the oracle never imports music21. Importing this package
imports no torch (only the sources do), so that the music parser's worker processes,
which import ``seqgan.datasets.music_readers``, start without it.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from seqgan.datasets.vocab import Vocabulary
from seqgan.errors import UserError

if TYPE_CHECKING:
    import torch

__all__ = ["Corpus", "Vocabulary", "load_corpus", "resolve_spec", "format_samples", "SOURCES"]

SPEC_HELP = ("oracle, oracle:PATH.npz, music21:essen|oneills|bach, a folder of MIDI/MusicXML "
             "files, an .abc file, or a text file with one sentence a line")


@dataclass
class Corpus:
    """Token tensors of one data set plus what is needed to read them back."""

    train: torch.Tensor  # (N, T) int64
    vocab: Vocabulary
    start_token: int
    test: torch.Tensor | None = None  # (M, T) int64, held out
    oracle: Any = None  # seqgan.models.oracle.Oracle for synthetic data
    info: dict[str, Any] = field(default_factory=dict)  # counts to report (skipped, cut, ...)

    @property
    def seq_len(self) -> int:
        """T, the length of every sequence (``train.shape[1]``)."""
        return int(self.train.shape[1])


# source name -> module that defines load(arg, cfg, seq_len, seed) -> Corpus
SOURCES: dict[str, str] = {
    "oracle": "seqgan.datasets.oracle_data",
    "text": "seqgan.datasets.text",
    "music21": "seqgan.datasets.music",
    "abc": "seqgan.datasets.music",
    "music-folder": "seqgan.datasets.music",
    "music-file": "seqgan.datasets.music",
}

# vocabulary kind -> "module:function" turning (vocab, tokens (N, T)) into printable lines
FORMATTERS: dict[str, str] = {
    "ids": "seqgan.datasets:format_ids",
    "text": "seqgan.datasets.text:format_lines",
    "music": "seqgan.datasets.music:format_lines",
}

MUSIC_SUFFIXES = {".mid", ".midi", ".xml", ".musicxml", ".mxl"}


def resolve_spec(spec: str) -> tuple[str, str]:
    """Map a data spec to ``(source name, argument)``; raise a clear error if unusable."""
    if not spec or not spec.strip():
        raise UserError(f"empty data spec; use one of: {SPEC_HELP}")
    if spec == "oracle":
        return "oracle", ""
    if spec.startswith("oracle:"):
        if not spec[len("oracle:"):].strip():
            raise UserError(f"data spec {spec!r} needs a path to oracle parameters "
                            f"(oracle:PATH.npz); use 'oracle' for a random oracle")
        return "oracle", spec[len("oracle:"):]
    if spec.startswith("music21:"):
        return "music21", spec[len("music21:"):]
    path = Path(spec)
    if path.is_dir():
        return "music-folder", spec
    if path.is_file():
        suffixes = {s.lower() for s in path.suffixes}
        if ".abc" in suffixes:
            return "abc", spec
        if path.suffix.lower() in MUSIC_SUFFIXES:
            return "music-file", spec
        return "text", spec
    if path.exists():
        raise UserError(f"data {spec!r} is neither a file nor a folder")
    raise UserError(f"data {spec!r}: no such file or folder; data can be {SPEC_HELP}")


def _import(target: str) -> Any:
    module, _, attr = target.partition(":")
    mod = importlib.import_module(module)
    return getattr(mod, attr) if attr else mod


def default_options(source: str) -> dict[str, Any]:
    """The option defaults of a data source (its module's ``DEFAULT_OPTIONS``)."""
    return dict(_import(SOURCES[source]).DEFAULT_OPTIONS)


def load_corpus(spec: str, cfg: Any = None, seq_len: int | None = None, seed: int = 0) -> Corpus:
    """Load the data named by ``spec`` (``cfg`` is a :class:`seqgan.datasets.config.DataConfig`)."""
    from seqgan.datasets.config import DataConfig

    cfg = cfg or DataConfig(spec=spec)
    source, arg = resolve_spec(spec)
    module = _import(SOURCES[source])
    corpus = module.load(source, arg, cfg, seq_len, seed)
    if corpus.train.numel() == 0:
        raise UserError(f"data {spec!r} yielded no sequences")
    return corpus


def format_samples(vocab: Vocabulary, tokens: torch.Tensor) -> list[str]:
    """Printable lines for a batch of sequences (N, T): words, note names or ids."""
    fn: Callable = _import(FORMATTERS[vocab.kind])
    return fn(vocab, tokens)


def format_ids(vocab: Vocabulary, tokens: torch.Tensor) -> list[str]:
    """One line per sequence of ``tokens`` (N, T): its T ids, space-separated."""
    return [" ".join(str(int(t)) for t in row) for row in tokens.tolist()]
