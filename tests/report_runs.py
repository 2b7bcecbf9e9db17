"""Runs shared by the snapshot, animation and report tests, each made once per session.

The music run is what ``seqgan run --preset quick`` makes of a small ABC file (T 8, 3 MLE
and 3 adversarial epochs: snapshots after every epoch), so it is also the test that the
whole pipeline ends with ``report.html``, the audio and the animation in the run. The
oracle run is a tiny ``quick`` run for text-like frames and sample lists.
"""
from __future__ import annotations

from pathlib import Path

from bad_input_contract import abc_tune
from helpers import invoke, succeeds

_MADE: dict[str, tuple[Path, str]] = {}
BODIES = ["CDEF GABc|cBAG FEDC|", "EGce gecG|FAcf afcA|", "GABc dcBA|GFED CDEF|", "ccGG AAGz|FFEE DDCz|"]


def music_run(tmp_path_factory) -> tuple[Path, str]:
    """``(run, what seqgan run printed)``: the whole pipeline on 16 small ABC tunes."""
    if "music" not in _MADE:
        d = tmp_path_factory.mktemp("report-music")
        abc = d / "tunes.abc"
        abc.write_text("".join(abc_tune(body=b, x=i) for i, b in enumerate(BODIES * 4)))
        r = invoke("run", "--preset", "quick", "--data", abc, "--out", d / "folk", "--device", "cpu")
        succeeds(r)
        _MADE["music"] = (d / "folk", r.stdout)
    return _MADE["music"]


def oracle_run(tmp_path_factory) -> Path:
    """A ``quick`` oracle run: 2 MLE epochs, 1 D round, 2 adversarial epochs."""
    if "oracle" not in _MADE:
        run = tmp_path_factory.mktemp("report-oracle") / "ids"
        succeeds(invoke("pretrain", "--data", "oracle", "--preset", "quick", "--out", run, "--epochs", "2",
                        "--device", "cpu"))
        succeeds(invoke("train", run, "--epochs", "2", "--d-pretrain-steps", "1", "--device", "cpu"))
        _MADE["oracle"] = (run, "")
    return _MADE["oracle"][0]
