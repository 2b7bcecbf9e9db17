"""A full disk while a run trains: whatever write fails, the previous checkpoint and the
metrics log stay intact and readable, no partial temporary folder is left, the command
ends with one line naming the run and the error, and the same command resumes to the
result of an uninterrupted run once there is space again.

The fault is injected at every write point of a ``train`` command in turn (a hook in
:mod:`seqgan.files`, before each file's bytes are written), and for real on a small tmpfs
when the tests run as root and may mount one.
"""
from __future__ import annotations

import errno
import gc
import json
import os
import shutil
import subprocess
import uuid

import pytest
import torch

import seqgan.files as files
from helpers import error_line, invoke, succeeds
from seqgan.runs.checkpoints import CKPT, CKPT_TMP
from seqgan.runs.rundir import RunDir

TRAIN = ["--epochs", "2", "--d-pretrain-steps", "1", "--device", "cpu"]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    run = tmp_path_factory.mktemp("full") / "run"
    succeeds(invoke("pretrain", "--data", "oracle", "--preset", "quick", "--seed", "4", "--epochs", "1",
                    "--out", run, "--device", "cpu"))
    return run


@pytest.fixture(scope="module")
def finished(pretrained, tmp_path_factory):
    """The uninterrupted run, and the paths of the writes its train command made."""
    run = tmp_path_factory.mktemp("ref") / "run"
    shutil.copytree(pretrained, run)
    writes = []
    files.WRITE_HOOKS.append(writes.append)
    try:
        succeeds(invoke("train", run, *TRAIN))
    finally:
        files.WRITE_HOOKS.remove(writes.append)
    return run, writes


def assert_intact(run):
    """The latest checkpoint verifies and the metrics log holds every line it has seen."""
    ck = RunDir(run).checkpoints.load(warn=lambda m: None)
    assert ck is not None
    assert not (run / CKPT_TMP).exists(), "a partial checkpoint folder was left"
    assert not list(run.glob(".*.tmp"))
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert all(json.loads(line) for line in lines)  # no line cut short
    assert len(lines) >= ck[0]["metrics_lines"]


def test_every_write_point_fails_cleanly_and_resumes(tmp_path, pretrained, finished):
    ref, writes = finished
    assert len(writes) >= 20 and any(p.name == "metrics.jsonl" for p in writes)
    want = files.load_tensors(ref / CKPT / "generator.safetensors")
    for n in range(1, len(writes) + 1):
        run = tmp_path / f"run{n}"
        shutil.copytree(pretrained, run)
        calls = []

        def full(path, n=n):
            calls.append(path)
            if len(calls) == n:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

        files.WRITE_HOOKS.append(full)
        try:
            line = error_line(invoke("train", run, *TRAIN))
        finally:
            files.WRITE_HOOKS.remove(full)
        assert str(run) in line and "No space left on device" in line, (n, writes[n - 1], line)
        assert_intact(run)
        if n % 4 == 1 or n == len(writes):  # resuming is the same for every point; a sample of them
            succeeds(invoke("train", run, *TRAIN))
            got = files.load_tensors(run / CKPT / "generator.safetensors")
            assert all(torch.equal(want[k], got[k]) for k in want), n
        shutil.rmtree(run)


def _mount_tmpfs(path, size: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       capture_output=True)
    return r.returncode == 0


def test_a_real_full_disk(tmp_path, pretrained, finished):
    mnt = tmp_path / f"small-{uuid.uuid4().hex[:6]}"
    if not _mount_tmpfs(mnt, "4m"):
        pytest.skip("needs root and a mountable tmpfs to fill a real file system")
    try:
        run = mnt / "run"
        shutil.copytree(pretrained, run)
        stat = os.statvfs(mnt)
        filler = mnt / "filler"
        # leave less room than one checkpoint needs
        free = stat.f_bavail * stat.f_frsize
        with open(filler, "wb") as f:
            f.write(b"\0" * max(free - 8 * 1024, 0))
        line = error_line(invoke("train", run, *TRAIN))
        assert str(run) in line and "No space left on device" in line
        assert_intact(run)
        filler.unlink()
        succeeds(invoke("train", run, *TRAIN))
        ref = finished[0]
        a, b = (files.load_tensors(r / CKPT / "generator.safetensors") for r in (ref, run))
        assert all(torch.equal(a[k], b[k]) for k in a)
    finally:
        gc.collect()  # (loaded safetensors files stay memory-mapped until their tensors go)
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
