"""``seqgan report`` and the end of ``seqgan run``: one self-contained HTML file (every
image, sound and the animation inside it as data URIs, no network resource) with the
metrics rows, tunes with their audio or samples, the animation, the configuration, the
seeds and versions. (That it renders in a browser: tests/test_report_browser.py.)"""
from __future__ import annotations

import base64
import html
import io
import json
import re
import wave

import numpy as np
import pytest
from PIL import Image

from helpers import error_line, invoke, succeeds
from report_runs import music_run, oracle_run
from seqgan.report.html import compact_wav, metrics_table
from seqgan.runs.snapshots import list_snapshots

URL = re.compile(r'\b(?:src|href)\s*=\s*"([^"]*)"', re.I)
DATA = re.compile(r'(?:src)="data:([^;]+);base64,([^"]+)"')


@pytest.fixture(scope="module")
def music(tmp_path_factory):
    return music_run(tmp_path_factory)


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    return oracle_run(tmp_path_factory)


def embedded(page: str) -> list[tuple[str, bytes]]:
    return [(mime, base64.b64decode(b64)) for mime, b64 in DATA.findall(page)]


def self_contained(page: str) -> None:
    urls = URL.findall(page)
    assert urls and all(u.startswith(("data:", "#")) for u in urls), [u[:40] for u in urls if not u.startswith("data:")]
    assert not re.search(r"https?://", page)  # no link, script, font or style from anywhere
    assert "<script" not in page.lower()


def test_seqgan_run_ends_with_report_audio_and_animation(music):
    run, printed = music
    assert printed.strip().splitlines()[-1] == f"report: {run / 'report.html'}"
    wavs = sorted((run / "audio").glob("*.wav"))
    assert len(wavs) == 8 and (run / "progress.gif").is_file()
    for w in wavs:
        with wave.open(str(w)) as f:
            assert f.getnframes() / f.getframerate() >= 16.0  # 8 bars at 120 BPM
    page = (run / "report.html").read_text(encoding="utf-8")
    self_contained(page)
    media = embedded(page)
    sounds = [data for mime, data in media if mime == "audio/wav"]
    assert len(sounds) == 8 == page.count("<audio ")
    for data, w in zip(sounds, wavs):
        with wave.open(io.BytesIO(data)) as f, wave.open(str(w)) as g:
            assert f.getnchannels() == 1 and f.getframerate() <= 22050 and f.getsampwidth() == 2
            assert abs(f.getnframes() / f.getframerate() - g.getnframes() / g.getframerate()) < 0.01
    images = [Image.open(io.BytesIO(data)) for mime, data in media if mime.startswith("image/")]
    kinds = [im.format for im in images]
    assert kinds.count("GIF") == 1 and kinds.count("PNG") == 8 + 1  # a roll per tune, the curves
    gif = next(im for im in images if im.format == "GIF")
    assert gif.n_frames == len(list_snapshots(run)) == 7
    assert gif.tobytes() == Image.open(run / "progress.gif").tobytes()
    results = json.loads((run / "results.json").read_text())
    for label, row in results.items():  # the table holds seqgan run's rows, values to 4 decimals
        assert f"<td>{label}</td>" in page
        assert all((f"<td>{v:.4f}</td>" if v is not None else "<td>n/a</td>") in page for v in row.values())
    config = json.loads(html.unescape(re.search(r"<pre>(.*?)</pre>", page, re.S).group(1)))
    assert config == json.loads((run / "config.json").read_text())["config"]
    assert "snapshot seed" in page and "torch (run made with)" in page


def test_a_text_report_and_compare(oracle, music, tmp_path):
    out = tmp_path / "r.html"
    succeeds(invoke("report", oracle, "--out", out, "-n", "5", "--compare", music[0]))
    page = out.read_text(encoding="utf-8")
    self_contained(page)
    assert page.count("<li>") == 5 and "<audio" not in page
    assert f"<td>{music[0].name}: generator</td>" in page and "<td>final generator</td>" in page
    kinds = [Image.open(io.BytesIO(d)).format for m, d in embedded(page) if m.startswith("image/")]
    assert kinds == ["GIF", "PNG"]  # the animation (5 snapshots), the curves of both runs


def test_bad_report_requests(oracle, tmp_path):
    assert "a .html file name" in error_line(invoke("report", oracle, "--out", tmp_path / "r.pdf"))
    assert "is a folder" in error_line(invoke("report", oracle, "--out", tmp_path))
    assert "-n must be" in error_line(invoke("report", oracle, "-n", "0", "--out", tmp_path / "r.html"))
    assert "does not exist" in error_line(invoke("report", oracle, "--compare", tmp_path / "nope"))
    assert not (tmp_path / "r.html").exists()


def test_metrics_table_and_compact_wav():
    assert metrics_table({"a<b": {"x": 1.23456, "y": float("nan")}, "c": {"z": None}}) == (
        "<table><thead><tr><th></th><th>x</th><th>y</th><th>z</th></tr></thead><tbody>"
        "<tr><td>a&lt;b</td><td>1.2346</td><td>n/a</td><td>n/a</td></tr>"
        "<tr><td>c</td><td>n/a</td><td>n/a</td><td>n/a</td></tr></tbody></table>")
    frames = np.array([[100, 300], [-50, 50], [7, 9], [1000, -1000], [5, 5]], dtype="<i2")  # stereo
    buf = io.BytesIO()
    with wave.open(buf, "wb") as f:
        f.setnchannels(2), f.setsampwidth(2), f.setframerate(44100), f.writeframes(frames.tobytes())
    with wave.open(io.BytesIO(compact_wav(buf.getvalue()))) as f:
        assert (f.getnchannels(), f.getframerate(), f.getnframes()) == (1, 22050, 2)
        got = np.frombuffer(f.readframes(2), dtype="<i2").tolist()
    assert got == [100, 4]  # channel means (200, 0, 8, 0), then pairs averaged; the odd frame dropped
    assert compact_wav(b"not a wav") == b"not a wav"
