"""What snapshots, the animation and the report add to the main job (``seqgan run``).

Side by side in one process, on a finished run (by default ``runs/folk``, as ``seqgan run``
leaves it; the report's metrics rows are read from its results.json, which ``seqgan run``
computes anyway):

- one snapshot (sampling ``snapshot_samples`` sequences with the snapshot seed, writing
  the text and tokens), the mean over ``--repeats``, times the run's number of snapshots;
- the animation (``seqgan animate``: every snapshot drawn, the GIF encoded);
- the audio ``seqgan run`` writes (8 tunes of 8 bars through ``Run.export_audio``), and
  the report built from it (piano rolls, learning curves, embedding);

each against the main job's wall time (``--main-job-s``, the measured wall time of the
whole ``seqgan run``; by default the run's training seconds, which underestimates it).
Snapshots are timed into a temporary folder, so the run is left as it was.

    python bench/bench_report.py [--run runs/folk] [--repeats 3] [--main-job-s 372]

Prints a table and writes ``bench/results/report.json``.
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def cpu() -> float:
    """CPU seconds of this process and its finished children (FluidSynth), user + system."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn, repeats: int) -> tuple[tuple[float, float], object]:
    """The median (wall, CPU) seconds of ``repeats`` calls of ``fn``, and its last result."""
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), cpu()
        out = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(cpu() - c0)
    return (statistics.median(walls), statistics.median(cpus)), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", default=str(ROOT / "runs" / "folk"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--main-job-s", type=float, default=None,
                    help="wall seconds of the whole `seqgan run` [default: the run's training seconds]")
    ap.add_argument("--main-job-cpu-s", type=float, default=None,
                    help="CPU seconds (user + system) of the whole `seqgan run` (on a busy machine the "
                         "fairer yardstick) [default: not shown]")
    args = ap.parse_args()

    import torch

    import seqgan
    from seqgan.evaluation import load_generator
    from seqgan.report.animate import gif_bytes
    from seqgan.report.html import make_report
    from seqgan.runs.snapshots import Snapshotter, list_snapshots

    torch.set_num_threads(1)
    run = seqgan.open_run(args.run, log=lambda m: None)
    snaps = list_snapshots(run.path)
    if not snaps:
        sys.exit(f"{run.path} has no snapshots: make it with this version's `seqgan run`")
    rows = json.loads((run.path / "results.json").read_text())
    seconds = float(run.state["seconds"])
    job = args.main_job_s or seconds
    G = load_generator(run.dir, "latest", "cpu")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        shots = Snapshotter(tmp, run.vocab, run.config)
        one, _ = timed(lambda: shots.take("mle", 0, G, 1), args.repeats)  # epoch 0: always due
        gif_s, gif = timed(lambda: gif_bytes(run.dir), args.repeats)
        (tmp / "progress.gif").write_bytes(gif)
        tunes = run.sample_tokens(16, 1.0, 0, bars=8)[:8]
        audio_s, wavs = timed(lambda: run.export_audio(tmp / "audio", 8, tokens=tunes), 1)
        report_s, page = timed(lambda: make_report(run, tmp / "report.html", rows=rows, tokens=tunes,
                                                   audio=wavs, animation=tmp / "progress.gif"), args.repeats)
        size = page.stat().st_size
    pieces = [("one snapshot", one), (f"all {len(snaps)} snapshots", tuple(x * len(snaps) for x in one)),
              ("animation (GIF)", gif_s), ("audio: 8 tunes of 8 bars", audio_s),
              ("report (rolls, curves, embedding)", report_s)]
    total = tuple(sum(p[1][k] for p in pieces[1:]) for k in (0, 1))
    pieces.append(("all of it", total))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    cpu_job = args.main_job_cpu_s
    print(f"run {run.path}: preset {run.config.preset}, {len(snaps)} snapshots of "
          f"{run.config.train.snapshot_samples}, training {seconds:.0f} s; main job {job:.0f} s wall"
          + (f", {cpu_job:.0f} s CPU" if cpu_job else ""))
    print("| piece | wall s | share of the job's wall time | CPU s | share of the job's CPU time |")
    print("|---|---|---|---|---|")
    for name, (w, c) in pieces:
        print(f"| {name} | {w:.3f} | {100 * w / job:.2f} % | {c:.3f} | "
              + (f"{100 * c / cpu_job:.2f} % |" if cpu_job else "|"))
    print(f"report.html: {size / 1e6:.1f} MB")
    out = {"date": datetime.date.today().isoformat(), "commit": commit, "machine": platform.machine(),
           "torch": torch.__version__, "run": str(run.path), "preset": run.config.preset,
           "snapshots": len(snaps), "training_s": seconds, "main_job_s": job, "main_job_cpu_s": cpu_job,
           "wall_cpu_s": {name: list(v) for name, v in pieces}, "share_wall": total[0] / job,
           "share_cpu": total[1] / cpu_job if cpu_job else None, "report_bytes": size}
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "report.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
