"""One writer per run: a second writer is refused at once with one line naming the run and
the holder, readers go on, the first writer ends as if alone, and a SIGKILLed holder
leaves no stale lock. The first writer is a real process of the CLI held at a barrier
(tests/forkserver.py), so every step happens by construction, not by timing."""
from __future__ import annotations

import json
import signal

import pytest
import torch

import seqgan
from helpers import error_line, invoke, succeeds
from seqgan.errors import UserError
from seqgan.files import load_tensors
from seqgan.runs.checkpoints import CKPT
from seqgan.runs.lock import LOCK_NAME, RunLock

PRETRAIN = ["pretrain", "--data", "oracle", "--preset", "quick", "--seed", "3", "--epochs", "2",
            "--device", "cpu"]
TRAIN = ["--epochs", "3", "--d-pretrain-steps", "2", "--device", "cpu"]


def weights(run) -> dict[str, torch.Tensor]:
    return load_tensors(run / CKPT / "generator.safetensors")


def test_second_writer_is_refused_and_the_first_ends_as_if_alone(tmp_path, server):
    ref, run = tmp_path / "ref", tmp_path / "run"
    for r in (ref, run):
        assert server.run([*PRETRAIN, "--out", r])[0] == 0
    assert server.run(["train", ref, *TRAIN])[0] == 0

    pid = server.start(["train", run, *TRAIN], pause="rollout")  # held mid adversarial epoch 1
    assert server.next_pause()
    for r in (invoke("train", run, *TRAIN), invoke("pretrain", "--out", run, "--device", "cpu"),
              invoke("run", "--out", run, "--device", "cpu")):
        line = error_line(r)
        assert str(run) in line and f"pid {pid}" in line and "is being written by" in line
    with pytest.raises(UserError, match=f"pid {pid}"):
        seqgan.open_run(run).train(device="cpu")
    succeeds(invoke("sample", run, "-n", "2", "--device", "cpu"))  # readers need no lock
    while True:  # let the writer go on, through every later rollout
        server.resume()
        if not server.next_pause():
            break
    code, log = server.wait()
    assert code == 0, log[-2000:]
    assert json.loads((run / CKPT / "state.json").read_text())["phase"] == "done"
    a, b = weights(ref), weights(run)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_killed_holder_leaves_no_stale_lock(tmp_path, server):
    run = tmp_path / "run"
    assert server.run([*PRETRAIN, "--out", run])[0] == 0
    code, _ = server.run(["train", run, *TRAIN], kill="rollout:2")
    assert code == -signal.SIGKILL
    assert (run / LOCK_NAME).is_file()  # the file stays; the kernel dropped the lock
    with RunLock(run):  # free at once
        pass
    code, log = server.run(["train", run, *TRAIN])
    assert code == 0 and "being written" not in log, log[-2000:]


def test_the_lock_is_held_for_a_writing_call_and_released_after(tmp_path):
    run = seqgan.create_run(tmp_path / "run", data="oracle", preset="quick", epochs=1)
    seen = []

    def during(record):  # called inside the writing call: the lock is held by this process
        with pytest.raises(UserError, match="is being written by"):
            RunLock(run.path).acquire()
        seen.append(record["epoch"])

    run.pretrain(device="cpu", callbacks=[during], progress=False)
    assert seen == [1]
    RunLock(run.path).acquire().release()  # released afterwards
    assert json.loads((run.path / LOCK_NAME).read_text())["pid"] > 0
