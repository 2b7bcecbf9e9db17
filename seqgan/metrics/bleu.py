"""Exact, fast BLEU and self-BLEU, identical to nltk's ``sentence_bleu`` with method-1 smoothing.

Text GANs (SeqGAN, LeakGAN, Texygen, TextGAN-PyTorch) report BLEU-n of a sample as nltk's

    sentence_bleu(references, hypothesis, weights=(1/n,)*n,
                  smoothing_function=SmoothingFunction().method1)

with *all* reference sentences as the references of every hypothesis, averaged over the
hypotheses. nltk re-counts every reference for every hypothesis and every order, which
takes about a second per hypothesis on COCO (10,000 references). Here the references are
counted once:

* clipping against a set of references only needs, for each n-gram, its largest count in
  any one reference (``max_counts``), a dict built once per order;
* the brevity penalty only needs the sorted set of reference lengths;
* the precisions p_1..p_5 of a hypothesis are computed once and shared by BLEU-2..5.

Definitions (Papineni et al. 2002, ACL; smoothing: Chen & Cherry 2014, WMT, method 1)::

    m_k  = sum_g min(count_hyp(g), max_r count_r(g))      over k-grams g of the hypothesis
    d_k  = max(1, len(hyp) - k + 1)
    p_k  = m_k / d_k            if m_k > 0
         = 0.1 / d_k            if m_k = 0                (method 1, epsilon = 0.1)
    r    = the reference length closest to c = len(hyp); ties go to the shorter one
    BP   = 1 if c > r else exp(1 - r / c)
    BLEU-n = BP * exp(sum_{k=1..n} (1/n) * log p_k)        in [0, 1]
    BLEU-n = 0                  if m_1 = 0 (no unigram matches; includes the empty hypothesis)

The float operations are the ones nltk performs, in the same order (``math.log`` of the
correctly rounded quotient, ``math.fsum`` of the weighted logs), so the results are
bit-for-bit those of nltk (tests check to 1e-12).

Self-BLEU (Zhu et al. 2018, Texygen) scores each hypothesis against all the *other*
hypotheses. Excluding a sentence from the references only changes the max count of an
n-gram when that sentence holds the (unique) maximum, so the two largest counts per n-gram
and the multiset of lengths are kept and every hypothesis is scored in the same pass.

:meth:`BleuReference.score_tensor` is a vectorised torch version for token-id references
(a PG-BLEU reward on GPU or CPU). N-grams are encoded exactly, without hashing: an n-gram is
(dense id of its (n-1)-gram prefix among the reference (n-1)-grams) * K_1 + (dense id of its
last token among the reference tokens), so every code fits int64 whatever the vocabulary size
and there are no collisions; n-grams absent from the references get no code and match nothing.
"""
from __future__ import annotations

import math
import numbers
from bisect import bisect_left
from collections import Counter
from typing import Hashable, Iterable, Sequence

import torch

from seqgan.errors import UserError
from seqgan.metrics.bleu_smoothing import EPSILON, precisions

__all__ = ["BleuReference", "corpus_bleu_scores", "self_bleu", "self_bleu_scores", "eos_lengths"]

Sentence = Sequence[Hashable]


# --------------------------------------------------------------------------------------
# shared scalar pieces
# --------------------------------------------------------------------------------------
def _ngram_counts(tokens: Sequence[Hashable], n: int) -> Counter:
    """Counts of the n-grams (tuples) of a token sequence; empty when shorter than n."""
    if len(tokens) < n:
        return Counter()
    return Counter(zip(*(tokens[i:] for i in range(n))))


def _closest_length(lengths: Sequence[int], h: int) -> int:
    """nltk's ``closest_ref_length``: the length nearest to ``h``, ties to the shorter.

    ``lengths`` is sorted and without duplicates.
    """
    i = bisect_left(lengths, h)
    if i < len(lengths) and lengths[i] == h:
        return h
    lower = lengths[i - 1] if i > 0 else None
    upper = lengths[i] if i < len(lengths) else None
    if lower is None:
        return upper
    if upper is None or h - lower <= upper - h:
        return lower
    return upper


