"""Replicate ORGAN's music experiment (Guimaraes et al. 2017, Table 3) on the Nottingham tunes.

For each objective (tonality, melodicity, ratio_of_steps): MLE, SeqGAN (λ = 1), ORGAN
(λ in ``--lambdas``, default 0.2,0.5,0.8) and naive RL (λ = 0), with ORGAN's schedule
(MLE 240 epochs, D 50 x 3, 200 adversarial epochs, 16 rollouts, batch 64, duplicate penalty
on). One MLE pretraining is shared; SeqGAN does not depend on the objective, so it runs
once. Every row reports the three objectives, diversity and percent unique on
``--samples`` samples, in the layout of ORGAN's Table 3.

Usage::

    python bench/replicate_organ.py [--device cuda] [--quick] [--parallel 4]
        [--data ../shared/data/nottingham_abc/nottingham.abc.txt] [--out runs/organ]

Writes ``bench/results/organ_table3.json`` and prints a Markdown table.
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
OBJECTIVES = ("tonality", "melodicity", "ratio_of_steps")
COLUMNS = ("tonality", "melodicity", "ratio_of_steps", "diversity", "unique")


def seqgan_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "seqgan", *args]


def run_all(cmds: dict[str, list[str]], parallel: int, logdir: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    pending, running = list(cmds.items()), {}
    while pending or running:
        while pending and len(running) < parallel:
            name, cmd = pending.pop(0)
            log = open(logdir / f"{name}.log", "w")
            running[name] = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        for name, p in list(running.items()):
            if p.poll() is not None:
                if p.returncode:
                    raise SystemExit(f"{name} failed; see {logdir / (name + '.log')}")
                del running[name]
        time.sleep(1)


def evaluate(run: Path, samples: int, mle: bool) -> dict[str, float]:
    out = run / ("eval-mle.json" if mle else "eval.json")
    subprocess.run(seqgan_cmd("evaluate", str(run), "--metrics", "music", "-n", str(samples), "--json",
                              str(out), *(["--mle"] if mle else [])),
                   cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), check=True,
                   capture_output=True)
    return next(iter(json.loads(out.read_text())["rows"].values()))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared/data/nottingham_abc/nottingham.abc.txt"))
    ap.add_argument("--out", default=str(ROOT / "runs" / "organ"))
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--lambdas", default="0.2,0.5,0.8")
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--quick", action="store_true", help="reduced schedule (smoke test)")
    ap.add_argument("--preset", default="organ-music", help="network sizes (folk: small, for a CPU)")
    ap.add_argument("--json", default=str(ROOT / "bench" / "results" / "organ_table3.json"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    mle_epochs, adv, d_pre, rollouts = ("3", "2", "1", "4") if args.quick else ("240", "200", "50", "16")
    t0 = time.time()
    mle = out / "mle"
    if not (mle / "generator-mle.safetensors").exists():
        run_all({"mle": seqgan_cmd("pretrain", "--data", args.data, "--preset", args.preset,
                                   "--epochs", mle_epochs, "--out", str(mle), "--device", args.device)},
                1, out)
    cmds = {}
    variants = [("seqgan", 1.0, "tonality")]  # λ = 1 ignores the objective
    for obj in OBJECTIVES:
        variants += [(f"organ-{lam}-{obj}", float(lam), obj) for lam in args.lambdas.split(",")]
        variants.append((f"naive-rl-{obj}", 0.0, obj))
    for name, lam, obj in variants:
        run = out / name
        if not run.exists():
            shutil.copytree(mle, run)
        cmds[name] = seqgan_cmd("train", str(run), "--lambda", str(lam), "--objective", obj,
                                "--duplicate-penalty", "--epochs", adv, "--d-pretrain-steps", d_pre,
                                "--rollout-num", rollouts, "--checkpoint-every", "10",
                                "--device", args.device)
    run_all(cmds, args.parallel, out)
    rows = {"MLE": evaluate(mle, args.samples, True)}
    for name, _, _ in variants:
        rows[name] = evaluate(out / name, args.samples, False)
    res = {"device": args.device, "date": time.strftime("%Y-%m-%d"), "quick": args.quick,
           "preset": args.preset,
           "seconds": time.time() - t0, "rows": rows}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    print("| model | " + " | ".join(COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for name, r in rows.items():
        print(f"| {name} | " + " | ".join(f"{r.get(c, float('nan')):.3f}" for c in COLUMNS) + " |")


if __name__ == "__main__":
    main()
