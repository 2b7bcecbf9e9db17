"""Image COCO captions: MLE vs SeqGAN, BLEU-2..5 against the test file, self-BLEU, NLL-test.

Settings of the text-GAN literature for COCO (TextGAN-PyTorch / Texygen): Treebank
tokens (T 38 from the data, ~4,700 words), E 32, H 32, batch 64, MLE 120 epochs, then
SeqGAN: D 50 x 3 pretraining, 200 adversarial epochs, 16 rollouts, D 5 x 3 (preset
``text``). BLEU is each sample against the whole test file (Texygen's convention),
computed over all samples (``--samples``, default 10,000), exactly equal to nltk.

Usage::

    python bench/replicate_coco.py [--device cuda] [--mle-epochs 120] [--adv-epochs 200]
        [--samples 10000] [--out runs/coco-rep] [--json bench/results/coco.json]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "image_coco"


def seqgan(*args: str) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    p = subprocess.run([sys.executable, "-m", "seqgan", *args], cwd=ROOT, env=env,
                       capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(f"seqgan {' '.join(args)} failed:\n{p.stderr[-2000:]}")
    return p.stdout


def evaluate(run: Path, samples: int, device: str, mle: bool, test: str) -> dict:
    out = run / ("eval-mle.json" if mle else "eval.json")
    seqgan("evaluate", str(run), "--metrics", "bleu,self-bleu,nll-test,distinct", "-n", str(samples),
           "--references", test, "--json", str(out), "--device", device, *(["--mle"] if mle else []))
    return next(iter(json.loads(out.read_text())["rows"].values()))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", default=str(DATA / "train.txt"))
    ap.add_argument("--test", default=str(DATA / "test.txt"))
    ap.add_argument("--out", default=str(ROOT / "runs" / "coco-rep"))
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--mle-epochs", default="120")
    ap.add_argument("--adv-epochs", default="200")
    ap.add_argument("--d-pretrain-steps", default="50")
    ap.add_argument("--rollout-num", default="16")
    ap.add_argument("--samples", type=int, default=10_000)
    ap.add_argument("--json", default=str(ROOT / "bench" / "results" / "coco.json"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    mle, adv = out / "mle", out / "seqgan"
    t0 = time.time()
    if not (mle / "generator-mle.safetensors").exists():
        seqgan("pretrain", "--data", args.train, "--test", args.test, "--preset", "text",
               "--data-option", "tokenizer=treebank", "--epochs", args.mle_epochs,
               "--out", str(mle), "--device", args.device)
    t_mle = time.time() - t0
    res = {"device": args.device, "date": time.strftime("%Y-%m-%d"),
           "schedule": vars(args), "mle_seconds": t_mle}
    res["mle"] = evaluate(mle, args.samples, args.device, True, args.test)
    if not adv.exists():
        shutil.copytree(mle, adv)
    t1 = time.time()
    seqgan("train", str(adv), "--epochs", args.adv_epochs, "--d-pretrain-steps", args.d_pretrain_steps,
           "--rollout-num", args.rollout_num, "--checkpoint-every", "10", "--device", args.device)
    res["seqgan_seconds"] = time.time() - t1
    res["seqgan"] = evaluate(adv, args.samples, args.device, False, args.test)
    res["seqgan_samples"] = seqgan("sample", str(adv), "-n", "8").splitlines()
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
