"""Text corpora: a UTF-8 file with one sentence a line becomes (N, T) word ids and back.

Options (``DataConfig.options``; unknown keys are errors):

==================  ============  ===================================================
``tokenizer``       whitespace    ``whitespace`` (``str.split``), ``treebank``, ``toktok``
                                  or ``wordpunct`` -- nltk's tokenizers that need no data
                                  download. Texygen splits COCO with nltk's
                                  ``word_tokenize`` (Treebank rules after punkt);
                                  ``treebank`` is the closest: on image_coco/train.txt
                                  4,685 words, at most 37 a caption, T = 38
                                  (``whitespace``: 6,094 words, 35, T = 36).
``lowercase``       false         ``true``: lower-case every line before tokenising
                                  (only ``true`` or ``false``)
``min_freq``        1             words seen fewer times become UNK (an integer >= 1)
``max_vocab``       null          keep at most this many words, specials not counted
                                  (an integer >= 1, or null: no limit)
``len_percentile``  100           without a given length, T = (this percentile of the
                                  sentence lengths in words) + 1 for EOS ... (a number
                                  in (0, 100])
``max_len``         48            ... but at most this (an integer >= 2)
==================  ============  ===================================================

Values are checked by :func:`seqgan.datasets.options.check_options`: a wrong type or a
value out of range is a :class:`UserError` naming the option.

The sequence length T is ``seq_len`` (argument) or ``DataConfig.seq_len`` when given, else
chosen from the data as above. The vocabulary is PAD=0, BOS=1, EOS=2, UNK=3, then the words
by descending frequency, ties in order of first appearance. A sentence becomes its word ids,
then EOS, then PAD up to T. A sentence of T words or more is *cut* to its first T-1 words
and still ends with EOS, so every sequence terminates. Generation starts from BOS.

Lines that are not valid UTF-8 are skipped and counted; blank lines are skipped and counted;
``Corpus.info`` reports ``lines``, ``sentences``, ``skipped_undecodable``, ``empty``,
``cut``, ``unk_rate`` (and the same with a ``test_`` prefix for ``DataConfig.test_spec``,
a second text file encoded with the training vocabulary).
"""
from __future__ import annotations

import math
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch

from seqgan.datasets import Corpus
from seqgan.datasets.options import boolean, check_options, choice, integer, number
from seqgan.datasets.vocab import Vocabulary
from seqgan.errors import UserError

__all__ = ["load", "format_lines", "read_sentences", "encode_sentences", "tokenize",
           "build_vocab", "choose_seq_len", "TOKENIZERS", "SPECIALS", "DEFAULT_OPTIONS"]

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)  # ids 0, 1, 2, 3

DEFAULT_OPTIONS: dict[str, Any] = {
    "tokenizer": "whitespace",
    "lowercase": False,
    "min_freq": 1,
    "max_vocab": None,
    "len_percentile": 100.0,
    "max_len": 48,
}


# --------------------------------------------------------------------------------------
# tokenizers: name -> (tokenize, detokenize), built lazily, nltk's data-free ones only
# --------------------------------------------------------------------------------------
def _treebank_detok() -> Callable[[list[str]], str]:
    from nltk.tokenize.treebank import TreebankWordDetokenizer

    return TreebankWordDetokenizer().detokenize


def _whitespace():
    return str.split, " ".join


def _treebank():
    from nltk.tokenize import TreebankWordTokenizer

    return TreebankWordTokenizer().tokenize, _treebank_detok()


def _toktok():
    from nltk.tokenize import ToktokTokenizer

    # nltk has no toktok detokenizer; Treebank's is the closest (approximate for "isn ' t")
    return ToktokTokenizer().tokenize, _treebank_detok()


def _wordpunct():
    from nltk.tokenize import WordPunctTokenizer

    # word-punct splitting loses where spaces were; Treebank's detokenizer is a best effort
    return WordPunctTokenizer().tokenize, _treebank_detok()


TOKENIZERS: dict[str, Callable[[], tuple[Callable, Callable]]] = {
    "whitespace": _whitespace,
    "treebank": _treebank,
    "toktok": _toktok,
    "wordpunct": _wordpunct,
}


def _get_tokenizer(name: Any) -> tuple[Callable[[str], list[str]], Callable[[list[str]], str]]:
    if not isinstance(name, str) or name not in TOKENIZERS:  # a list is not even hashable
        raise UserError(f"unknown tokenizer {name!r}; choose one of: {', '.join(TOKENIZERS)}")
    return _build_tokenizer(name)


