"""seqgan.metrics.bleu equals nltk's sentence_bleu (method 1) exactly, and self-BLEU its brute force."""
from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
import torch
from seqgan.metrics.bleu import BleuReference, corpus_bleu_scores, eos_lengths, self_bleu_scores
from seqgan.metrics.diversity import distinct_n, percent_unique
from seqgan.errors import UserError

DATA = Path(__file__).parents[1].parent / "shared" / "data"
COCO = DATA / "image_coco"
TOL = 1e-12


def nltk_bleu(refs, hyp, n):
    # imported here so that the GPU test also runs where nltk is missing
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    return float(sentence_bleu(refs, hyp, weights=(1 / n,) * n,
                               smoothing_function=SmoothingFunction().method1))


def rand_sent(rng, vocab, lo, hi):
    return [rng.choice(vocab) for _ in range(rng.randint(lo, hi))]


CASES = {
    "empty-hyp": ([["a", "b", "c"], ["a"]], []),
    "one-word-match": ([["a", "b", "c", "d"]], ["a"]),
    "no-unigram-match": ([["a", "b", "c"]], ["x", "y", "z"]),
    "shorter-than-n": ([["a", "b", "c", "d", "e", "f"]], ["a", "b"]),
    "repeated-ngrams": ([["the", "cat", "the", "mat"], ["the", "the", "dog"]],
                        ["the", "the", "the", "the", "the", "the", "the"]),
    "length-tie-goes-short": ([["a"] * 4, ["b"] * 6], ["a", "a", "b", "b", "c"]),
    "longer-than-refs": ([["a", "b"], ["a", "b", "c"]], ["a", "b", "c", "a", "b", "c", "d"]),
    "exact-copy": ([["a", "b", "c", "d", "e", "f"], ["x"]], ["a", "b", "c", "d", "e", "f"]),
    "empty-reference": ([[], ["a", "b"]], ["a", "b", "a"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_edge_cases_equal_nltk(name, n):
    refs, hyp = CASES[name]
    assert abs(BleuReference(refs, 5).sentence_bleu(hyp, n) - nltk_bleu(refs, hyp, n)) <= TOL


def test_random_small_vocab_equals_nltk():
    rng = random.Random(0)
    for trial in range(25):
        vocab = list("abcdefghijklmnopqrst"[: rng.choice([2, 3, 5, 20])])
        refs = [rand_sent(rng, vocab, 0, 12) for _ in range(rng.randint(1, 8))]
        hyps = [rand_sent(rng, vocab, 0, 12) for _ in range(12)]
        ref = BleuReference(refs, 5)
        got = ref.scores(hyps, (1, 2, 3, 4, 5))
        for n in range(1, 6):
            for h, g in zip(hyps, got[n]):
                assert abs(g - nltk_bleu(refs, h, n)) <= TOL, (trial, n, h, refs)


def test_integer_tokens_and_known_value():
    # hand value: hyp "a b c d", one ref "a b c e": p1 = 3/4, p2 = 2/3, BP = 1
    ref = BleuReference([[1, 2, 3, 5]], 2)
    assert ref.sentence_bleu([1, 2, 3, 4], 2) == pytest.approx(math.sqrt(3 / 4 * 2 / 3), abs=1e-15)


def test_corpus_bleu_scores_is_the_mean():
    rng = random.Random(1)
    vocab = list("abcdef")
    refs = [rand_sent(rng, vocab, 3, 9) for _ in range(10)]
    hyps = [rand_sent(rng, vocab, 0, 9) for _ in range(10)]
    got = corpus_bleu_scores(hyps, refs, ns=(2, 3))
    assert set(got) == {"bleu-2", "bleu-3"}
    for n in (2, 3):
        want = math.fsum(nltk_bleu(refs, h, n) for h in hyps) / len(hyps)
        assert abs(got[f"bleu-{n}"] - want) <= TOL


def test_self_bleu_equals_brute_force():
    rng = random.Random(2)
    vocab = list("abcdefg")
    hyps = [rand_sent(rng, vocab, 1, 10) for _ in range(26)]
    hyps += [hyps[0], list(hyps[3]), [], ["a"] * 17]  # duplicates, empty, a unique length
    got = self_bleu_scores(hyps)
    for n in (2, 3, 4, 5):
        per = [nltk_bleu(hyps[:i] + hyps[i + 1:], h, n) for i, h in enumerate(hyps)]
        assert abs(got[f"self-bleu-{n}"] - math.fsum(per) / len(per)) <= TOL


def test_self_bleu_two_sentences():
    hyps = [["a", "b", "c"], ["a", "b", "d", "e"]]
    got = self_bleu_scores(hyps, ns=(2,))
    want = (nltk_bleu([hyps[1]], hyps[0], 2) + nltk_bleu([hyps[0]], hyps[1], 2)) / 2
    assert abs(got["self-bleu-2"] - want) <= TOL


def test_score_tensor_equals_sentence_bleu():
    rng = random.Random(3)
    for V, T in [(3, 6), (10, 12), (50, 3)]:
        refs = [[rng.randrange(V) for _ in range(rng.randint(0, 10))] for _ in range(15)]
        ref = BleuReference(refs, 5)
        R = 40
        tokens = torch.randint(0, V + 3, (R, T), generator=torch.Generator().manual_seed(V))  # ids unseen in refs too
        lengths = torch.randint(0, T + 1, (R,), generator=torch.Generator().manual_seed(T))
        for n in range(1, 6):
            got = ref.score_tensor(tokens, lengths, n)
            assert got.shape == (R,) and got.dtype == torch.float64
            want = [ref.sentence_bleu(row[:L], n) for row, L in zip(tokens.tolist(), lengths.tolist())]
            assert torch.allclose(got, torch.tensor(want, dtype=torch.float64), atol=1e-12, rtol=0)


def test_eos_lengths():
    tokens = torch.tensor([[5, 6, 2, 0], [5, 2, 2, 0], [5, 6, 7, 8], [2, 0, 0, 0]])
    assert eos_lengths(tokens, eos=2).tolist() == [2, 1, 4, 0]


def test_distinct_and_unique_hand_values():
    hyps = [["a", "b", "a", "b"], ["a", "b"]]
    assert distinct_n(hyps, 1) == pytest.approx(2 / 6)
    assert distinct_n(hyps, 2) == pytest.approx(2 / 4)  # ab, ba, ab | ab
    assert distinct_n(hyps, 5) == 0.0  # no 5-gram at all
    assert distinct_n([], 1) == 0.0
    assert percent_unique([["a"], ["a"], ["b"], []]) == pytest.approx(75.0)
    assert percent_unique([]) == 0.0


def test_degenerate_inputs_raise():
    with pytest.raises(UserError):
        BleuReference([], 4)
    with pytest.raises(UserError):
        self_bleu_scores([["a"]])
    with pytest.raises(UserError):
        corpus_bleu_scores([], [["a"]])
    with pytest.raises(UserError):
        BleuReference([["a"]], 2).sentence_bleu(["a"], 3)


@pytest.mark.skipif(not COCO.is_dir(), reason=f"{COCO} not present (shared data folder absent)")
def test_coco_sample_equals_nltk():
    train = (COCO / "train.txt").read_text(encoding="utf-8").splitlines()
    test = (COCO / "test.txt").read_text(encoding="utf-8").splitlines()
    refs = [s.split() for s in train[:300]]
    hyps = [s.split() for s in test[:25]]
    ref = BleuReference(refs, 5)
    got = ref.scores(hyps, (2, 3, 4, 5))
    for n in (2, 3, 4, 5):
        for h, g in zip(hyps, got[n]):
            assert abs(g - nltk_bleu(refs, h, n)) <= TOL
    # the tensor version on the same data as ids
    words = {w: i for i, w in enumerate(sorted({w for s in refs + hyps for w in s}))}
    ids = BleuReference([[words[w] for w in s] for s in refs], 5)
    T = max(len(h) for h in hyps)
    tokens = torch.tensor([[words[w] for w in h] + [0] * (T - len(h)) for h in hyps])
    lengths = torch.tensor([len(h) for h in hyps])
    assert torch.allclose(ids.score_tensor(tokens, lengths, 4),
                          torch.tensor(got[4], dtype=torch.float64), atol=1e-12, rtol=0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_score_tensor_cuda_equals_cpu():
    rng = random.Random(4)
    refs = [[rng.randrange(30) for _ in range(rng.randint(0, 12))] for _ in range(50)]
    ref = BleuReference(refs, 5)
    tokens = torch.randint(0, 33, (64, 12), generator=torch.Generator().manual_seed(4))
    lengths = torch.randint(0, 13, (64,), generator=torch.Generator().manual_seed(5))
    for n in (2, 4, 5):
        cpu = ref.score_tensor(tokens, lengths, n)
        gpu = ref.score_tensor(tokens.cuda(), lengths.cuda(), n)
        assert gpu.device.type == "cuda"
        assert torch.allclose(gpu.cpu(), cpu, atol=1e-12, rtol=0)


def test_clipped_sum_sync_free_path_equals_masked_path():
    from seqgan.metrics.bleu import _TensorTables

    g = torch.Generator().manual_seed(6)
    dense = torch.randint(-1, 7, (50, 9), generator=g)  # -1: slots without a reference n-gram
    maxc = torch.randint(0, 3, (7,), generator=g)
    a = _TensorTables._clipped_sum(dense, 7, maxc, sync_free=False)
    b = _TensorTables._clipped_sum(dense, 7, maxc, sync_free=True)
    want = [sum(min(row.count(d), int(maxc[d])) for d in set(row) if d >= 0) for row in dense.tolist()]
    assert a.tolist() == want and b.tolist() == want
