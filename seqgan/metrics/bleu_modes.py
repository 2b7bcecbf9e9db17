"""How BLEU reads its references: ``seqgan evaluate --bleu-mode nltk|texygen|texygen-fast``.

All modes score the same number, the mean over hypotheses of nltk's
``sentence_bleu(references, hyp, (1/n,)*n, SmoothingFunction().method1)`` with every
reference sentence as a reference of every hypothesis, computed exactly by
:class:`seqgan.metrics.bleu.BleuReference`. They differ in *which* references and tokens:

``nltk`` (default)
    ``--references FILE``: its non-blank lines, stripped, tokenised as the run's data was
    (its ``tokenizer`` and ``lowercase``); blank lines are **skipped**. Without a file: the
    run's tokenised test set, where an unknown word never matches, and every sentence is
    **cut to the run's length** (T-1 words, the rest of a longer one lost; ``evaluate``
    warns with the count: :func:`truncation_warning`). Hypotheses: the decoded samples.
``texygen``
    Texygen's ``utils/metrics/Bleu.py`` (geek-ai/Texygen), ``get_score(is_fast=False)``:
    every line of the reference file is a reference, a **blank line kept** as an empty
    reference, each line and each hypothesis (the sample's tokens joined by spaces, as
    Texygen writes its samples) tokenised with nltk's ``word_tokenize``. An empty reference
    has length 0, so it is the closest reference length of a hypothesis shorter than half
    the shortest real reference, whose brevity penalty ``exp(1 - r/c)`` then becomes 1:
    short hypotheses score far higher than against the same file without blank lines
    (:data:`BLANK_LINE_EXAMPLE`). Without ``--references`` the run's untruncated test file
    (recorded when the run was created) is read.
``texygen-fast``
    The same against the first 500 lines of the file only (blank ones included), file
    order: Texygen's ``get_bleu_fast``, which its training loop uses (``Gan.evaluate`` calls
    ``get_score()``, whose default is ``is_fast=True``).

``word_tokenize`` splits a line into sentences with nltk's punkt model first; punkt's data is
a separate download, and where it is missing the line is tokenised as one sentence
(``preserve_line=True``), which differs only on lines with a sentence end inside them (on
image_coco: 6 of train.txt's and 2 of test.txt's lines have a "word. word").
nltk is imported only when a Texygen mode is used.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from seqgan.errors import UserError

__all__ = ["BLEU_MODES", "FAST_REFERENCES", "TexygenReferences", "check_bleu_mode",
           "texygen_tokenize", "read_texygen_references", "punkt_available", "truncation_warning",
           "bleu_references", "BLANK_LINE_EXAMPLE", "BLEU_MODE_HELP"]

BLEU_MODES = ("nltk", "texygen", "texygen-fast")
FAST_REFERENCES = 500  # Texygen's Bleu.sample_size: get_bleu_fast scores against reference[0:500]
NO_MATCH = "\x00unknown"  # a sampled unknown word: one token that no reference word equals

BLEU_MODE_HELP = (
    "How BLEU reads references. nltk: the non-blank lines of --references (blank lines "
    "skipped), tokenised like the run's data, or else the run's tokenised test set cut to T-1 "
    "words (a warning gives the count). texygen: Texygen's Bleu.py: every line of --references "
    "(default: the run's untruncated test file) is a reference, blank lines kept as empty "
    "references; lines and samples tokenised with nltk's word_tokenize. texygen-fast: the same "
    "against the first 500 lines (Texygen's default is_fast=True).")

# A tiny file where the blank line decides: hypotheses of two words against references of
# seven and eight words and a blank line. Skipped (nltk), the closest reference length of
# every hypothesis is 7 and BP = exp(1 - 7/2) = 0.082; kept (texygen), it is 0 and BP = 1.
BLANK_LINE_EXAMPLE = {
    "references": "the cat sat on the red mat\n\na dog ran in the big green park\n",
    "hypotheses": ["the cat", "big cat", "dog mat", "the park", "red dog", "cat food", "green tea"],
    "bleu-2": {"nltk": 0.031804, "texygen": 0.387446},
}


def check_bleu_mode(mode: Any) -> str:
    """``mode`` if it is one of :data:`BLEU_MODES`, else a UserError listing them."""
    if mode not in BLEU_MODES:
        raise UserError(f"--bleu-mode must be one of {', '.join(BLEU_MODES)}; got {mode!r}")
    return mode


@lru_cache(maxsize=1)
def punkt_available() -> bool:
    """Whether nltk's punkt sentence model is installed (``word_tokenize`` needs it)."""
    from nltk.tokenize import word_tokenize

    try:
        word_tokenize("A test. Another one.")
    except LookupError:
        return False
    return True


@lru_cache(maxsize=1)
def _word_tokenize() -> Callable[[str], list[str]]:
    from nltk.tokenize import word_tokenize

    if punkt_available():
        return word_tokenize
    return lambda line: word_tokenize(line, preserve_line=True)


def texygen_tokenize(line: str) -> list[str]:
    """Texygen's tokens of one line: nltk's ``word_tokenize`` (one sentence where punkt's data
    is missing); a blank line gives ``[]``."""
    return _word_tokenize()(line)


