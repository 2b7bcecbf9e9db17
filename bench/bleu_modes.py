"""BLEU-2..5 of the COCO test captions against the COCO train captions in each ``--bleu-mode``.

``nltk``: references are the non-blank lines of train.txt, tokenised with the Treebank
tokenizer (what a run made with ``--data-option tokenizer=treebank`` does with
``--references``); ``texygen``: every line kept, nltk's ``word_tokenize``; ``texygen-fast``:
the first 500 lines only (Texygen's default during training). Hypotheses are the test
captions as a treebank run would decode them (Treebank tokens), re-tokenised as each mode
does. All scores are exact (``seqgan.metrics.bleu``); ``--hyps`` scores only the first K.

    python bench/bleu_modes.py [--data ../shared/data/image_coco] [--hyps 10000]

Writes ``bench/results/bleu_modes.json`` and prints a table.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout: `python bench/bleu_modes.py`

from seqgan.datasets.text import read_sentences, tokenize  # noqa: E402
from seqgan.metrics.bleu import corpus_bleu_scores  # noqa: E402
from seqgan.metrics.bleu_modes import punkt_available, read_texygen_references  # noqa: E402

NS = (2, 3, 4, 5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared/data/image_coco"))
    ap.add_argument("--hyps", type=int, default=10_000)
    ap.add_argument("--out", default=str(ROOT / "bench/results/bleu_modes.json"))
    args = ap.parse_args()
    train, test = Path(args.data) / "train.txt", Path(args.data) / "test.txt"
    meta = {"tokenizer": "treebank", "lowercase": False}
    hyps = [tokenize(s, meta) for s in read_sentences(test)][:args.hyps]
    rows = {}
    t0 = time.perf_counter()
    rows["nltk"] = corpus_bleu_scores(hyps, [tokenize(s, meta) for s in read_sentences(train)], NS)
    rows["nltk"]["seconds"] = time.perf_counter() - t0
    for mode, fast in (("texygen", False), ("texygen-fast", True)):
        t0 = time.perf_counter()
        refs = read_texygen_references(train, fast=fast)
        rows[mode] = refs.bleu_scores(hyps, NS)
        rows[mode].update(seconds=time.perf_counter() - t0, references=len(refs.used), blank=refs.blank)
    print(f"{len(hyps)} hypotheses (test.txt) vs train.txt; punkt installed: {punkt_available()}")
    print("| mode | references | BLEU-2 | BLEU-3 | BLEU-4 | BLEU-5 | seconds |")
    print("|---|---|---|---|---|---|---|")
    for mode, r in rows.items():
        refs = r.get("references", "all non-blank")
        print(f"| {mode} | {refs} | " + " | ".join(f"{r[f'bleu-{n}']:.4f}" for n in NS)
              + f" | {r['seconds']:.1f} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"hyps": len(hyps), "punkt": punkt_available(), "rows": rows},
                                         indent=1))


if __name__ == "__main__":
    main()
