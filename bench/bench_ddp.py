"""Data-parallel SeqGAN on 1 and K processes: seconds per MLE epoch and per adversarial
epoch (rollouts, REINFORCE, one D round), and the speed-up, side by side in one run.

The run is SeqGAN-like but CPU-sized by default (the ``quick`` preset's random oracle with
V 500, T 20, batch 64, 16 rollouts, one D round an epoch; ``--preset seqgan-oracle`` for
SeqGAN's own sizes, on a GPU); every process uses one intra-op thread, and so does the
single process. The times are the training loop's own (process
start-up, evaluation and checkpoints excluded), the mean over the epochs after the first.
``--data-parallel-one`` adds a row for the data-parallel path with one process (on a GPU:
NCCL, eager D steps), which shows its overhead against the ordinary path.

Usage::

    python bench/bench_ddp.py [--workers 2] [--device cpu|cuda] [--epochs 3] [--preset quick]
                              [--data-parallel-one]

Prints a Markdown table; record it in bench/RESULTS.md with the machine, date and commit.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUICK = {"seq_len": 20, "batch_size": 64, "data_options": ["vocab_size=500", "oracle_dim=32"]}
TRAIN = {"rollout_num": 16, "d_steps": 1, "k_epochs": 1, "d_pretrain_steps": 0, "eval_every": 1}


def step_seconds(run: Path, phase: str) -> float:
    """Mean seconds of a phase's epochs after its first (cumulative ``seconds`` differences)."""
    recs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    t = [r["seconds"] for r in recs if r["phase"] == phase and r["epoch"] > 0]
    return (t[-1] - t[0]) / max(len(t) - 1, 1)


def measure(base: Path, tmp: Path, label: str, workers: int, device: str, epochs: int, one: bool) -> dict:
    """Pretrain and train a copy of ``base`` with ``workers`` processes; seconds per epoch."""
    import seqgan
    from seqgan.distributed import data_parallel

    run = tmp / label
    shutil.copytree(base, run)
    r = seqgan.open_run(run, log=lambda m: None)
    if one:  # the data-parallel path with a single process
        with r.lock():
            r._apply_train_options({**TRAIN, "epochs": epochs})
            r.dir.save_config()
        data_parallel.spawn(run, "train", 1, device)
    else:
        r.train(device=device, progress=False, workers=workers, epochs=epochs, **TRAIN)
    return {"mle": step_seconds(run, "mle"), "adv": step_seconds(run, "adversarial")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--data-parallel-one", action="store_true")
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    import seqgan

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        base = tmp / "base"
        sizes = QUICK if args.preset == "quick" else {}
        seqgan.create_run(base, "oracle", args.preset, log=lambda m: None, seed=1, epochs=args.epochs,
                          eval_every=1, **sizes)
        rows = [("1 process", measure(base, tmp, "one", 1, args.device, args.epochs, False))]
        if args.data_parallel_one:
            rows.append(("data-parallel, 1 process", measure(base, tmp, "dp1", 1, args.device, args.epochs, True)))
        rows.append((f"data-parallel, {args.workers} processes",
                     measure(base, tmp, "dpk", args.workers, args.device, args.epochs, False)))
    ref = rows[0][1]
    print(f"device {args.device}, torch {torch.__version__}, {os.cpu_count()} CPUs")
    print("| run | s / MLE epoch | speed-up | s / adversarial epoch | speed-up |")
    print("|---|---|---|---|---|")
    for label, t in rows:
        print(f"| {label} | {t['mle']:.3f} | {ref['mle'] / t['mle']:.2f}× | {t['adv']:.3f} | "
              f"{ref['adv'] / t['adv']:.2f}× |")


if __name__ == "__main__":
    main()