def _lines(path: str | Path) -> list[str]:
    """Every line of a UTF-8 file as Python's text mode yields them (universal newlines: ``\\n``,
    ``\\r\\n``, ``\\r``), blank lines included; a UserError for an unreadable, empty or
    undecodable file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read reference file {str(path)!r}: {e.strerror or e}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UserError(f"reference file {str(path)!r} is not UTF-8 (byte {e.start}); "
                        f"give a UTF-8 text file with one sentence a line") from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if lines and lines[-1] == "":  # the newline that ends the last line
        lines.pop()
    if not lines:
        raise UserError(f"reference file {str(path)!r} is empty; give one sentence a line")
    return lines


@dataclass(frozen=True)
class TexygenReferences:
    """References read the way Texygen's ``Bleu`` reads them, and its scoring convention.

    ``sentences`` holds one token tuple per line of the file, blank lines as ``()``; with
    ``fast`` only the first :data:`FAST_REFERENCES` lines are used. ``blank`` counts the
    empty references among those used. :meth:`bleu_scores` tokenises hypotheses as Texygen
    does (tokens joined by spaces, then ``word_tokenize``).
    """

    sentences: tuple[tuple[str, ...], ...]
    fast: bool = False
    source: str = ""

    @property
    def used(self) -> tuple[tuple[str, ...], ...]:
        """The references scored against: all lines, or the first 500 for ``fast``."""
        return self.sentences[:FAST_REFERENCES] if self.fast else self.sentences

    @property
    def blank(self) -> int:
        """Empty references (blank lines) among those used."""
        return sum(1 for s in self.used if not s)

    def hypothesis_tokens(self, hyp: Sequence[str], unk: str | None = None) -> list[str]:
        """A decoded sample as Texygen scores it: joined by spaces, then ``word_tokenize``d;
        the vocabulary's unknown token ``unk`` stays one token that matches nothing."""
        words = [NO_MATCH if w == unk else w for w in hyp]
        return texygen_tokenize(" ".join(words))

    def bleu_scores(self, hyps: Sequence[Sequence[str]], ns: Sequence[int] = (2, 3, 4, 5),
                    unk: str | None = None) -> dict[str, float]:
        """``{"bleu-n": mean sentence BLEU-n}`` of the hypotheses (token lists) against
        :attr:`used`; equal to Texygen's ``get_bleu_parallel`` (or ``get_bleu_fast``)."""
        from seqgan.metrics.bleu import corpus_bleu_scores

        return corpus_bleu_scores([self.hypothesis_tokens(h, unk) for h in hyps], self.used, ns)


def read_texygen_references(path: str | Path, fast: bool = False) -> TexygenReferences:
    """A reference file read as Texygen reads it: every line, blank ones kept, tokenised with
    ``word_tokenize``."""
    lines = _lines(path)
    return TexygenReferences(tuple(tuple(texygen_tokenize(x)) for x in lines), fast, str(path))


def truncation_warning(data_info: dict[str, Any], test: torch.Tensor | None, eos: int | None
                       ) -> str | None:
    """The warning of ``evaluate`` when BLEU's default references (the run's tokenised test
    set) are sentences cut to the run's length; None when none was cut.

    The count is ``test_cut`` of the run's data info (sentences longer than T-1 words when
    the test set was encoded); a run without it counts the rows that fill all T-1 words
    ("up to").
    """
    if test is None or not len(test):
        return None
    T = int(test.shape[1])
    cut = data_info.get("test_cut")
    up_to = ""
    if not isinstance(cut, int):
        if eos is None:
            return None
        cut = int((test[:, T - 1] == eos).sum())  # (M,) rows whose EOS is the last token
        up_to = "up to "
    if cut <= 0:
        return None
    return (f"warning: BLEU's references are this run's test set cut to its length: {up_to}{cut:,} "
            f"of {len(test):,} test sentences are longer than T-1 = {T - 1} words and lost their "
            f"ends; pass --references FILE to score against the untruncated text")


def bleu_references(mode: str, references: str | Path | None, vocab: Any, data_info: dict[str, Any],
                    test: torch.Tensor | None, log: Callable[[str], Any], scored: bool = True
                    ) -> list[list[str]] | TexygenReferences | None:
    """BLEU's references for ``seqgan evaluate`` in ``mode`` (see the module doc).

    ``nltk``: the tokenised non-blank lines of ``references``, or None (the metric then uses
    the run's tokenised test set, and ``log`` gets :func:`truncation_warning` when ``scored``,
    i.e. when the bleu metric is asked for). ``texygen`` / ``texygen-fast``: a
    :class:`TexygenReferences` of ``references`` or, without it, of the run's test file
    (``data_info["test_path"]``); a UserError when there is none to read.
    """
    check_bleu_mode(mode)
    if mode == "nltk":
        if references:
            from seqgan.datasets.text import read_sentences, tokenize

            return [tokenize(s, vocab.meta) for s in read_sentences(references)]
        if scored:
            msg = truncation_warning(data_info, test, getattr(vocab, "eos", None))
            if msg:
                log(msg)
        return None
    if not scored and not references:
        return None
    path = references or data_info.get("test_path")
    if not path or not Path(path).is_file():
        where = f" (this run's test file {path!r} is not there)" if path else ""
        raise UserError(f"--bleu-mode {mode} reads its references from a file, as Texygen does: "
                        f"pass --references FILE{where}")
    if not punkt_available():
        log("note: nltk's punkt data is not installed, so --bleu-mode texygen tokenises each line as "
            "one sentence (Texygen splits sentences first; this differs only on lines with a "
            "sentence end inside)")
    return read_texygen_references(path, fast=mode == "texygen-fast")
