"""Replicate SeqGAN's Table 1 (Yu et al. 2017): NLL-oracle of Random, MLE, SS, PG-BLEU, SeqGAN.

Schedule (the paper's): the published oracle (``params.npz``), 10,000 training sequences
of length 20, MLE 120 epochs (Adam 0.01, batch 64); then from the MLE generator
- SeqGAN: D pretraining 50 rounds x 3 epochs, 200 adversarial epochs (1 generator step,
  16 rollouts, update rate 0.8, D 5 rounds x 3 epochs, batch 64);
- SS: 200 epochs of scheduled sampling (Bengio et al. 2015);
- PG-BLEU: 200 policy-gradient epochs with BLEU-4 against the training data as reward;
- MLE: the pretrained generator; Random: the untrained generator.
NLL-oracle is measured on 10,000 samples. The rows after MLE run as concurrent processes
on the same device (wall times are therefore upper bounds of a row run alone).

Usage::

    python bench/replicate_seqgan.py --oracle ../shared/data/seqgan_oracle/params.npz \
        --out runs/table1 --seeds 0 [--rows ss,pg-bleu,seqgan] [--device cuda] [--quick]

Writes ``bench/results/seqgan_table1.json`` and prints a Markdown table.
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
sys.path.insert(0, str(ROOT))

PAPER = {"random": 10.310, "mle": 9.038, "ss": 8.985, "pg-bleu": 8.946, "seqgan": 8.736}


def cli(*args: str, log: Path | None = None) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    out = open(log, "w") if log else None
    return subprocess.Popen([sys.executable, "-m", "seqgan", *args], cwd=ROOT, env=env,
                            stdout=out, stderr=subprocess.STDOUT if out else None)


def wait(procs: dict[str, subprocess.Popen]) -> None:
    for name, p in procs.items():
        if p.wait() != 0:
            raise SystemExit(f"{name} failed (exit {p.returncode}); see its log")


def last_nll(run: Path) -> tuple[float, float]:
    recs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    vals = [r["metrics"]["nll_oracle"] for r in recs if "nll_oracle" in r["metrics"]]
    return vals[-1], min(vals)


def random_row(oracle_path: str, seed: int, device: str) -> float:
    import torch

    from seqgan.models.generator import GeneratorConfig
    from seqgan.models.generator import Generator
    from seqgan.models.oracle import Oracle

    torch.manual_seed(seed)
    g = Generator(GeneratorConfig()).to(device)
    oracle = Oracle.from_npz(oracle_path).to(device)
    return oracle.nll(g.sample(10_000, generator=torch.Generator(device=device).manual_seed(seed)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--oracle", default=str(ROOT.parent / "shared/data/seqgan_oracle/params.npz"))
    ap.add_argument("--out", default=str(ROOT / "runs" / "table1"))
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--rows", default="ss,pg-bleu,seqgan")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--quick", action="store_true", help="a reduced schedule (smoke test)")
    ap.add_argument("--json", default=str(ROOT / "bench" / "results" / "seqgan_table1.json"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = [r for r in args.rows.split(",") if r]
    mle_epochs, adv_epochs, d_pre = ("6", "4", "2") if args.quick else ("120", "200", "50")
    results: dict = {"device": args.device, "date": time.strftime("%Y-%m-%d"), "paper": PAPER,
                     "schedule": {"mle_epochs": mle_epochs, "adv_epochs": adv_epochs,
                                  "d_pretrain_steps": d_pre}, "seeds": {}}
    try:
        import torch

        if args.device.startswith("cuda"):
            results["device"] = torch.cuda.get_device_name(0)
    except Exception:
        pass
    t_all = time.time()
    for seed in [int(s) for s in args.seeds.split(",")]:
        base = out / f"seed{seed}"
        mle = base / "mle"
        t0 = time.time()
        if not (mle / "generator-mle.safetensors").exists():
            wait({"mle": cli("pretrain", "--data", f"oracle:{args.oracle}", "--preset", "seqgan-oracle",
                             "--out", str(mle), "--seed", str(seed), "--epochs", mle_epochs,
                             "--device", args.device, log=base.with_suffix(".mle.log")
                             if base.parent.exists() else None)})
        res = {"mle_seconds": time.time() - t0, "random": random_row(args.oracle, seed, args.device)}
        res["mle"] = last_nll(mle)[0]
        procs, starts = {}, {}
        for row in rows:
            run = base / row
            if not run.exists():
                shutil.copytree(mle, run)
            extra = ["--baseline", "seqgan" if row == "seqgan" else row, "--epochs", adv_epochs,
                     "--d-pretrain-steps", d_pre, "--checkpoint-every", "10", "--device", args.device]
            starts[row] = time.time()
            procs[row] = cli("train", str(run), *extra, log=base / f"{row}.log")
        for row, p in procs.items():
            if p.wait() != 0:
                raise SystemExit(f"{row} failed; see {base / f'{row}.log'}")
            final, best = last_nll(base / row)
            res[row] = final
            res[f"{row}_best"] = best
            res[f"{row}_seconds"] = time.time() - starts[row]
        results["seeds"][seed] = res
        print(json.dumps(res, indent=2))
    results["total_seconds"] = time.time() - t_all
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    seeds = list(results["seeds"].values())
    print("\n| row | paper | ours (final; mean over seeds) | per seed |")
    print("|---|---|---|---|")
    for row in ["random", "mle", *rows]:
        vals = [s[row] for s in seeds]
        print(f"| {row} | {PAPER.get(row, float('nan')):.3f} | {sum(vals) / len(vals):.3f} | "
              f"{', '.join(f'{v:.3f}' for v in vals)} |")


if __name__ == "__main__":
    main()
