"""``seqgan plot``: learning curves as PNG or SVG files that open as images of the size
asked for, phases placed in order, other runs overlaid, bad requests one line."""
from __future__ import annotations

import shutil
import struct
import xml.etree.ElementTree as ET

from helpers import error_line, invoke, succeeds
from seqgan.report.plots import curves


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_curves_place_the_phases_in_order():
    recs = [{"phase": "mle", "epoch": e, "metrics": {"loss": 3.0 - e}} for e in (1, 2, 3)]
    recs += [{"phase": "d-pretrain", "epoch": 1, "metrics": {"d_acc": 0.6}}]
    recs += [{"phase": "coevolve", "epoch": 1, "cell": c, "metrics": {"score": s}} for c, s in ((0, 2.0), (1, 4.0))]
    recs += [{"phase": "mle", "epoch": 4, "metrics": {"loss": None}}, {"junk": True}]
    got, spans = curves(recs)
    assert got["loss"] == [(1, 2.0), (2, 1.0), (3, 0.0)]
    assert got["d_acc"] == [(4, 0.6)] and got["score"] == [(5, 3.0)]  # the mean over cells
    assert spans == {"mle": (0, 3), "d-pretrain": (3, 4), "coevolve": (4, 5)}  # (a null is no point)


def test_plot_png_svg_and_compare(tmp_path, quick_run_factory):
    run = quick_run_factory(tmp_path / "run")
    other = tmp_path / "other"
    shutil.copytree(run, other)
    succeeds(invoke("train", other, "--epochs", "3", "--device", "cpu"))
    succeeds(invoke("plot", run, "--compare", other))
    w, h = png_size(run / "learning-curves.png")
    assert w == 1100 and h > 500  # 11 in at 100 dpi; one row of panels per two metrics
    svg = tmp_path / "c.svg"
    succeeds(invoke("plot", other, "--out", svg))
    assert ET.parse(svg).getroot().tag.endswith("svg")


def test_bad_plot_requests(tmp_path, quick_run_factory):
    run = quick_run_factory(tmp_path / "run")
    assert ".png or .svg" in error_line(invoke("plot", run, "--out", tmp_path / "x.jpg"))
    assert "is a folder" in error_line(invoke("plot", run, "--out", tmp_path))
    assert "does not exist" in error_line(invoke("plot", run, "--compare", tmp_path / "nope"))
    (run / "metrics.jsonl").write_text("")
    assert "no metrics yet" in error_line(invoke("plot", run))
