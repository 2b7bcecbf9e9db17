"""ORGAN's music table (Guimaraes et al. 2017, Table 3 layout) on the Nottingham tunes.

Rows: MLE, SeqGAN (λ = 1), ORGAN (λ in ``--lambdas``, default 0.2, 0.5, 0.8) and naive
RL (λ = 0) for each objective (tonality, melodicity, ratio_of_steps); columns the three
metrics, diversity and percent unique of ``--samples`` samples (sampling seed 0) of the
final generator; for every seed of ``--seeds`` and every reading of the data of
``--readings`` (``default``: music21's ABC reading; ``organ``: ``--data-option
parser=organ``, ORGAN's own scanner). One MLE run per (reading, seed) is shared by its
rows; SeqGAN does not depend on the objective, so it runs once.

Schedule: the ``folk`` preset's (``--preset``): MLE 20 epochs, D 5 rounds, then 20
adversarial epochs (``--epochs``) of 8 rollouts at generator lr 0.003 with the batch-mean
reward baseline and ORGAN's duplicate penalty, one D round each (none at λ = 0); only λ
and the objective change between rows. A row is one process with one thread, ``--jobs``
at a time.

Resumable per row: ``BASE/READING/sSEED/ROW.json`` marks a finished row (``mle.json``
the MLE run's); a run cut short resumes from its last checkpoint. Usage::

    python bench/replicate_organ.py --jobs 2                       # all rows (~80 core-min)
    python bench/replicate_organ.py --seeds 0 --readings organ --quick   # a smoke test
    python bench/replicate_organ.py --table                        # the table of rows done

Writes ``bench/results/organ_table3.json`` and prints the Markdown tables and the paper's
claims checked (on its optimised metric naive RL > ORGAN > SeqGAN ≈ MLE; diversity the
other way round).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from rowpool import copy_run, python, run_pool  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "nottingham_abc" / "nottingham.abc.txt"
READINGS = {"default": {}, "organ": {"parser": "organ"}}
OBJECTIVES = ("tonality", "melodicity", "ratio_of_steps")
COLUMNS = ("tonality", "melodicity", "ratio_of_steps", "diversity", "unique")
QUICK = {"mle_epochs": 2, "epochs": 2, "d_pretrain_steps": 1, "rollout_num": 2}


def row_names(lambdas: list[str]) -> list[str]:
    """The trained rows: seqgan, organ-λ-OBJ for each λ, naive-OBJ, per objective."""
    names = ["seqgan"]
    for obj in OBJECTIVES:
        names += [f"organ-{lam}-{obj}" for lam in lambdas] + [f"naive-{obj}"]
    return names


def row_options(name: str) -> dict:
    """``seqgan train`` options (Python names) of a row."""
    if name == "seqgan":
        return {"lambda_": 1.0}
    if name.startswith("naive-"):
        return {"lambda_": 0.0, "objective": name[len("naive-"):]}
    _, lam, obj = name.split("-", 2)
    return {"lambda_": float(lam), "objective": obj}


def score(run_path: Path, which: str, samples: int) -> dict[str, float]:
    """The music metrics of ``samples`` samples (seed 0) of the run's ``which`` generator."""
    from seqgan.evaluation import load_generator, sample_from
    from seqgan.metrics.music import music_metrics
    from seqgan.runs.rundir import RunDir

    run = RunDir(run_path)
    g = load_generator(run, which, "cpu", warn=lambda m: None)
    return music_metrics(sample_from(g, samples, 1.0, 0), run.vocab, max_pairs=20_000)


def work_mle(cell: Path, reading: str, seed: int, samples: int, quick: bool) -> None:
    """Pretrain (or resume) ``cell/mle`` and write ``cell/mle.json``: the data's and the MLE
    generator's metrics."""
    import torch

    torch.set_num_threads(1)
    from seqgan.api import pretrain_run
    from seqgan.metrics.music import music_metrics
    from seqgan.runs.rundir import RunDir

    extra = {"epochs": QUICK["mle_epochs"]} if quick else {}
    t0 = time.perf_counter()
    pretrain_run(cell / "mle", data=str(DATA), preset="folk", data_options=READINGS[reading],
                 device="cpu", seed=seed, log=lambda m: print(m, flush=True), **extra)
    run = RunDir(cell / "mle")
    out = {"reading": reading, "seed": seed, "train_wall_s": round(time.perf_counter() - t0, 1),
           "data": music_metrics(run.data()["train"], run.vocab, max_pairs=20_000),
           "MLE": score(cell / "mle", "mle", samples)}
    (cell / "mle.json").write_text(json.dumps(out, indent=1))


