"""BLEU modes (seqgan.metrics.bleu_modes): nltk and Texygen semantics against straightforward
reference implementations on tiny files with blank lines, and the truncation warning."""
from __future__ import annotations

import math

import pytest
import torch
from helpers import invoke as _invoke

from seqgan.errors import UserError
from seqgan.metrics.bleu_modes import (BLANK_LINE_EXAMPLE, FAST_REFERENCES, bleu_references,
                                       check_bleu_mode, punkt_available, read_texygen_references,
                                       truncation_warning)

TOL = 1e-12


def invoke(*args):
    return _invoke(*args, catch=False)


def sentence_bleu(refs, hyp, n):
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    return float(sentence_bleu(refs, hyp, weights=(1 / n,) * n,
                               smoothing_function=SmoothingFunction().method1))


def word_tokenize(line):
    from nltk.tokenize import word_tokenize

    return word_tokenize(line, preserve_line=not punkt_available())


def texygen_bleu(ref_path, hyp_lines, n, fast=False):
    """Texygen's Bleu.get_score written out plainly: every line of the file (Python's text
    mode) word_tokenize'd, blank ones kept, the first 500 when fast; the mean of nltk's
    sentence_bleu with uniform weights and method-1 smoothing."""
    with open(ref_path) as f:
        refs = [word_tokenize(line) for line in f]
    if fast:
        refs = refs[:500]
    scores = [sentence_bleu(refs, word_tokenize(h), n) for h in hyp_lines]
    return sum(scores) / len(scores)


class WordVocab:
    """The parts of a text vocabulary BLEU reads."""

    def __init__(self, unk=None):
        self.meta = {"tokenizer": "whitespace", "lowercase": False}
        self.tokens = ["<pad>", "<bos>", "<eos>", "<unk>"]
        self.unk, self.eos = unk, 2


def write(tmp_path, name, text, newline=""):
    p = tmp_path / name
    with open(p, "w", newline=newline) as f:
        f.write(text)
    return p


REFS = ("the cat sat on the mat .\n\nthe dog sat on a log .\n   \n"
        "a cat and a dog\r\nthe end of it all is near\n\n")
HYPS = ["the cat sat", "a dog", "cat", "the dog sat on the mat .", "", "the end , it's near .",
        "dog log mat cat", "the the the"]


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_texygen_mode_equals_texygen_reference(tmp_path, n):
    path = write(tmp_path, "refs.txt", REFS)
    refs = read_texygen_references(path)
    assert len(refs.sentences) == 7 and refs.blank == 3  # "\n", "   \n" and the last "\n"
    got = refs.bleu_scores([h.split() for h in HYPS], (n,))[f"bleu-{n}"]
    assert abs(got - texygen_bleu(path, HYPS, n)) <= TOL


def test_nltk_mode_skips_blank_lines(tmp_path):
    path = write(tmp_path, "refs.txt", REFS)
    refs = bleu_references("nltk", path, WordVocab(), {}, None, print)
    assert refs == [line.split() for line in REFS.splitlines() if line.strip()]
    from seqgan.metrics.bleu import corpus_bleu_scores

    got = corpus_bleu_scores([h.split() for h in HYPS], refs, (2,))["bleu-2"]
    want = math.fsum(sentence_bleu(refs, h.split(), 2) for h in HYPS) / len(HYPS)
    assert abs(got - want) <= TOL


def test_a_blank_line_moves_short_hypotheses_from_0_39_to_0_03(tmp_path):
    ex = BLANK_LINE_EXAMPLE
    path = write(tmp_path, "refs.txt", ex["references"])
    hyps = [h.split() for h in ex["hypotheses"]]
    texygen = read_texygen_references(path).bleu_scores(hyps, (2,))["bleu-2"]
    nltk_refs = bleu_references("nltk", path, WordVocab(), {}, None, print)
    from seqgan.metrics.bleu import corpus_bleu_scores

    nltk = corpus_bleu_scores(hyps, nltk_refs, (2,))["bleu-2"]
    assert texygen == pytest.approx(ex["bleu-2"]["texygen"], abs=1e-6)
    assert nltk == pytest.approx(ex["bleu-2"]["nltk"], abs=1e-6)
    assert round(texygen, 2) == 0.39 and round(nltk, 2) == 0.03
    assert abs(texygen - texygen_bleu(path, ex["hypotheses"], 2)) <= TOL
    # skipped blank lines: BP = exp(1 - 7/2) on every hypothesis
    assert nltk == pytest.approx(texygen * math.exp(1 - 7 / 2), abs=1e-12)