@lru_cache(maxsize=None)
def _build_tokenizer(name: str) -> tuple[Callable[[str], list[str]], Callable[[list[str]], str]]:
    return TOKENIZERS[name]()


def tokenize(line: str, vocab_meta: Mapping[str, Any] | Vocabulary) -> list[str]:
    """Tokens of one line as a text vocabulary saw them (its ``tokenizer`` and ``lowercase``)."""
    meta = vocab_meta.meta if isinstance(vocab_meta, Vocabulary) else vocab_meta
    if meta.get("lowercase"):
        line = line.lower()
    return _get_tokenizer(meta.get("tokenizer", "whitespace"))[0](line)


# --------------------------------------------------------------------------------------
# reading files
# --------------------------------------------------------------------------------------
def _read_lines(path: str | Path) -> tuple[list[str], dict[str, int]]:
    """Non-blank, stripped, decodable lines of a UTF-8 file and counts of what was skipped."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read text file {str(path)!r}: {e.strerror or e}") from None
    if not data:
        raise UserError(f"text file {str(path)!r} is empty; give a UTF-8 file with one sentence a line")
    if b"\x00" in data:
        raise UserError(f"{str(path)!r} looks binary (it has NUL bytes; UTF-16?); "
                        "give a UTF-8 text file with one sentence a line")
    if data.startswith(b"\xef\xbb\xbf"):  # UTF-8 byte-order mark
        data = data[3:]
    raw = data.split(b"\n")
    if raw and raw[-1] == b"":  # the newline that ends the last line
        raw.pop()
    lines: list[str] = []
    undecodable = empty = 0
    for b in raw:
        try:
            s = b.decode("utf-8").strip()
        except UnicodeDecodeError:
            undecodable += 1
            continue
        if s:
            lines.append(s)
        else:
            empty += 1
    if undecodable and undecodable >= len(lines):
        raise UserError(f"{str(path)!r} is not UTF-8 text ({undecodable} of {len(raw)} lines do "
                        "not decode); convert it to UTF-8, one sentence a line")
    if not lines:
        raise UserError(f"text file {str(path)!r} has no sentence (only blank lines); "
                        "give a UTF-8 file with one sentence a line")
    return lines, {"lines": len(raw), "skipped_undecodable": undecodable, "empty": empty}


def read_sentences(path: str | Path) -> list[str]:
    """The sentences (non-blank lines, stripped) of a UTF-8 text file; undecodable lines skipped.

    Raises :class:`UserError` for a missing, empty or binary file.
    """
    return _read_lines(path)[0]


# --------------------------------------------------------------------------------------
# vocabulary and encoding
# --------------------------------------------------------------------------------------
def build_vocab(sentences: Sequence[Sequence[str]], meta: dict[str, Any],
                min_freq: int = 1, max_vocab: int | None = None) -> Vocabulary:
    """Specials, then words seen at least ``min_freq`` times by descending frequency (ties:
    first appearance), at most ``max_vocab`` of them. Words spelled like a special
    (``<unk>`` in PTB) are not added: they map to that special."""
    counts = Counter(w for s in sentences for w in s)  # insertion order = first appearance
    words = [w for w, c in sorted(counts.items(), key=lambda wc: -wc[1])
             if c >= min_freq and w not in SPECIALS]
    if max_vocab is not None:
        words = words[:max_vocab]
    return Vocabulary(list(SPECIALS) + words, kind="text", pad=0, bos=1, eos=2, unk=3, meta=meta)


def _encode(vocab: Vocabulary, sentences: Sequence[Sequence[str]], T: int) -> tuple[torch.Tensor, dict]:
    """(N, T) ids: words[:T-1], EOS, PAD...; with counts of cut sentences and UNK words."""
    if T < 2:
        raise UserError(f"text needs a sequence length of at least 2 (a word and EOS), got {T}")
    rows, cut, unk, words = [], 0, 0, 0
    for s in sentences:
        if len(s) > T - 1:
            cut += 1
            s = s[:T - 1]
        ids = vocab.encode(s)
        unk += ids.count(vocab.unk)
        words += len(ids)
        rows.append(ids + [vocab.eos] + [vocab.pad] * (T - 1 - len(ids)))
    tokens = torch.tensor(rows, dtype=torch.long).reshape(len(rows), T)  # (N, T)
    return tokens, {"cut": cut, "unk_rate": unk / words if words else 0.0}


def encode_sentences(vocab: Vocabulary, sentences: Sequence[str | Sequence[str]],
                     seq_len: int) -> torch.Tensor:
    """Encode sentences (strings, tokenised as the vocabulary was, or token lists) to (N, T).

    Unknown words become UNK; sentences of ``seq_len`` words or more are cut to
    ``seq_len - 1`` words; every row has one EOS.
    """
    toks = [tokenize(s, vocab.meta) if isinstance(s, str) else list(s) for s in sentences]
    return _encode(vocab, toks, seq_len)[0]


def format_lines(vocab: Vocabulary, tokens: torch.Tensor) -> list[str]:
    """Readable sentences of (N, T) ids: cut at EOS, PAD/BOS dropped, detokenised.

    Whitespace-tokenised text is joined with spaces; the nltk tokenizers go through nltk's
    Treebank detokenizer (exact for ``treebank``, approximate for ``toktok``/``wordpunct``).
    """
    name = vocab.meta.get("tokenizer", "whitespace")
    detok = _get_tokenizer(name)[1] if name in TOKENIZERS else " ".join
    return [detok(vocab.decode(row)) for row in tokens.tolist()]


# --------------------------------------------------------------------------------------
# the data source
# --------------------------------------------------------------------------------------
OPTION_CHECKS = {
    "tokenizer": choice(TOKENIZERS),
    "lowercase": boolean(),
    "min_freq": integer(1),
    "max_vocab": integer(1, null=True),
    "len_percentile": number(0, 100, lo_open=True),
    "max_len": integer(2),
}


def _options(cfg: Any) -> dict[str, Any]:
    """``cfg.options`` merged over ``DEFAULT_OPTIONS``, each value checked (see the table above)."""
    return check_options("text", getattr(cfg, "options", None), DEFAULT_OPTIONS, OPTION_CHECKS)


def choose_seq_len(lengths: Sequence[int], percentile: float, max_len: int) -> int:
    """T = (nearest-rank ``percentile`` of sentence lengths in words) + 1, capped at ``max_len``."""
    ordered = sorted(lengths)
    k = max(1, math.ceil(float(percentile) / 100 * len(ordered)))
    return max(2, min(max_len, ordered[k - 1] + 1))


def load(source: str, arg: str, cfg: Any, seq_len: int | None, seed: int) -> Corpus:
    """Read ``arg`` (and ``cfg.test_spec``) into a :class:`Corpus` of (N, T) word ids.

    ``seed`` and ``cfg.n_train``/``cfg.n_test`` are unused: every sentence is kept, in the
    file's order.
    """
    opts = _options(cfg)
    meta = {"tokenizer": opts["tokenizer"], "lowercase": opts["lowercase"],
            "min_freq": opts["min_freq"], "max_vocab": opts["max_vocab"]}
    lines, stats = _read_lines(arg)
    sents = [tokenize(s, meta) for s in lines]
    blank = sum(1 for s in sents if not s)  # e.g. lines of only control characters
    sents = [s for s in sents if s]
    if not sents:
        raise UserError(f"text file {arg!r} has no words; give one sentence a line")
    vocab = build_vocab(sents, meta, opts["min_freq"], opts["max_vocab"])
    if len(vocab) == len(SPECIALS):
        raise UserError(f"{arg}: no word occurs at least min_freq={opts['min_freq']} times; lower "
                        f"min_freq")
    T = seq_len or getattr(cfg, "seq_len", None) or choose_seq_len(
        [len(s) for s in sents], opts["len_percentile"], opts["max_len"])
    train, enc = _encode(vocab, sents, int(T))  # (N, T)
    info: dict[str, Any] = {"source": "text", "path": str(arg), **stats,
                            "empty": stats["empty"] + blank, "sentences": len(sents), **enc,
                            "longest": max(len(s) for s in sents), "seq_len": int(T),
                            "vocab_size": len(vocab), "tokenizer": opts["tokenizer"]}
    test = None
    test_spec = getattr(cfg, "test_spec", None)
    if test_spec:
        if not Path(test_spec).is_file():
            raise UserError(f"test data {test_spec!r}: no such text file")
        tlines, tstats = _read_lines(test_spec)
        tsents = [s for s in (tokenize(x, meta) for x in tlines) if s]
        if not tsents:
            raise UserError(f"test text file {test_spec!r} has no words")
        test, tenc = _encode(vocab, tsents, int(T))  # (M, T)
        info.update({f"test_{k}": v for k, v in {**tstats, **tenc, "sentences": len(tsents)}.items()})
        info["test_path"] = str(test_spec)
    return Corpus(train=train, vocab=vocab, start_token=vocab.bos, test=test, info=info)
