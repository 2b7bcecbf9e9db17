"""BLEU and self-BLEU: nltk vs seqgan.metrics.bleu, side by side on the same COCO inputs.

Hypotheses are the COCO test captions, references the COCO train captions (10,000 each, as
the text-GAN papers evaluate), BLEU-2..5 with nltk's method-1 smoothing. nltk is timed the
way Texygen calls it (one ``sentence_bleu`` per hypothesis and order) on the first
``--nltk-hyps`` hypotheses and extrapolated linearly to all of them (its cost per hypothesis
does not depend on which hypothesis: it recounts every reference each time). Ours is timed on
all hypotheses, reference tables included, on one thread. Every hypothesis nltk scored is
compared with ours.

    python bench/bench_bleu.py [--data ../shared/data/image_coco] [--nltk-hyps 40]

Writes ``bench/results/bleu.json`` and prints a table.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout: `python bench/bench_bleu.py`

from seqgan.metrics.bleu import BleuReference, self_bleu  # noqa: E402
from seqgan.datasets.text import read_sentences, tokenize  # noqa: E402

NS = (2, 3, 4, 5)


def nltk_bleu(refs, hyps, method1):
    """Texygen's loop: one sentence_bleu per hypothesis and order, all references each time."""
    from nltk.translate.bleu_score import sentence_bleu

    return {n: [sentence_bleu(refs, h, (1 / n,) * n, smoothing_function=method1) for h in hyps]
            for n in NS}


def nltk_self_bleu(hyps, k, method1):
    """Texygen's parallel self-BLEU for the first k sentences: each against all the others."""
    from nltk.translate.bleu_score import sentence_bleu

    return {n: [sentence_bleu(hyps[:i] + hyps[i + 1:], hyps[i], (1 / n,) * n,
                              smoothing_function=method1) for i in range(k)] for n in NS}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "image_coco"))
    ap.add_argument("--tokenizer", default="treebank", help="how captions are split (default treebank)")
    ap.add_argument("--nltk-hyps", type=int, default=40, help="hypotheses nltk scores for BLEU")
    ap.add_argument("--nltk-self-hyps", type=int, default=10, help="sentences nltk scores for self-BLEU")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "bleu.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)

    import nltk
    from nltk.translate.bleu_score import SmoothingFunction

    method1 = SmoothingFunction().method1
    meta = {"tokenizer": args.tokenizer, "lowercase": False}
    refs = [tokenize(s, meta) for s in read_sentences(Path(args.data) / "train.txt")]
    hyps = [tokenize(s, meta) for s in read_sentences(Path(args.data) / "test.txt")]
    H, R = len(hyps), len(refs)
    print(f"{H} hypotheses (test) vs {R} references (train), tokenizer {args.tokenizer}")

    # ---- BLEU-2..5 ------------------------------------------------------------------
    k = min(args.nltk_hyps, H)
    theirs, t_nltk = timed(nltk_bleu, refs, hyps[:k], method1)
    ref, t_build = timed(BleuReference, refs, max(NS))
    ours, t_score = timed(ref.scores, hyps, NS)
    t_ours = t_build + t_score
    diff = max(abs(ours[n][i] - theirs[n][i]) for n in NS for i in range(k))
    bit_equal = all(ours[n][i] == theirs[n][i] for n in NS for i in range(k))
    means = {f"bleu-{n}": math.fsum(ours[n]) / H for n in NS}
    nltk_all = t_nltk / k * H

    # ---- self-BLEU-2..5 over the hypotheses ------------------------------------------
    ks = min(args.nltk_self_hyps, H)
    self_theirs, t_nltk_self = timed(nltk_self_bleu, hyps, ks, method1)
    self_ours, t_self = timed(self_bleu, hyps, NS)
    self_diff = max(abs(self_ours[n][i] - self_theirs[n][i]) for n in NS for i in range(ks))
    self_means = {f"self-bleu-{n}": math.fsum(self_ours[n]) / H for n in NS}
    nltk_self_all = t_nltk_self / ks * H

    # ---- vectorised score_tensor (token ids, one thread, CPU) ---------------------------
    words = {w: i for i, w in enumerate(sorted({w for s in refs + hyps for w in s}))}
    ids_ref = BleuReference([[words[w] for w in s] for s in refs], max(NS))
    T = max(len(h) for h in hyps)
    tokens = torch.tensor([[words[w] for w in h] + [0] * (T - len(h)) for h in hyps])  # (H, T)
    lengths = torch.tensor([len(h) for h in hyps])  # (H,)
    _, t_tab = timed(ids_ref.score_tensor, tokens[:1], lengths[:1], 4)  # builds the tables
    tens, t_tens = timed(ids_ref.score_tensor, tokens, lengths, 4)
    tens_diff = float((tens - torch.tensor(ours[4], dtype=torch.float64)).abs().max())

    res = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpu": cpu_name(),
                    "python": platform.python_version(), "torch": torch.__version__,
                    "nltk": nltk.__version__, "threads": 1},
        "data": {"hypotheses": H, "references": R, "tokenizer": args.tokenizer,
                 "orders": list(NS)},
        "bleu": {"nltk_hyps_timed": k, "nltk_s": t_nltk, "nltk_s_per_hyp": t_nltk / k,
                 "nltk_s_extrapolated_all": nltk_all, "ours_build_s": t_build,
                 "ours_score_s": t_score, "ours_total_s": t_ours,
                 "speedup_extrapolated": nltk_all / t_ours, "max_abs_diff": diff,
                 "bit_identical": bit_equal, "scores": means},
        "self_bleu": {"nltk_hyps_timed": ks, "nltk_s": t_nltk_self,
                      "nltk_s_per_hyp": t_nltk_self / ks, "nltk_s_extrapolated_all": nltk_self_all,
                      "ours_total_s": t_self, "speedup_extrapolated": nltk_self_all / t_self,
                      "max_abs_diff": self_diff, "scores": self_means},
        "score_tensor_bleu4_cpu": {"table_build_s": t_tab, "score_s": t_tens,
                                   "max_abs_diff_vs_python": tens_diff},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")

    print(f"{'':28s}{'nltk (extrapolated)':>22s}{'ours':>10s}{'speedup':>10s}{'max |diff|':>12s}")
    print(f"{'BLEU-2..5, all hypotheses':28s}{nltk_all:>20.0f} s{t_ours:>8.2f} s"
          f"{nltk_all / t_ours:>9.0f}x{diff:>12.1e}")
    print(f"{'self-BLEU-2..5':28s}{nltk_self_all:>20.0f} s{t_self:>8.2f} s"
          f"{nltk_self_all / t_self:>9.0f}x{self_diff:>12.1e}")
    print(f"nltk timed on {k} (BLEU) and {ks} (self-BLEU) hypotheses: "
          f"{t_nltk / k:.2f} s and {t_nltk_self / ks:.2f} s per hypothesis")
    print(f"score_tensor BLEU-4, {H} rows, CPU 1 thread: {t_tens:.3f} s (+{t_tab:.2f} s tables), "
          f"max |diff| vs Python {tens_diff:.1e}")
    print(" ".join(f"{k_}={v:.4f}" for k_, v in {**means, **self_means}.items()))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
