"""Coevolution on 1 and 2 worker processes of this machine: generation time, speed-up and
the bytes each rank sends per generation, side by side in one run.

Cells are SeqGAN-like but CPU-sized (a random oracle, V 500, T 20, E = H = 32, 8 rollouts,
D of 4 banks × 32 filters); grids 2×2 and 4×4; every worker uses one intra-op thread, and
so does the single process (the setting in which they are bit-identical). The time is
the workers' time in generations (process start-up and the checkpoint of the initial
population excluded), the mean over ``--generations``.

Usage::

    python bench/bench_distributed.py [--generations 3] [--grids 2x2,4x4] [--workers 1,2]

Prints a Markdown table; record it in bench/RESULTS.md with the machine, date and commit.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRETRAIN = ["pretrain", "--data", "oracle", "--preset", "quick", "--seq-len", "20", "--data-option",
            "vocab_size=500", "--data-option", "oracle_dim=32", "--epochs", "2", "--device", "cpu"]
CELL = ["--rollout-num", "8", "--d-steps", "1", "--k-epochs", "1", "--d-samples", "256", "--d-pretrain", "0",
        "--device", "cpu"]


def seqgan(*args: str) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "seqgan", *args], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True).stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--generations", type=int, default=3)
    ap.add_argument("--grids", default="2x2,4x4")
    ap.add_argument("--workers", default="1,2")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    import seqgan as sg

    tmp = Path(tempfile.mkdtemp(prefix="bench-dist-"))
    base = tmp / "mle"
    seqgan(*PRETRAIN, "--out", str(base))
    rows = []
    for grid in args.grids.split(","):
        times = {}
        for w in (int(x) for x in args.workers.split(",")):
            run = tmp / f"{grid}-{w}"
            shutil.copytree(base, run)
            (run / ".lock").unlink(missing_ok=True)
            r = sg.open_run(run, log=lambda m: None)
            opts = dict(grid=grid, generations=args.generations, rollout_num=8, d_steps=1, k_epochs=1,
                        d_samples=256, d_pretrain=0)
            t0 = time.perf_counter()
            out = r.coevolve(device="cpu", workers=w, progress=False, **opts)
            wall = time.perf_counter() - t0
            per_gen = out["seconds"] / args.generations
            sent = out.get("bytes_sent_rank0", 0) / args.generations
            times[w] = per_gen
            rows.append((grid, w, per_gen, times[1] / per_gen if 1 in times else float("nan"), sent, wall))
            print(json.dumps({"grid": grid, "workers": w, "seconds_per_generation": per_gen,
                              "bytes_sent_per_generation_rank0": sent, "wall": wall}), flush=True)
    print("\n| grid | workers | s / generation | speed-up | MB sent / generation (rank 0) | wall s |")
    print("|---|---|---|---|---|---|")
    for grid, w, t, sp, sent, wall in rows:
        print(f"| {grid} | {w} | {t:.2f} | {sp:.2f}× | {sent / 1e6:.2f} | {wall:.1f} |")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
