"""SS and PG-BLEU, explained: the plausible readings of SeqGAN's two Table-1 baselines, run
side by side from one MLE generator on the published oracle.

Every variant copies the prepared MLE run (``--mle``: ``seqgan pretrain --data
oracle:../shared/data/seqgan_oracle/params.npz --preset seqgan-oracle``, 120 epochs) and
trains it with ``seqgan train --baseline ss|pg-bleu|mle`` and the variant's options, with
``--select best-nll-test`` (the stopping rule a user wants: the evaluated epoch of lowest
NLL on the held-out oracle samples) and an evaluation every ``--eval-every`` epochs. A row
reports NLL-oracle (10,000 samples) at the end ("final"), at the best-NLL-test epoch, and
its lowest over all evaluations, with NLL-test at the end and at its best.

Variants (``--variants``, comma-separated; all by default):

* ``mle-more``: MLE continued as long (the control: what more epochs alone do);
* ``ss-linear``: our default SS, p rising per epoch to 0.25 at the last epoch (token coin,
  sampled tokens); ``ss-argmax``, ``ss-sequence``: the same feeding the argmax, or one coin
  per sequence; ``ss-invsig``: Bengio et al.'s inverse-sigmoid decay per minibatch capped
  at 0.25; ``ss-invsig-full``: the same uncapped (towards free running, as Bengio et al.);
* ``pg-bleu``: BLEU-4 against all 10,000 training sequences, nltk method-1 smoothing, 16
  rollouts (our default); ``pg-refs1000``, ``pg-refs100``: a sample of the references;
  ``pg-bleu2``, ``pg-bleu3``: lower orders; ``pg-method0``, ``pg-method2``: other
  smoothings; ``pg-rollouts4``: 4 rollouts;
* ``pg-as-coded``, ``ss-as-coded``: what SeqGAN's own ``pg_bleu/`` and
  ``schedule_sampling/`` scripts did (the git history of LantaoYu/SeqGAN, commit 4152436;
  see bench/RESULTS.md): the first from the MLE run, the second a new MLE run from scratch.

Resumable per row (``BASE/NAME.json``), one process with one thread per row, ``--jobs``
at a time. Usage::

    python bench/table1_variants.py --mle runs/table1_cpu/mle --epochs 50 --jobs 1

Writes ``bench/results/table1_variants.json`` and prints a Markdown table.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from rowpool import copy_run, python, run_pool  # noqa: E402

PAPER = {"mle": 9.038, "ss": 8.985, "pg-bleu": 8.946}
VARIANTS: dict[str, dict] = {
    "mle-more": {"baseline": "mle"},
    "ss-linear": {"baseline": "ss"},
    "ss-argmax": {"baseline": "ss", "ss_pick": "argmax"},
    "ss-sequence": {"baseline": "ss", "ss_unit": "sequence"},
    "ss-invsig": {"baseline": "ss", "ss_schedule": "inverse-sigmoid"},
    "ss-invsig-full": {"baseline": "ss", "ss_schedule": "inverse-sigmoid", "ss_max_prob": 1.0},
    "pg-bleu": {"baseline": "pg-bleu"},
    "pg-refs1000": {"baseline": "pg-bleu", "pg_bleu_refs": 1000},
    "pg-refs100": {"baseline": "pg-bleu", "pg_bleu_refs": 100},
    "pg-bleu2": {"baseline": "pg-bleu", "pg_bleu_n": 2},
    "pg-bleu3": {"baseline": "pg-bleu", "pg_bleu_n": 3},
    "pg-method0": {"baseline": "pg-bleu", "pg_bleu_smoothing": "method0"},
    "pg-method2": {"baseline": "pg-bleu", "pg_bleu_smoothing": "method2"},
    "pg-rollouts4": {"baseline": "pg-bleu", "rollout_num": 4},
    # SeqGAN's own pg_bleu/ code (commit 4152436): Adam at its default 0.001, one rollout by
    # the current generator itself, BLEU-3 without smoothing against the ~40 % of the
    # training sequences its loader keeps; it evaluated after every step and kept the best
    "pg-as-coded": {"baseline": "pg-bleu", "adv_lr": 0.001, "rollout_num": 1, "update_rate": 0.0,
                    "pg_bleu_n": 3, "pg_bleu_smoothing": "method0", "pg_bleu_refs": 4000},
    # SeqGAN's own schedule_sampling/ code: its coin is one constant (see RESULTS), so it
    # trains by teacher forcing only: MLE from scratch, Adam 0.001, 300 epochs, best kept
    "ss-as-coded": {"from_scratch": {"lr": 0.001, "epochs": 300}},
}
CONFIG_ONLY = ("adv_lr",)  # TrainConfig fields seqgan train has no option for


def summarise(run: Path, phase: str = "adversarial") -> dict:
    """NLL-oracle and NLL-test at the end, at the best-NLL-test epoch, and their minima,
    over the evaluations of ``phase`` (``mle``: from the first evaluation after epoch 0)."""
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]
    adv = [r for r in recs if r["phase"] == phase and "nll_oracle" in r["metrics"] and r["epoch"] > 0]
    mle = [r for r in recs if r["phase"] == "mle" and "nll_oracle" in r["metrics"]][-1 if phase != "mle" else 0]
    best = min(adv, key=lambda r: r["metrics"]["nll_test"])
    low = min(adv, key=lambda r: r["metrics"]["nll_oracle"])
    return {"start": {"nll_oracle": mle["metrics"]["nll_oracle"], "nll_test": mle["metrics"]["nll_test"]},
            "final": {"epoch": adv[-1]["epoch"], **{k: adv[-1]["metrics"][k] for k in ("nll_oracle", "nll_test")}},
            "best_nll_test": {"epoch": best["epoch"], **{k: best["metrics"][k] for k in ("nll_oracle", "nll_test")}},
            "lowest_nll_oracle": {"epoch": low["epoch"], "nll_oracle": low["metrics"]["nll_oracle"]},
            "trajectory": [(r["epoch"], round(r["metrics"]["nll_oracle"], 4), round(r["metrics"]["nll_test"], 4))
                           for r in adv],
            "train_s": round(adv[-1]["seconds"] - mle["seconds"], 1)}


def work(name: str, mle: Path, base: Path, epochs: int, every: int) -> None:
    """Train the variant ``name`` from a copy of ``mle``; write ``base/NAME.json``."""
    import torch

    torch.set_num_threads(1)
    from seqgan.api import open_run

    run = base / "runs" / name
    log = lambda m: print(m, flush=True)  # noqa: E731
    spec = dict(VARIANTS[name])
    if "from_scratch" in spec:  # a new MLE run on the MLE run's oracle and seed
        from seqgan.api import pretrain_run

        src = open_run(mle)
        opts = {**spec["from_scratch"], "eval_every": every, "seed": src.config.train.seed}
        pretrain_run(run, data=src.config.data.spec, preset=src.config.preset, device="cpu", log=log, **opts)
        out = {"variant": name, "options": opts, **summarise(run, "mle")}
    else:
        copy_run(mle, run, {k: spec.pop(k) for k in CONFIG_ONLY if k in spec})
        opts = {**spec, "epochs": epochs, "eval_every": every, "select": "best-nll-test"}
        open_run(run, log=log).train(device="cpu", progress=False, **opts)
        out = {"variant": name, "options": {**VARIANTS[name], **opts}, **summarise(run)}
    (base / f"{name}.json").write_text(json.dumps(out, indent=1))


def table(results: list[dict]) -> str:
    lines = ["| variant | options | epochs | NLL-oracle final | at best NLL-test (epoch) | lowest (epoch) "
             "| NLL-test final | best NLL-test | train s |", "|---" * 9 + "|"]
    for r in results:
        opts = ", ".join(f"{k}={v}" for k, v in r["options"].items()
                         if k not in ("epochs", "eval_every", "select", "from_scratch", "seed"))
        f, b, lo = r["final"], r["best_nll_test"], r["lowest_nll_oracle"]
        lines.append(f"| {r['variant']} | {opts} | {f['epoch']} | {f['nll_oracle']:.3f} | {b['nll_oracle']:.3f} "
                     f"({b['epoch']}) | {lo['nll_oracle']:.3f} ({lo['epoch']}) | {f['nll_test']:.3f} "
                     f"| {b['nll_test']:.3f} | {r['train_s']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mle", default=str(ROOT / "runs" / "table1_cpu" / "mle"))
    ap.add_argument("--base", default=str(ROOT / "runs" / "table1_variants"))
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--eval-every", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--json", default=str(ROOT / "bench" / "results" / "table1_variants.json"))
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    base, mle = Path(a.base), Path(a.mle)
    if a.worker:
        work(a.worker, mle, base, a.epochs, a.eval_every)
        return
    names = [v for v in a.variants.split(",") if v]
    if unknown := [v for v in names if v not in VARIANTS]:
        sys.exit(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
    if not (mle / "generator-mle.safetensors").is_file():
        sys.exit(f"no MLE run at {mle}: make it with seqgan pretrain --data oracle:PATH --preset seqgan-oracle")
    t0 = time.time()
    common = ["--mle", str(mle), "--base", str(base), "--epochs", str(a.epochs), "--eval-every", str(a.eval_every)]
    jobs = [(n, python("table1_variants.py", "--worker", n, *common), base / f"{n}.log")
            for n in names if not (base / f"{n}.json").is_file()]
    run_pool(jobs, a.jobs)
    results = [json.loads((base / f"{n}.json").read_text()) for n in names if (base / f"{n}.json").is_file()]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    print(table(results))
    Path(a.json).write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "commit": commit, "mle": str(mle),
                                        "wall_s": round(time.time() - t0), "paper": PAPER,
                                        "rows": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