def work_row(cell: Path, name: str, samples: int, epochs: int | None, quick: bool) -> None:
    """Train the row ``name`` from a copy of ``cell/mle`` and write ``cell/NAME.json``."""
    import torch

    torch.set_num_threads(1)
    from seqgan.api import open_run

    run = cell / "rows" / name
    copy_run(cell / "mle", run, {"select": "final"})
    opts = {**row_options(name), **({k: v for k, v in QUICK.items() if k != "mle_epochs"} if quick else {})}
    if epochs is not None:
        opts["epochs"] = epochs
    t0 = time.perf_counter()
    open_run(run, log=lambda m: print(m, flush=True)).train(device="cpu", progress=False, **opts)
    out = {"row": name, "options": opts, "train_wall_s": round(time.perf_counter() - t0, 1),
           "final": score(run, "latest", samples)}
    (cell / f"{name}.json").write_text(json.dumps(out, indent=1))


def cells(base: Path, readings: list[str], seeds: list[int]) -> list[tuple[str, int, Path]]:
    return [(r, s, base / r / f"s{s}") for r in readings for s in seeds]


def run_grid(a: argparse.Namespace, base: Path, readings: list[str], seeds: list[int], names: list[str]) -> None:
    """Every MLE run, then every row, not done yet; ``--jobs`` processes at a time."""
    common = ["--base", str(base), "--samples", str(a.samples)] + (["--quick"] if a.quick else [])
    common += ["--epochs", str(a.epochs)] if a.epochs else []
    mle = [(f"{r}-s{s}-mle", python("replicate_organ.py", "--worker", r, str(s), "mle", *common), c / "mle.log")
           for r, s, c in cells(base, readings, seeds) if not (c / "mle.json").is_file()]
    # the first default-reading MLE run parses (and caches) the tunes with music21 alone
    first = [j for j in mle if j[0].startswith("default-")][:1]
    failed = run_pool(first, 1) + run_pool([j for j in mle if j not in first], a.jobs)
    rows = [(f"{r}-s{s}-{n}", python("replicate_organ.py", "--worker", r, str(s), n, *common), c / f"{n}.log")
            for r, s, c in cells(base, readings, seeds) if f"{r}-s{s}-mle" not in failed
            for n in names if not (c / f"{n}.json").is_file()]
    print(f"{len(rows)} rows to run, {a.jobs} at a time", flush=True)
    failed += run_pool(rows, a.jobs)
    if failed:
        print(f"{len(failed)} failed: {', '.join(failed)}", flush=True)


def collect(base: Path, reading: str, seeds: list[int], names: list[str]) -> dict[str, list[dict]]:
    """{row: [metrics of each seed done]} of one reading, with the data and MLE rows."""
    out: dict[str, list[dict]] = {k: [] for k in ("data", "MLE", *names)}  # the table's order
    for _, _, c in cells(base, [reading], seeds):
        if (c / "mle.json").is_file():
            m = json.loads((c / "mle.json").read_text())
            out.setdefault("data", []).append(m["data"])
            out.setdefault("MLE", []).append(m["MLE"])
        for n in names:
            if (c / f"{n}.json").is_file():
                out.setdefault(n, []).append(json.loads((c / f"{n}.json").read_text())["final"])
    return {k: v for k, v in out.items() if v}


def mean_std(vals: list[float]) -> tuple[float, float]:
    return statistics.mean(vals), statistics.stdev(vals) if len(vals) > 1 else 0.0


def table(rows: dict[str, list[dict]]) -> str:
    """Markdown: a line per row, mean ± std over its seeds (n seeds in the last column)."""
    lines = ["| model | " + " | ".join(COLUMNS) + " | seeds |", "|---" * (len(COLUMNS) + 2) + "|"]
    for name, runs in rows.items():
        cols = [mean_std([r[c] for r in runs]) for c in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(f"{m:.3f} ± {s:.3f}" if c != "unique" else f"{m:.1f} ± {s:.1f}"
                                                  for (m, s), c in zip(cols, COLUMNS)) + f" | {len(runs)} |")
    return "\n".join(lines)


