"""What listening and TensorBoard cost: ``export-audio`` and the ``--tensorboard`` callback.

Side by side in one process, on a tiny music run (8 ABC tunes, 1 MLE epoch; the cost of
rendering depends on the tunes' length, not on the model):

- ``export-midi`` of 8 tunes of 8 bars (sampling, MIDI files, piano roll): the baseline;
- ``export-audio`` of the same 8 tunes with FluidSynth (when installed) and with the
  sine-wave fallback (each includes its export-midi);
- the TensorBoard callback: one record of 7 scalars (the mean over ``--records`` calls),
  and one piano-roll image of a snapshot (the mean over ``--images``), against the
  seconds of one epoch of the main job, ``seqgan run`` (preset ``folk``: 40 MLE + 30
  adversarial epochs; its wall time is ``--main-job-s``, by default the README's 6.2
  minutes on 2 CPU cores).

    python bench/bench_media.py [--repeats 3] [--main-job-s 372]

Prints a table and writes ``bench/results/media.json``.
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
sys.path.insert(0, str(ROOT))  # run from a checkout: `python bench/bench_media.py`
sys.path.insert(0, str(ROOT / "tests"))

import seqgan  # noqa: E402
from bad_input_contract import abc_tune  # noqa: E402
from seqgan.report import audio  # noqa: E402

TUNES = ["CDEF GABc|cBAG FEDC|", "EGce gecG|FAcf afcA|", "GABc dcBA|GFED CDEF|", "ccGG AAGz|FFEE DDCz|"] * 2
MAIN_JOB_EPOCHS = 40 + 30  # the folk preset's MLE + adversarial epochs


def cpu_s() -> float:
    """CPU seconds of this process and its finished children (FluidSynth), user + system."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn, repeats: int) -> tuple[float, float]:
    """The median wall time and CPU time of ``repeats`` calls of ``fn``, in seconds (on a
    shared machine the CPU time is the steadier figure)."""
    walls, cpus = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), cpu_s()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(cpu_s() - c0)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    """Measure and print (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--records", type=int, default=200)
    ap.add_argument("--images", type=int, default=5)
    ap.add_argument("--main-job-s", type=float, default=6.2 * 60)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-media-"))
    abc = tmp / "tunes.abc"
    abc.write_text("".join(abc_tune(body=b, x=i) for i, b in enumerate(TUNES)))
    run = seqgan.create_run(tmp / "run", data=str(abc), preset="quick", log=lambda m: None,
                            data_options={"window": 8, "cache": False})
    run.pretrain(epochs=1, progress=False)
    tokens = run.sample_tokens(8, seed=0, bars=8)
    rows: dict[str, float] = {}
    rows["export-midi, 8 tunes x 8 bars"] = timed(lambda: run.export_midi(tmp / "midi", tokens=tokens), args.repeats)
    fluid = audio.find_fluidsynth() and audio.find_soundfont()
    if fluid:
        rows["export-audio, FluidSynth (wav)"] = timed(lambda: run.export_audio(tmp / "fs", tokens=tokens),
                                                       args.repeats)
        rows["export-audio, FluidSynth (flac)"] = timed(
            lambda: run.export_audio(tmp / "fsf", fmt="flac", tokens=tokens), args.repeats)
    import os

    os.environ["SEQGAN_FLUIDSYNTH"] = str(tmp / "no-fluidsynth")
    rows["export-audio, sine fallback (wav)"] = timed(lambda: run.export_audio(tmp / "sine", tokens=tokens),
                                                      args.repeats)
    del os.environ["SEQGAN_FLUIDSYNTH"]

    from seqgan.report.tensorboard import TensorBoardLog, require_tensorboard

    tb = {}
    try:
        require_tensorboard()
    except seqgan.UserError as e:
        print(f"(TensorBoard not measured: {e})")
    else:
        board = TensorBoardLog(run.path, run.vocab)
        rec = {"phase": "adversarial", "epoch": 1, "metrics": {k: 0.5 for k in (
            "reward", "d_loss", "d_acc", "nll_test", "notes_per_bar", "pitch_class_entropy", "diversity")}}
        board(rec)  # the writer is made at the first record
        t0, c0 = time.perf_counter(), cpu_s()
        for e in range(args.records):
            board({**rec, "epoch": e})
        tb["record of 7 scalars"] = ((time.perf_counter() - t0) / args.records, (cpu_s() - c0) / args.records)
        snap = tokens[:4]
        tb["piano-roll image"] = timed(lambda: board.writer.add_image(
            "bench", board._piano_roll(snap), 0, dataformats="HWC"), args.images)
        board.close()
    epoch_s = args.main_job_s / MAIN_JOB_EPOCHS
    print(f"main job (seqgan run, folk): {args.main_job_s:.0f} s, {MAIN_JOB_EPOCHS} epochs, "
          f"{epoch_s:.2f} s per epoch on average")
    print(f"{'what':<40} {'wall s':>8} {'CPU s':>8}  share (by CPU s)")
    for k, (w, c) in rows.items():
        print(f"{k:<40} {w:>8.3f} {c:>8.3f}  {c / args.main_job_s:.1%} of the main job")
    for k, (w, c) in tb.items():
        print(f"TensorBoard: {k:<27} {w:>8.4f} {c:>8.4f}  {c / epoch_s:.2%} of a main-job epoch")
    out = ROOT / "bench" / "results" / "media.json"
    out.parent.mkdir(exist_ok=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=ROOT).stdout.strip()
    out.write_text(json.dumps({"date": datetime.date.today().isoformat(), "commit": commit,
                               "machine": platform.platform(), "python": platform.python_version(),
                               "fluidsynth": bool(fluid), "main_job_s": args.main_job_s, "seconds": rows,
                               "tensorboard_seconds": tb}, indent=2) + "\n")


if __name__ == "__main__":
    main()
