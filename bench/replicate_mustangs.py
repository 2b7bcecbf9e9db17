"""Mustangs (Toutouh, Hemberg and O'Reilly, GECCO 2019) translated to sequences, on the CPU.

Compares, at the same total number of generator updates, the paper's methods:

=============  ====================================================================
GAN-BCE        one generator/discriminator pair, minimax (bce) generator loss
Lip-BCE        a 3×3 population (Lipizzaner), every cell the bce loss
Lip-MSE        the same with the least-squares loss
Lip-HEU        the same with the non-saturating (heuristic) loss
Mustangs       the same with a loss drawn per minibatch (seqgan, heuristic, bce, mse)
=============  ====================================================================

E-GAN (Wang et al. 2019: one generator, offspring by each loss, the fittest kept) is left
out: its selection needs a fitness of each offspring on fresh samples every step, which
is the population's cost again for a single model and adds nothing a 1×3 grid does not
show.

Data: a random oracle LSTM (SeqGAN's synthetic setting at CPU size: V, T, E and H below),
so that NLL-oracle (the oracle's NLL of 1,000 samples; lower is better) measures quality
and the exact held-out NLL (a population's mixture: logsumexp over its members) measures
coverage; distinct-4 and self-BLEU-4 measure diversity. One MLE pretraining per seed is
shared by every method. Each population runs ``--generations`` generations; the pair runs
9× as many adversarial epochs (a 3×3 generation makes 9 generator updates).

On music (``--corpus music``: 1,000 Nottingham tunes from ``../shared/data``, 32-step
windows) the columns are ORGAN's three metrics (tonality, melodicity, ratio of steps),
diversity and pitch-class entropy of 1,000 samples.

Usage::

    python bench/replicate_mustangs.py [--corpus oracle|music] [--seeds 0,1,2] [--generations 30]
        [--parallel 2] [--batched-cells]

Resumable per row: results go to ``bench/results/mustangs[-music].json`` as each row
finishes, and rows already there are skipped. Prints a Markdown table (mean ± std over
seeds).

``--batched-cells`` coevolves each population with ``seqgan coevolve --batched-cells``
(its nine cells updated as one stacked model per generation: the same draws and
decisions, equal to float rounding) and keeps its rows apart, in
``bench/results/mustangs[-music]-batched.json``. The single pair's seeds are not stacked:
``seqgan train`` (its evaluations, ``--select``, checkpoints, one global stream per run)
has no stacked counterpart, and a stacked loop of its own would no longer be the
baseline that the table compares against.
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
RESULTS = ROOT / "bench" / "results" / "mustangs.json"
METHODS = {  # name: (grid or None for one pair, generator loss)
    "GAN-BCE": (None, "bce"),
    "Lip-BCE": ("3x3", "bce"),
    "Lip-MSE": ("3x3", "mse"),
    "Lip-HEU": ("3x3", "heuristic"),
    "Mustangs": ("3x3", "random"),
}
NOTTINGHAM = ROOT.parent / "shared" / "data" / "nottingham_abc" / "nottingham.abc.txt"
CORPORA = {
    "oracle": (["--data", "oracle", "--preset", "quick", "--seq-len", "16", "--data-option", "vocab_size=200",
                "--data-option", "oracle_dim=32", "--batch-size", "64"],
               "nll-oracle,nll-test,distinct,self-bleu", ("nll-oracle", "nll-test", "distinct-4", "self-bleu-4")),
    "music": (["--data", str(NOTTINGHAM), "--preset", "quick", "--data-option", "max_tunes=1000",
               "--data-option", "window=32", "--batch-size", "64"],
              "music,nll-test", ("tonality", "melodicity", "ratio_of_steps", "diversity", "pitch_class_entropy",
                                 "nll-test")),
}
TRAIN = ["--rollout-num", "8", "--g-steps", "1", "--d-steps", "1", "--k-epochs", "1", "--d-samples", "512"]
DATA, METRICS, COLUMNS = CORPORA["oracle"]
BATCHED: list[str] = []  # ["--batched-cells"] with --batched-cells


def seqgan(*args: str, log: Path | None = None) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    with open(log or os.devnull, "a") as f:
        subprocess.run([sys.executable, "-m", "seqgan", *args], cwd=ROOT, env=env, check=True,
                       stdout=f, stderr=subprocess.STDOUT)


def mle_run(base: Path, seed: int, epochs: int) -> Path:
    run = base / f"mle-{seed}"
    if not (run / "generator-mle.safetensors").is_file():
        seqgan("pretrain", *DATA, "--seed", str(seed), "--epochs", str(epochs), "--out", str(run),
               "--device", "cpu", log=base / f"mle-{seed}.log")
    return run


def copy_run(src: Path, dst: Path) -> None:
    if not dst.exists():
        subprocess.run(["cp", "-r", str(src), str(dst)], check=True)
        (dst / ".lock").unlink(missing_ok=True)


def one_row(base: Path, method: str, seed: int, generations: int, mle: Path) -> dict[str, float]:
    grid, loss = METHODS[method]
    name = f"{method}-{seed}" + ("-batched" if BATCHED and grid else "")
    run = base / name
    copy_run(mle, run)
    log = base / f"{name}.log"
    t0 = time.perf_counter()
    if grid is None:
        seqgan("train", str(run), *TRAIN, "--g-loss", loss, "--epochs", str(9 * generations),
               "--d-pretrain-steps", "3", "--eval-every", str(9 * generations), "--device", "cpu", log=log)
    else:
        seqgan("coevolve", str(run), *TRAIN, "--grid", grid, "--g-loss", loss, "--generations",
               str(generations), "--d-pretrain", "3", "--device", "cpu", *BATCHED, log=log)
    seconds = time.perf_counter() - t0
    out = run / "eval.json"
    seqgan("evaluate", str(run), "--metrics", METRICS, "-n", "1000",
           "--json", str(out), "--device", "cpu", log=log)
    row = next(iter(json.loads(out.read_text())["rows"].values()))
    return {**{c: row[c] for c in COLUMNS}, "seconds": seconds}


def table(results: dict) -> str:
    lines = ["| method | " + " | ".join(COLUMNS) + " | seeds | minutes |", "|---" * (len(COLUMNS) + 3) + "|"]
    for method in ["MLE", *METHODS]:
        rows = [r for k, r in results.items() if k.rsplit("-", 1)[0] == method]
        if not rows:
            continue
        cells = []
        for c in COLUMNS:
            xs = [r[c] for r in rows]
            sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
            cells.append(f"{statistics.mean(xs):.3f} ± {sd:.3f}")
        minutes = statistics.mean(r.get("seconds", 0.0) for r in rows) / 60
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {len(rows)} | {minutes:.1f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", choices=sorted(CORPORA), default="oracle")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--generations", type=int, default=12)
    ap.add_argument("--mle-epochs", type=int, default=30)
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "runs" / "mustangs"))
    ap.add_argument("--batched-cells", action="store_true",
                    help="coevolve every population with --batched-cells (rows kept in their own file)")
    args = ap.parse_args()
    global DATA, METRICS, COLUMNS, RESULTS, BATCHED
    DATA, METRICS, COLUMNS = CORPORA[args.corpus]
    if args.corpus != "oracle":
        RESULTS = RESULTS.with_name(f"mustangs-{args.corpus}.json")
    base = Path(args.out) / args.corpus if args.corpus != "oracle" else Path(args.out)
    plain = RESULTS
    if args.batched_cells:
        BATCHED = ["--batched-cells"]
        RESULTS = RESULTS.with_name(RESULTS.stem + "-batched.json")
    base.mkdir(parents=True, exist_ok=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    if BATCHED and not results and plain.is_file():  # the MLE and single-pair rows do not change
        results = {k: v for k, v in json.loads(plain.read_text()).items() if k.startswith(("MLE-", "GAN-BCE-"))}
    seeds = [int(s) for s in args.seeds.split(",")]
    from concurrent.futures import ThreadPoolExecutor

    for seed in seeds:
        mle = mle_run(base, seed, args.mle_epochs)
        if f"MLE-{seed}" not in results:
            out = mle / "eval-mle.json"
            seqgan("evaluate", str(mle), "--mle", "--metrics", METRICS,
                   "-n", "1000", "--json", str(out), "--device", "cpu")
            row = next(iter(json.loads(out.read_text())["rows"].values()))
            results[f"MLE-{seed}"] = {c: row[c] for c in COLUMNS}
        todo = [m for m in METHODS if f"{m}-{seed}" not in results]
        with ThreadPoolExecutor(args.parallel) as pool:
            futures = {m: pool.submit(one_row, base, m, seed, args.generations, mle) for m in todo}
            for m, fut in futures.items():
                results[f"{m}-{seed}"] = fut.result()
                RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
                print(f"{m} seed {seed}: {results[f'{m}-{seed}']}", flush=True)
        RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