def _bleu(nums: Sequence[int], dens: Sequence[int], hyp_len: int, ref_len: int, n: int) -> float:
    """BLEU-n from the clipped counts ``nums[k-1]`` and n-gram totals ``dens[k-1]``.

    Exactly nltk's float operations: p_k = m_k/d_k or 0.1/d_k, weights 1/n, fsum of logs.
    """
    if nums[0] == 0:
        return 0.0
    w = 1 / n
    s = math.fsum(w * math.log(nums[k] / dens[k] if nums[k] else EPSILON / dens[k])
                  for k in range(n))
    bp = 1 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return bp * math.exp(s)


def _check_ns(ns: Iterable[int], max_n: int | None = None) -> tuple[int, ...]:
    ns = tuple(int(n) for n in ns)
    if not ns or min(ns) < 1:
        raise UserError(f"BLEU orders must be positive integers, got {ns}")
    if max_n is not None and max(ns) > max_n:
        raise UserError(f"BLEU-{max(ns)} asked of a reference built for orders up to {max_n}")
    return ns


def _mean(xs: Sequence[float]) -> float:
    return math.fsum(xs) / len(xs)


# --------------------------------------------------------------------------------------
# BLEU against a fixed reference set
# --------------------------------------------------------------------------------------
class BleuReference:
    """A reference set counted once; scores any number of hypotheses against all of it.

    Parameters
    ----------
    references : list of token sequences (any hashable tokens: words or ids).
    max_n : the largest BLEU order that will be asked for (tables are built for 1..max_n).

    ``sentence_bleu(hyp, n)`` equals ``nltk.translate.bleu_score.sentence_bleu(references,
    hyp, weights=(1/n,)*n, smoothing_function=SmoothingFunction().method1)``.
    """

    def __init__(self, references: Sequence[Sentence], max_n: int = 5):
        if max_n < 1:
            raise UserError(f"max_n must be at least 1, got {max_n}")
        self.references = [tuple(r) for r in references]
        if not self.references:
            raise UserError("BLEU needs at least one reference sentence")
        self.max_n = int(max_n)
        # max_counts[k-1][g] = max over references of count(g), for k-grams g
        self.max_counts: list[dict[tuple, int]] = []
        for k in range(1, self.max_n + 1):
            table: dict[tuple, int] = {}
            get = table.get
            for ref in self.references:
                for g, c in _ngram_counts(ref, k).items():
                    if c > get(g, 0):
                        table[g] = c
            self.max_counts.append(table)
        self.lengths = sorted({len(r) for r in self.references})
        self._tensor_tables: dict[torch.device, _TensorTables] = {}

    # -- scalar API --------------------------------------------------------------------
    def _counts(self, hyp: Sentence, n: int) -> tuple[list[int], list[int]]:
        nums, dens = [], []
        for k in range(1, n + 1):
            counts = _ngram_counts(hyp, k)
            table = self.max_counts[k - 1]
            nums.append(sum(min(c, table.get(g, 0)) for g, c in counts.items()))
            dens.append(max(1, len(hyp) - k + 1))
        return nums, dens

    def sentence_bleu(self, hyp: Sentence, n: int = 4) -> float:
        """BLEU-n of one hypothesis against all references, in [0, 1] (0 for no unigram match)."""
        return self.scores([hyp], (n,))[n][0]

    def bleu(self, hyps: Sequence[Sentence], n: int = 4) -> list[float]:
        """BLEU-n of every hypothesis (a list, one float per hypothesis)."""
        return self.scores(hyps, (n,))[n]

    def scores(self, hyps: Sequence[Sentence], ns: Iterable[int] = (2, 3, 4, 5)) -> dict[int, list[float]]:
        """BLEU-n for each n in ``ns`` and each hypothesis; the precisions are shared."""
        ns = _check_ns(ns, self.max_n)
        top = max(ns)
        out: dict[int, list[float]] = {n: [] for n in ns}
        for hyp in hyps:
            hyp = tuple(hyp)
            nums, dens = self._counts(hyp, top)
            r = _closest_length(self.lengths, len(hyp))
            for n in ns:
                out[n].append(_bleu(nums, dens, len(hyp), r, n))
        return out

    # -- vectorised torch API ----------------------------------------------------------
    def score_tensor(self, tokens: torch.Tensor, lengths: torch.Tensor, n: int = 4,
                     dtype: torch.dtype = torch.float64, smoothing: str = "method1") -> torch.Tensor:
        """BLEU-n of a batch of token-id hypotheses, without a Python loop over rows.

        Parameters
        ----------
        tokens : LongTensor (R, T) of token ids; only ``tokens[r, :lengths[r]]`` is read.
        lengths : LongTensor (R,) hypothesis lengths in 0..T (see :func:`eos_lengths`).
        n : BLEU order, 1..max_n.
        smoothing : nltk's method1 (default), method0 or method2 (:mod:`.bleu_smoothing`).

        Returns a (R,) tensor of ``dtype`` on ``tokens.device`` equal to :meth:`sentence_bleu`
        of each row (to ~1e-15 in float64; the log-sum is a plain sum, not an fsum). The
        references must be integer ids. Codes are exact (no hashing, no collisions). The
        reference tables are built on the first call per device (a few host syncs); later
        calls on a GPU use fixed-shape tensor ops only (no host sync).
        """
        _check_ns((n,), self.max_n)
        if tokens.dim() != 2:
            raise UserError(f"score_tensor expects tokens of shape (R, T), got {tuple(tokens.shape)}")
        dev = tokens.device
        tab = self._tensor_tables.get(dev)
        if tab is None:
            tab = self._tensor_tables[dev] = _TensorTables.build(self.references, self.max_n, dev)
        T = tokens.shape[1]
        tokens = tokens.long()  # (R, T)
        lengths = lengths.to(dev).long().clamp(0, T)  # (R,)
        nums = tab.clipped_counts(tokens, lengths, n)  # (R, n) int64
        ks = torch.arange(1, n + 1, device=dev)
        dens = (lengths[:, None] - ks[None, :] + 1).clamp(min=1)  # (R, n)
        logp = torch.log(precisions(nums, dens, smoothing, dtype))  # (R, n)
        r = tab.closest_length(lengths).to(dtype)  # (R,)
        c = lengths.to(dtype)
        bp = torch.where(c > r, torch.ones_like(c), torch.exp(1 - r / c.clamp(min=1)))
        score = bp * torch.exp(logp.sum(dim=1) / n)  # (R,)
        return torch.where(nums[:, 0] > 0, score, torch.zeros_like(score))


