"""``seqgan animate``: a GIF with exactly one frame per snapshot, in training order, of the
size the frames are drawn at (piano rolls for music, lines of samples otherwise)."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image, ImageSequence

from helpers import error_line, invoke, succeeds
from report_runs import music_run, oracle_run
from seqgan.report.animate import HEADER, frames
from seqgan.runs.rundir import RunDir
from seqgan.runs.snapshots import list_snapshots


@pytest.fixture(scope="module")
def music(tmp_path_factory):
    return music_run(tmp_path_factory)[0]


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    return oracle_run(tmp_path_factory)


def gif_frames(path):
    with Image.open(path) as im:
        assert im.format == "GIF"
        return [(f.convert("RGB").copy(), f.info.get("duration")) for f in ImageSequence.Iterator(im)], im.size


def test_seqgan_run_left_a_frame_per_snapshot(music):
    snaps = list_snapshots(music)  # quick: 3 MLE + 3 adversarial epochs, so K = 1
    assert [(s.phase, s.epoch) for s in snaps] == [("mle", e) for e in range(4)] + [("adversarial", e) for e in (1, 2, 3)]
    got, size = gif_frames(music / "progress.gif")
    assert len(got) == len(snaps) == 7
    assert size == (1280, 440 + HEADER)  # 4 x 2 panels of 3.2 x 2.2 in at 100 dpi, and the title strip
    assert [d for _, d in got] == [500] * 6 + [1500]  # 2 frames a second, the last held 3 times as long


def test_music_frames_are_the_snapshots_piano_rolls(music):
    snaps = list_snapshots(music)
    imgs = frames(RunDir(music), snaps)
    assert len(imgs) == len(snaps) and {i.size for i in imgs} == {(1280, 470)}
    dark = [int((np.asarray(img.crop((0, HEADER, 1280, 470)).convert("L")) < 40).sum()) for img in imgs]
    assert all(d > 500 for d in dark), dark  # every frame draws notes (onsets are black)
    assert imgs[0].tobytes() != imgs[-1].tobytes()


def test_text_frames_and_options(oracle, tmp_path):
    snaps = list_snapshots(oracle)  # 2 MLE epochs (0, 1, 2) and 2 adversarial ones (1, 2)
    assert len(snaps) == 5
    out = tmp_path / "a.gif"
    succeeds(invoke("animate", oracle, "--out", out, "--fps", "5"))
    got, size = gif_frames(out)
    assert len(got) == 5 and size == (1000, 220 + HEADER)  # 10 x (0.25 x 8 + 0.2) in at 100 dpi
    assert [d for _, d in got] == [200, 200, 200, 200, 600]


def test_bad_animate_requests(oracle, tmp_path):
    assert "--fps must be" in error_line(invoke("animate", oracle, "--fps", "0"))
    assert ".gif file name" in error_line(invoke("animate", oracle, "--out", tmp_path / "a.png"))
    assert "is a folder" in error_line(invoke("animate", oracle, "--out", tmp_path))
    bare = tmp_path / "bare"
    shutil.copytree(oracle, bare)
    shutil.rmtree(bare / "snapshots")  # a run made before snapshots existed
    assert "has no snapshots" in error_line(invoke("animate", bare))
    assert not (bare / "progress.gif").exists()


def test_a_sample_with_dollars_is_drawn_as_text():
    from seqgan.report.animate import _text_body

    assert _text_body(["it costs $5 and $x^{2", "\\frac{"], 2).size == (1000, 70)  # no mathtext error