def claims(rows: dict[str, list[dict]], lambdas: list[str]) -> list[str]:
    """The paper's claims on these rows (means over seeds): per objective, on its metric
    naive RL > every ORGAN λ > SeqGAN and MLE (SeqGAN ≈ MLE: within 2 std of the seeds or
    0.02), and diversity the other way round (naive RL < ORGAN < SeqGAN, MLE)."""
    def m(name: str, col: str) -> float | None:
        return statistics.mean(r[col] for r in rows[name]) if name in rows else None

    out = []
    for obj in OBJECTIVES:
        organ = [m(f"organ-{lam}-{obj}", obj) for lam in lambdas]
        naive, seq, mle = m(f"naive-{obj}", obj), m("seqgan", obj), m("MLE", obj)
        if None in (naive, seq, mle) or None in organ:
            out.append(f"- {obj}: rows missing")
            continue
        sd = max(statistics.stdev([r[obj] for r in rows["MLE"]]) if len(rows["MLE"]) > 1 else 0, 0.01)
        c1 = naive > max(organ)
        c2 = min(organ) > max(seq, mle)
        c3 = abs(seq - mle) <= max(2 * sd, 0.02)
        dv = [m(f"naive-{obj}", "diversity"), *[m(f"organ-{lam}-{obj}", "diversity") for lam in lambdas],
              m("seqgan", "diversity"), m("MLE", "diversity")]
        c4 = dv[0] < min(dv[1:-2]) and max(dv[1:-2]) < min(dv[-2:])
        out.append(f"- {obj}: naive RL > ORGAN: {'holds' if c1 else 'does not hold'} ({naive:.3f} vs "
                   f"{', '.join(f'{o:.3f}' for o in organ)}); ORGAN > SeqGAN, MLE: "
                   f"{'holds' if c2 else 'does not hold'} (SeqGAN {seq:.3f}, MLE {mle:.3f}); SeqGAN ≈ MLE: "
                   f"{'holds' if c3 else 'does not hold'}; diversity naive < ORGAN < SeqGAN, MLE: "
                   f"{'holds' if c4 else 'does not hold'} ({', '.join(f'{d:.3f}' for d in dv)})")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default=str(ROOT / "runs" / "organ"), help="the folder of runs and row results")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--readings", default="default,organ", help="default, organ (parser=organ)")
    ap.add_argument("--lambdas", default="0.2,0.5,0.8")
    ap.add_argument("--epochs", type=int, default=None, help="adversarial epochs [the preset's: 20]")
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="2-epoch schedule (a smoke test)")
    ap.add_argument("--table", action="store_true", help="only print the table of the rows done")
    ap.add_argument("--json", default=str(ROOT / "bench" / "results" / "organ_table3.json"))
    ap.add_argument("--worker", nargs=3, metavar=("READING", "SEED", "ROW"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    base, seeds = Path(a.base), [int(s) for s in a.seeds.split(",")]
    readings, lambdas = a.readings.split(","), a.lambdas.split(",")
    if unknown := [r for r in readings if r not in READINGS]:
        sys.exit(f"unknown reading(s) {unknown}; choose from {', '.join(READINGS)}")
    names = row_names(lambdas)
    if a.worker:
        reading, seed, name = a.worker[0], int(a.worker[1]), a.worker[2]
        cell = base / reading / f"s{seed}"
        if name == "mle":
            work_mle(cell, reading, seed, a.samples, a.quick)
        else:
            work_row(cell, name, a.samples, a.epochs, a.quick)
        return
    t0 = time.time()
    if not a.table:
        run_grid(a, base, readings, seeds, names)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    res = {"date": time.strftime("%Y-%m-%d"), "commit": commit, "quick": a.quick, "seeds": seeds,
           "epochs": a.epochs or 20, "wall_s": round(time.time() - t0), "readings": {}}
    for r in readings:
        rows = collect(base, r, seeds, names)
        res["readings"][r] = rows
        print(f"\n### reading: {r}\n\n{table(rows)}\n")
        print("\n".join(claims(rows, lambdas)))
    if not a.quick:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