def _unique_counts(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted distinct values of a 1-D tensor and their counts (sort + run boundaries;
    steadier than ``torch.unique`` on CPU, where its speed varies tenfold with the flags)."""
    s = x.sort().values
    n = s.numel()
    flag = torch.ones(n, dtype=torch.bool, device=x.device)
    flag[1:] = s[1:] != s[:-1]
    idx = flag.nonzero().squeeze(1)
    counts = torch.diff(idx, append=torch.full((1,), n, dtype=idx.dtype, device=x.device))
    return s[idx], counts


class _TensorTables:
    """The reference n-grams as sorted exact codes with max counts, on one device.

    uni       (K_1,)  sorted distinct reference token ids; dense id of a token = its index
    codes[k]  (K_k,)  sorted distinct codes of reference k-grams (k >= 2),
                      code = dense(prefix (k-1)-gram) * K_1 + dense(last token)
    maxc[k]   (K_k,)  max count of that k-gram in any one reference
    lens      (L,)    sorted distinct reference lengths
    """

    def __init__(self, uni, codes, maxc, lens):
        self.uni, self.codes, self.maxc, self.lens = uni, codes, maxc, lens

    @staticmethod
    def _lookup(table: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Index of each x in the sorted ``table``, -1 where absent."""
        if table.numel() == 0:
            return torch.full_like(x, -1)
        i = torch.searchsorted(table, x).clamp(max=table.numel() - 1)
        return torch.where(table[i] == x, i, torch.full_like(i, -1))

    @classmethod
    def build(cls, refs: Sequence[tuple], max_n: int, dev: torch.device) -> "_TensorTables":
        """Tables of the references ``refs`` (integer ids, else a UserError) for orders 1..max_n on dev."""
        if not all(isinstance(t, numbers.Integral) for r in refs for t in r):
            raise UserError("score_tensor needs references made of integer token ids")
        R = len(refs)
        T = max(1, max(len(r) for r in refs))
        lengths = torch.tensor([len(r) for r in refs], dtype=torch.long, device=dev)  # (R,)
        flat = torch.tensor([t for r in refs for t in r], dtype=torch.long, device=dev)
        pos = torch.arange(T, device=dev)
        valid1 = pos[None, :] < lengths[:, None]  # (R, T)
        toks = torch.full((R, T), -1, dtype=torch.long, device=dev)
        toks[valid1] = flat  # row-major order of the mask = order of the flat tokens
        uni = _unique_counts(flat)[0]  # (K_1,) sorted
        tab = cls(uni, {}, {}, _unique_counts(lengths)[0])
        dense = torch.where(valid1, cls._lookup(uni, toks), torch.full_like(toks, -1))  # (R, T)
        d1 = dense
        for k in range(1, max_n + 1):
            if k > 1:
                code = tab._codes(dense, d1, k)  # (R, T-k+1), -1 where invalid
                tab.codes[k] = _unique_counts(code[code >= 0])[0]
                dense = torch.where(code >= 0, cls._lookup(tab.codes[k], code), code)
            K = tab.table_size(k)
            tab.maxc[k] = cls._max_counts(dense, K)
        return tab

    def table_size(self, k: int) -> int:
        """K_k: the number of distinct reference k-grams (distinct tokens for k = 1)."""
        return self.uni.numel() if k == 1 else self.codes[k].numel()

    def _codes(self, prev: torch.Tensor, d1: torch.Tensor, k: int) -> torch.Tensor:
        """Codes of k-grams from dense (k-1)-gram ids ``prev`` (R, T-k+2) and token ids d1 (R, T)."""
        a = prev[:, :-1]  # (R, T-k+1) prefix starting at i
        b = d1[:, k - 1:]  # (R, T-k+1) last token at i+k-1
        ok = (a >= 0) & (b >= 0)
        return torch.where(ok, a * self.uni.numel() + b, torch.full_like(a, -1))

    @staticmethod
    def _max_counts(dense: torch.Tensor, K: int) -> torch.Tensor:
        """(K,) the largest count of each dense id within any one row of ``dense`` (R, W)."""
        R = dense.shape[0]
        row = torch.arange(R, device=dense.device)[:, None].expand_as(dense)
        ok = dense >= 0
        keys, cnt = _unique_counts(row[ok] * max(K, 1) + dense[ok])
        out = torch.zeros(K, dtype=torch.long, device=dense.device)
        return out.scatter_reduce_(0, keys % max(K, 1), cnt, reduce="amax")

    @staticmethod
    def _clipped_sum(dense: torch.Tensor, K: int, maxc: torch.Tensor,
                     sync_free: bool = False) -> torch.Tensor:
        """(R,) sum over the distinct ids g of each row of min(count of g in the row, maxc[g]).

        ``sync_free``: fixed shapes only (sort every slot, padding included; run boundaries;
        scatter), so a GPU never waits for the host. Otherwise the valid slots are selected
        first, which is about 3x faster on a CPU where a host sync costs nothing.
        """
        R = dense.shape[0]
        if K == 0 or dense.numel() == 0:
            return torch.zeros(R, dtype=torch.long, device=dense.device)
        row = torch.arange(R, device=dense.device)[:, None]
        if not sync_free:
            ok = dense >= 0
            keys, cnt = _unique_counts((row * K + dense)[ok])
            clipped = torch.minimum(cnt, maxc[keys % K])
            return torch.zeros(R, dtype=torch.long, device=dense.device).index_add_(0, keys // K, clipped)
        key = torch.where(dense >= 0, row * K + dense, torch.full_like(dense, -1)).flatten()
        s = key.sort().values  # (R*W,) invalid (-1) first
        start = torch.ones_like(s, dtype=torch.bool)
        start[1:] = s[1:] != s[:-1]
        run = start.cumsum(0) - 1  # run index of each position
        run_len = torch.zeros_like(s).scatter_add_(0, run, torch.ones_like(s))[run]
        clipped = torch.minimum(run_len, maxc[s.remainder(K)])
        clipped = torch.where(start & (s >= 0), clipped, torch.zeros_like(clipped))
        rows = torch.div(s, K, rounding_mode="floor").clamp(min=0)
        return torch.zeros(R, dtype=torch.long, device=dense.device).index_add_(0, rows, clipped)

    def clipped_counts(self, tokens: torch.Tensor, lengths: torch.Tensor, n: int) -> torch.Tensor:
        """m_k for k = 1..n: clipped n-gram matches of each row, (R, n) int64."""
        T = tokens.shape[1]
        pos = torch.arange(T, device=tokens.device)
        valid = pos[None, :] < lengths[:, None]  # (R, T)
        d1 = torch.where(valid, self._lookup(self.uni, tokens), torch.full_like(tokens, -1))
        dense, out = d1, []
        for k in range(1, n + 1):
            if k > 1:
                code = self._codes(dense, d1, k)  # (R, max(T-k+1, 0))
                dense = torch.where(code >= 0, self._lookup(self.codes[k], code), code)
            out.append(self._clipped_sum(dense, self.table_size(k), self.maxc[k], tokens.is_cuda))
        return torch.stack(out, dim=1)  # (R, n)

    def closest_length(self, h: torch.Tensor) -> torch.Tensor:
        """nltk's closest reference length for each hypothesis length (ties to the shorter)."""
        lens = self.lens  # (L,) sorted
        L = lens.numel()
        i = torch.searchsorted(lens, h)
        upper = lens[i.clamp(max=L - 1)]
        lower = lens[(i - 1).clamp(min=0)]
        has_upper, has_lower = i < L, i > 0
        pick_lower = has_lower & (~has_upper | ((h - lower) <= (upper - h)))
        r = torch.where(pick_lower, lower, upper)
        return torch.where(has_upper & (upper == h), h, r)


def eos_lengths(tokens: torch.Tensor, eos: int | None) -> torch.Tensor:
    """Lengths (R,) of sequences (R, T) cut at their first ``eos`` (T where there is none,
    and for every row when the vocabulary has no EOS)."""
    T = tokens.shape[1]
    if eos is None:
        return torch.full((tokens.shape[0],), T, dtype=torch.long, device=tokens.device)
    is_eos = tokens == eos  # (R, T)
    first = torch.where(is_eos.any(dim=1), is_eos.float().argmax(dim=1), torch.full_like(tokens[:, 0], T))
    return first.long()


# --------------------------------------------------------------------------------------
# corpus-level numbers reported by text-GAN papers
# --------------------------------------------------------------------------------------
def corpus_bleu_scores(hyps: Sequence[Sentence], refs: Sequence[Sentence],
                       ns: Iterable[int] = (2, 3, 4, 5)) -> dict[str, float]:
    """Mean sentence BLEU-n of the hypotheses, each against the whole reference set.

    This is the "BLEU" of Texygen / TextGAN-PyTorch (macro average of nltk ``sentence_bleu``
    with method-1 smoothing), *not* nltk's micro-averaged ``corpus_bleu``. Keys
    ``"bleu-2"``, ... in [0, 1]. Raises :class:`UserError` for no hypotheses or references.
    """
    if not hyps:
        raise UserError("BLEU needs at least one hypothesis")
    ns = _check_ns(ns)
    scores = BleuReference(refs, max(ns)).scores(hyps, ns)
    return {f"bleu-{n}": _mean(scores[n]) for n in ns}


def self_bleu(hyps: Sequence[Sentence], ns: Iterable[int] = (2, 3, 4, 5)) -> dict[int, list[float]]:
    """Per-sentence self-BLEU: BLEU-n of ``hyps[i]`` against ``hyps[:i] + hyps[i+1:]``.

    Returns ``{n: [score of sentence i, ...]}``. Each value equals nltk's
    ``sentence_bleu(hyps[:i] + hyps[i+1:], hyps[i], (1/n,)*n, method1)``. The other
    sentences' max count of an n-gram is the runner-up count where sentence i holds the
    maximum and the maximum otherwise, so two counts per n-gram suffice; the closest other
    length comes from the multiset of lengths. Needs two sentences (:class:`UserError`).
    """
    hyps = [tuple(h) for h in hyps]
    if len(hyps) < 2:
        raise UserError("self-BLEU needs at least two sentences")
    ns = _check_ns(ns)
    top = max(ns)
    counts = [[_ngram_counts(h, k) for h in hyps] for k in range(1, top + 1)]
    top1: list[dict[tuple, int]] = []  # per order: largest count of each n-gram
    top2: list[dict[tuple, int]] = []  # ... and the second largest (0 when absent)
    for k in range(top):
        t1: dict[tuple, int] = {}
        t2: dict[tuple, int] = {}
        for cnt in counts[k]:
            for g, c in cnt.items():
                a = t1.get(g, 0)
                if c > a:
                    t1[g] = c
                    if a:
                        t2[g] = a
                elif c > t2.get(g, 0):
                    t2[g] = c
        top1.append(t1)
        top2.append(t2)
    len_count = Counter(len(h) for h in hyps)
    lengths = sorted(len_count)
    out: dict[int, list[float]] = {n: [] for n in ns}
    for i, h in enumerate(hyps):
        nums, dens = [], []
        for k in range(top):
            t1, t2 = top1[k], top2[k]
            nums.append(sum(min(c, t2.get(g, 0) if c == t1[g] else t1[g])
                            for g, c in counts[k][i].items()))
            dens.append(max(1, len(h) - k))
        c = len(h)
        if len_count[c] > 1:
            r = c
        else:  # the only sentence of this length: the closest among the other lengths
            j = bisect_left(lengths, c)
            r = _closest_length(lengths[:j] + lengths[j + 1:], c)
        for n in ns:
            out[n].append(_bleu(nums, dens, c, r, n))
    return out


def self_bleu_scores(hyps: Sequence[Sentence], ns: Iterable[int] = (2, 3, 4, 5)) -> dict[str, float]:
    """Self-BLEU (Zhu et al. 2018, Texygen): mean BLEU-n of each sentence against the others.

    Keys ``"self-bleu-2"``, ... in [0, 1]; higher means less diverse samples. Equals the
    mean over i of nltk's ``sentence_bleu(hyps[:i] + hyps[i+1:], hyps[i], (1/n,)*n, method1)``
    (Texygen's parallel self-BLEU, which leaves the sentence out). Needs two sentences.
    """
    return {f"self-bleu-{n}": _mean(v) for n, v in self_bleu(hyps, ns).items()}
