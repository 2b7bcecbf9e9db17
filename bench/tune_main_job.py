"""Tune the main job (``seqgan run``, preset ``folk``): a grid of adversarial settings × seeds.

Each row copies a prepared MLE run (``runs/tune/mle-sSEED``: ``seqgan pretrain --preset
folk --seed SEED``, made by ``--prepare``) to ``runs/tune/rows/CONFIG-sSEED`` and trains it
with ``seqgan train``'s options of CONFIG (``--select data-close`` keeps the generator of
the best evaluated epoch whose style is within 7 % of the data's on the evaluation
samples, so that it stays within 10 % on fresh ones), one process per row,
one thread each (``--jobs N`` at a time). Then it scores ``--samples`` samples (sampling
seed 0) of the MLE, the selected and the final generator, and all the training windows
(the data row): the row's objective, notes per bar, pitch-class entropy and diversity.

The target (issue 17.7), per row: the selected generator's objective above both the MLE
generator's and the data's by at least ``--margin``, and its notes per bar, pitch-class
entropy and diversity within 10 % of the data's.

Usage::

    python bench/tune_main_job.py --prepare                 # here (needs music21): MLE runs
    PYTHONPATH=. python bench/tune_main_job.py --jobs 12    # the grid (no music21 needed)
    python bench/tune_main_job.py --configs lr.005,lr.005-dup --jobs 2   # other rows
    python bench/tune_main_job.py --table                   # the table of the rows done

Resumable per row: a row whose ``tune.json`` exists is skipped, a row cut short resumes
where its run stopped. Results: ``runs/tune/results.json`` and ``runs/tune/results.md``
(in ``--base``). Training and scoring a run import none of music21, nltk, pretty_midi or
mido: the workers block them, so a row fails loudly where one would be needed.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from rowpool import copy_run, python, run_pool  # noqa: E402

TUNE = ROOT / "runs" / "tune"
BLOCKED = ("music21", "nltk", "pretty_midi", "mido")
BASE = {"epochs": 12, "d_pretrain_steps": 5, "rollout_num": 8, "eval_every": 1,
        "select": "data-close", "select_tolerance": 0.07, "objective": "ratio_of_steps", "lambda_": 0.5,
        "duplicate_penalty": False, "reward_baseline": True}
CONFIGS = {  # name: seqgan train options over BASE; "config": TrainConfig fields set in config.json
    "lr.005": {"config": {"adv_lr": 0.005}},
    "lr.005-fast": {"rollout_num": 4, "d_samples": 2000, "config": {"adv_lr": 0.005}},
    "lr.005-dup": {"duplicate_penalty": True, "config": {"adv_lr": 0.005}},
    "l.7-lr.005": {"lambda_": 0.7, "config": {"adv_lr": 0.005}},
    # the first round was the four above; a second: λ between, with the penalty
    "l.6-lr.005-dup": {"lambda_": 0.6, "duplicate_penalty": True, "config": {"adv_lr": 0.005}},
    "l.7-lr.005-dup": {"lambda_": 0.7, "duplicate_penalty": True, "config": {"adv_lr": 0.005}},
    # a third: a smaller step over more epochs (the style swings less between evaluations)
    "lr.003-dup-20": {"epochs": 20, "duplicate_penalty": True, "config": {"adv_lr": 0.003}},
    "lr.003-20": {"epochs": 20, "config": {"adv_lr": 0.003}},
    # the folk preset's adversarial settings: lr.003-dup-20 with D's filter banks as Conv1d
    # (30 % faster adversarial epochs on 2 threads than the grouped GEMMs)
    "folk": {"epochs": 20, "duplicate_penalty": True, "d_impl": "conv", "config": {"adv_lr": 0.003}},
}
# the grid a plain run makes (12 rows): the preset's row and its nearest rivals
DEFAULT = ("folk", "lr.003-20", "lr.005-dup", "l.7-lr.005")
STYLE = ("notes_per_bar", "pitch_class_entropy", "diversity")


SMOKE = {"epochs": 2, "d_pretrain_steps": 1, "rollout_num": 2}


def options(config: str) -> dict:
    """``seqgan train`` options (Python names) of a config of the grid (``smoke-`` + a
    config's name: the same with a 2-epoch schedule, to check that the grid works)."""
    if config.startswith("smoke-"):
        return {**BASE, **CONFIGS[config[len("smoke-"):]], **SMOKE}
    return {**BASE, **CONFIGS[config]}


def mle_dir(seed: int, base: Path) -> Path:
    """Where the MLE run of ``seed`` is prepared."""
    return base / f"mle-s{seed}"


def prepare(seeds: list[int], base: Path) -> None:
    """MLE-pretrain one run per seed with the ``folk`` preset (the main job's MLE phase)."""
    for s in seeds:
        out = mle_dir(s, base)
        cmd = [sys.executable, "-m", "seqgan", "pretrain", "--data", "music21:essen", "--preset",
               "folk", "--seed", str(s), "--out", str(out)]
        print(" ".join(cmd[1:]), flush=True)
        subprocess.run(cmd, check=True, cwd=ROOT)


# -- one row (a worker process) -----------------------------------------------------------
def block_imports() -> None:
    """Make ``import music21`` (and the others of BLOCKED) fail in this process."""
    for m in BLOCKED:
        sys.modules[m] = None  # type: ignore[assignment]


def score(run_path: Path, samples: int) -> dict:
    """{row: {objective, style metrics}} of the data, MLE, selected and final generators."""
    from seqgan.evaluation import load_generator, sample_from
    from seqgan.runs.rundir import RunDir
    from seqgan.training.selection import SELECTED_FILE, data_reference, music_eval, objective_fn

    run = RunDir(run_path)
    name = run.config.train.objective
    fn = objective_fn(name)
    train = run.data()["train"]
    rows = {"data": {**data_reference(train, run.vocab, 0, max_pairs=20_000),
                     name: float(fn(train, run.vocab).mean())}}  # all training windows
    gens = {"MLE": "mle", "selected": "selected", "final": "latest"}
    if not (run_path / SELECTED_FILE).is_file():
        gens.pop("selected")
    for label, which in gens.items():
        g = load_generator(run, which, "cpu", warn=lambda m: None)
        rows[label] = music_eval(sample_from(g, samples, 1.0, 0), run.vocab, name, fn, max_pairs=20_000)
    return rows


def work(config: str, seed: int, base: Path, samples: int) -> None:
    """Train and score the row (CONFIG, SEED): its ``tune.json``."""
    block_imports()
    import torch

    torch.set_num_threads(1)
    from seqgan.api import open_run
    from seqgan.runs.metrics_log import MetricsLog

    row = base / "rows" / f"{config}-s{seed}"
    opts = options(config)
    copy_run(mle_dir(seed, base), row, opts.pop("config", {}))  # + fields train has no option for
    t0 = time.perf_counter()
    open_run(row, log=lambda m: print(m, flush=True)).train(device="cpu", progress=False, **opts)
    wall = time.perf_counter() - t0
    recs = MetricsLog(row / "metrics.jsonl").read()
    adv = [r for r in recs if r.get("phase") == "adversarial"]
    dpre = [r for r in recs if r.get("phase") == "d-pretrain"]
    mle = [r for r in recs if r.get("phase") == "mle"]
    phases = {"mle": mle[-1]["seconds"] if mle else None,
              "d-pretrain": dpre[-1]["seconds"] - mle[-1]["seconds"] if dpre and mle else None,
              "adversarial": adv[-1]["seconds"] - (dpre or mle)[-1]["seconds"] if adv else None}
    selected = next((r["selected"] for r in reversed(adv) if "selected" in r), None)
    t1 = time.perf_counter()
    rows = score(row, samples)
    out = {"config": config, "seed": seed, "options": options(config), "objective": options(config)["objective"],
           "train_wall_s": round(wall, 1),  # this call's; a resumed row's is only its last part
           "train_s": round(sum(v for k, v in phases.items() if k != "mle" and v), 1),
           "score_wall_s": round(time.perf_counter() - t1, 1),
           "phase_s": phases, "selected": selected, "rows": rows}
    (row / "tune.json").write_text(json.dumps(out, indent=1))


# -- the grid and its table ---------------------------------------------------------------
def verdict(r: dict, margin: float, tol: float = 0.1) -> dict:
    """Flags of one row: each style metric of the selected generator within ``tol`` of the
    data's, and its objective above the MLE's and the data's by ``margin``."""
    rows, obj = r["rows"], r["objective"]
    sel = rows.get("selected") or rows["final"]
    flags = {m: abs(sel[m] - rows["data"][m]) <= tol * rows["data"][m] for m in STYLE}
    flags["objective"] = sel[obj] >= max(rows["MLE"][obj], rows["data"][obj]) + margin
    flags["all"] = all(flags.values())
    return flags


def table(results: list[dict], margin: float) -> str:
    """The results as Markdown: a line per row, then a line per config (mean over seeds)."""
    head = ("| config | seed | gen | objective | notes/bar | pc entropy | diversity | within 10 % "
            "| obj > MLE, data | sel. epoch | D + adv. s |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in sorted(results, key=lambda r: (r["config"], r["seed"])):
        v, obj = verdict(r, margin), r["objective"]
        for label, row in r["rows"].items():
            mark = ""
            if label == ("selected" if "selected" in r["rows"] else "final"):
                mark = "yes" if all(v[m] for m in STYLE) else "NO (" + ", ".join(m for m in STYLE if not v[m]) + ")"
            sel = r.get("selected") or {}
            lines.append(f"| {r['config']} | {r['seed']} | {label} | {row[obj]:.3f} | {row['notes_per_bar']:.2f} "
                         f"| {row['pitch_class_entropy']:.2f} | {row['diversity']:.3f} | {mark} "
                         f"| {('yes' if v['objective'] else 'no') if mark else ''} "
                         f"| {sel.get('epoch', '') if label == 'selected' else ''} "
                         f"| {r['train_s'] if label == 'data' else ''} |")
    lines += ["", "| config | seeds | all targets met | selected objective | MLE objective | data objective "
              "| notes/bar sel (data) | entropy sel (data) | diversity sel (data) | D + adv. s |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    by: dict[str, list[dict]] = {}
    for r in results:
        by.setdefault(r["config"], []).append(r)

    def mean(rs: list[dict], gen: str, key: str) -> float:
        return statistics.mean((r["rows"].get(gen) or r["rows"]["final"])[key if key in STYLE else r["objective"]]
                               for r in rs)

    for c, rs in sorted(by.items()):
        ok = sum(verdict(r, margin)["all"] for r in rs)
        lines.append(f"| {c} | {len(rs)} | {ok}/{len(rs)} | {mean(rs, 'selected', 'obj'):.3f} "
                     f"| {mean(rs, 'MLE', 'obj'):.3f} | {mean(rs, 'data', 'obj'):.3f} "
                     + " ".join(f"| {mean(rs, 'selected', m):.3f} ({mean(rs, 'data', m):.3f})" for m in STYLE)
                     + f" | {statistics.mean(r['train_s'] for r in rs):.0f} |")
    return "\n".join(lines)


def collect(base: Path) -> list[dict]:
    """The results of every finished row."""
    return [json.loads(p.read_text()) for p in sorted((base / "rows").glob("*/tune.json"))]


def run_grid(configs: list[str], seeds: list[int], base: Path, jobs: int, samples: int) -> None:
    """Every (config, seed) row not done yet, ``jobs`` worker processes at a time."""
    todo = [(c, s) for c in configs for s in seeds
            if not (base / "rows" / f"{c}-s{s}" / "tune.json").is_file()]
    missing = sorted({s for _, s in todo if not (mle_dir(s, base) / "generator-mle.safetensors").is_file()})
    if missing:
        sys.exit(f"no prepared MLE run for seed(s) {missing} under {base}: run --prepare first")
    print(f"{len(todo)} rows to run, {jobs} at a time", flush=True)
    run_pool([(f"{c}-s{s}", python("tune_main_job.py", "--worker", c, str(s), "--base", str(base),
                                   "--samples", str(samples)), base / "rows" / f"{c}-s{s}.log")
              for c, s in todo], jobs)


def main() -> None:
    """Parse the command line; prepare, run the grid, or print the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prepare", action="store_true", help="MLE-pretrain runs/tune/mle-sSEED (needs music21)")
    ap.add_argument("--table", action="store_true", help="only print the table of the rows done")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--configs", default=",".join(DEFAULT), help=f"of: {', '.join(CONFIGS)}")
    ap.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    ap.add_argument("--samples", type=int, default=1000, help="samples scored per generator")
    ap.add_argument("--smoke", action="store_true", help="2-epoch rows (smoke-CONFIG): check the set-up")
    ap.add_argument("--margin", type=float, default=0.02, help="objective above MLE and data by this")
    ap.add_argument("--base", default=str(TUNE), help="the folder of MLE runs and rows")
    ap.add_argument("--worker", nargs=2, metavar=("CONFIG", "SEED"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    base, seeds = Path(a.base), [int(s) for s in a.seeds.split(",")]
    if a.worker:
        work(a.worker[0], int(a.worker[1]), base, a.samples)
        return
    if a.prepare:
        prepare(seeds, base)
        return
    configs = [c.strip() for c in a.configs.split(",") if c.strip()]
    if a.smoke:
        configs = [f"smoke-{c}" for c in configs]
    unknown = [c for c in configs if c.removeprefix("smoke-") not in CONFIGS]
    if unknown:
        sys.exit(f"unknown config(s) {unknown}; choose from {', '.join(CONFIGS)}")
    if not a.table:
        t0 = time.time()
        run_grid(configs, seeds, base, a.jobs, a.samples)
        print(f"grid: {time.time() - t0:.0f} s wall", flush=True)
    results = [r for r in collect(base) if r["config"] in configs and r["seed"] in seeds]
    text = table(results, a.margin)
    print(text)
    (base / "results.json").write_text(json.dumps(results, indent=1))
    (base / "results.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
