"""Shared plumbing of the resumable experiment grids in ``bench/`` (tune_main_job,
replicate_organ): copy a prepared run into a row atomically, and run worker commands a
few at a time with one log per row.

A row is "done" when its result file exists; the grids list the rows that are not and
hand them to :func:`run_pool`, so a grid cut short (a session's end, Ctrl-C) resumes
where it stopped: finished rows are skipped and a row cut short resumes its own run
(``seqgan train`` continues a run from its last checkpoint).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def copy_run(src: Path, dst: Path, train_fields: dict[str, Any] | None = None) -> None:
    """Copy the run ``src`` to ``dst`` (without its lock) unless ``dst`` exists, setting
    ``train_fields`` (TrainConfig fields that ``seqgan train`` has no option for) in the
    copy's config; the copy appears whole or not at all (built under ``dst.copying``)."""
    if dst.exists():
        return
    tmp = dst.with_name(dst.name + ".copying")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp, ignore=shutil.ignore_patterns(".lock"))
    if train_fields:
        from seqgan.runs.rundir import RunDir

        rd = RunDir(tmp)
        rd.config.train = replace(rd.config.train, **train_fields)
        rd.save_config()
    os.replace(tmp, dst)


def worker_env() -> dict[str, str]:
    """The environment of a worker: one thread, this checkout importable."""
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": path,
            "PYTHONUNBUFFERED": "1"}


def run_pool(jobs: list[tuple[str, list[str], Path]], parallel: int) -> list[str]:
    """Run ``(name, argv, log file)`` jobs, ``parallel`` at a time (logs appended); print a
    line as each ends; the names of those that failed."""
    todo, running, failed = list(jobs), [], []
    while todo or running:
        while todo and len(running) < parallel:
            name, argv, log = todo.pop(0)
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "a") as fh:
                p = subprocess.Popen(argv, cwd=ROOT, env=worker_env(), stdout=fh, stderr=subprocess.STDOUT)
            running.append((p, name, log, time.time()))
        time.sleep(1.0)
        for item in list(running):
            p, name, log, t0 = item
            if p.poll() is not None:
                running.remove(item)
                if p.returncode:
                    failed.append(name)
                print(f"{name}: {'done' if p.returncode == 0 else f'FAILED ({p.returncode}), see {log}'} "
                      f"in {time.time() - t0:.0f} s", flush=True)
    return failed


def python(script: str, *args: str) -> list[str]:
    """argv running the bench script ``script`` with ``args`` under this interpreter."""
    return [sys.executable, str(ROOT / "bench" / script), *args]