def test_texygen_fast_uses_the_first_500_lines(tmp_path):
    lines = [f"w{i % 40} x{i % 7} y" if i % 50 else "" for i in range(FAST_REFERENCES)]
    lines += ["only in the tail of the file"] * 3
    path = write(tmp_path, "refs.txt", "\n".join(lines) + "\n")
    hyps = ["only in the tail", "w3 x3 y", "y"]
    full, fast = read_texygen_references(path), read_texygen_references(path, fast=True)
    assert len(fast.used) == FAST_REFERENCES and fast.blank == 10 and len(full.used) == 503
    for n in (2, 4):
        got_fast = fast.bleu_scores([h.split() for h in hyps], (n,))[f"bleu-{n}"]
        got_full = full.bleu_scores([h.split() for h in hyps], (n,))[f"bleu-{n}"]
        assert abs(got_fast - texygen_bleu(path, hyps, n, fast=True)) <= TOL
        assert abs(got_full - texygen_bleu(path, hyps, n)) <= TOL
        assert got_fast < got_full


def test_texygen_mode_retokenises_hypotheses_and_never_matches_unk(tmp_path):
    path = write(tmp_path, "refs.txt", "a bicycle with a clock as the front wheel.\n<unk> sat\n")
    refs = read_texygen_references(path)
    assert refs.sentences[0][-2:] == ("wheel", ".")
    # a whitespace-tokenised sample "wheel." is split as Texygen splits its sample file
    assert refs.hypothesis_tokens(["the", "front", "wheel."]) == ["the", "front", "wheel", "."]
    toks = refs.hypothesis_tokens(["<unk>", "sat"], unk="<unk>")
    assert len(toks) == 2 and toks[1] == "sat" and toks[0] not in {t for s in refs.sentences for t in s}


def test_modes_checked_and_texygen_needs_a_file(tmp_path):
    assert check_bleu_mode("texygen-fast") == "texygen-fast"
    with pytest.raises(UserError, match="nltk, texygen, texygen-fast"):
        check_bleu_mode("sacrebleu")
    with pytest.raises(UserError, match="pass --references FILE"):
        bleu_references("texygen", None, WordVocab(), {"test_path": str(tmp_path / "gone.txt")}, None, print)
    assert bleu_references("texygen", None, WordVocab(), {}, None, print, scored=False) is None
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes(b"caf\xe9 au lait\n")
    with pytest.raises(UserError, match="not UTF-8"):
        read_texygen_references(latin1)


def test_truncation_warning_counts_cut_sentences():
    test = torch.tensor([[5, 6, 2, 0], [5, 6, 7, 2], [5, 2, 0, 0]])  # (M=3, T=4), EOS = 2
    msg = truncation_warning({"test_cut": 1}, test, 2)
    assert msg.startswith("warning: ") and "1 of 3 test sentences" in msg and "T-1 = 3" in msg
    assert "--references FILE" in msg and "\n" not in msg
    assert truncation_warning({"test_cut": 0}, test, 2) is None
    assert "up to 1 of 3" in truncation_warning({}, test, 2)  # an old run: rows that fill T-1 words
    assert truncation_warning({}, None, 2) is None


def test_evaluate_warns_about_cut_references_and_reads_texygen_files(tmp_path):
    train = tmp_path / "train.txt"
    train.write_text("".join(f"the {['red', 'blue'][i % 2]} boat sails\n" for i in range(40)))
    test = tmp_path / "test.txt"
    long = "the red boat sails on the blue sea far away from home"  # 12 words, cut to T-1
    test.write_text(f"the red boat sails\n\n{long}\n{long}\n")
    run = tmp_path / "t"
    r = invoke("pretrain", "--data", train, "--test", test, "--preset", "quick", "--out", run,
               "--epochs", "1", "--device", "cpu", "--seq-len", "6")
    assert r.exit_code == 0, r.output
    r = invoke("evaluate", run, "--metrics", "bleu", "-n", "8", "--device", "cpu")
    assert r.exit_code == 0, r.output
    warn = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    assert len(warn) == 1 and "2 of 3 test sentences are longer than T-1 = 5 words" in warn[0]
    r = invoke("evaluate", run, "--metrics", "bleu", "-n", "8", "--references", test, "--device", "cpu")
    assert r.exit_code == 0 and "warning:" not in r.stderr
    r = invoke("evaluate", run, "--metrics", "bleu", "-n", "8", "--bleu-mode", "texygen", "--device", "cpu")
    assert r.exit_code == 0 and "warning:" not in r.stderr and "bleu-2" in r.stdout, r.output
    r = invoke("evaluate", run, "--metrics", "bleu", "--bleu-mode", "bleurt")
    assert r.exit_code == 2 and "bleurt" in r.output
