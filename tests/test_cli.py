"""End-to-end runs of the command line through click's CliRunner on tiny settings."""
from __future__ import annotations

import json
import math
import sys
import textwrap

import pytest
from helpers import invoke as _invoke
import torch
from click.testing import CliRunner

from seqgan.cli import main  # the checkout root is on seqgan.__path__

TUNE = """X:{n}
T:Tune {n}
M:4/4
L:1/8
K:C
{body}|
"""
BODIES = ["CDEF GABc|cBAG FEDC", "EGce gecG|FAcf afcA", "CEGc CEGc|DFAd DFAd", "GABc dcBA|GFED CDEF",
          "ccGG AAGz|FFEE DDCz", "EDCD EEEz|DDDz EGGz", "CDEC CDEC|EFGz EFGz", "GAGF ECz2|GAGF ECz2"]



def invoke(*args):
    return _invoke(*args, catch=False)


@pytest.fixture
def abc_file(tmp_path):
    p = tmp_path / "tunes.abc"
    p.write_text("\n".join(TUNE.format(n=i, body=b) for i, b in enumerate(BODIES * 3)))
    return p


def test_oracle_pipeline_end_to_end(tmp_path):
    run = tmp_path / "run"
    r = invoke("pretrain", "--data", "oracle", "--preset", "quick", "--out", run, "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert "pretrained" in r.output
    r = invoke("train", run, "--epochs", "2", "--device", "cpu")
    assert r.exit_code == 0, r.output
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["config"]["train"]["adv_epochs"] == 2 and cfg["seed"] == 0
    assert cfg["versions"]["torch"] == torch.__version__
    r = invoke("evaluate", run, "--metrics", "nll-oracle,nll-test", "--json", tmp_path / "e.json")
    assert r.exit_code == 0, r.output
    rows = json.loads((tmp_path / "e.json").read_text())["rows"]
    (row,) = rows.values()
    assert 0 < row["nll-oracle"] < 10 and 0 < row["nll-test"] < 10
    assert "seed 0" in r.output
    r = invoke("sample", run, "-n", "4", "--seed", "1")
    lines = r.output.strip().splitlines()
    assert len(lines) == 4 and all(len(line.split()) == 8 for line in lines)
    assert all(0 <= int(t) < 50 for line in lines for t in line.split())
    # resume with more epochs continues from 2, here with D's grouped implementation (same
    # weights, so the checkpoint carries over) and the GPU-only compile switch recorded
    r = invoke("train", run, "--epochs", "3", "--device", "cpu", "--d-impl", "grouped", "--d-compile")
    assert r.exit_code == 0 and "3 adversarial epochs" in r.output
    d_cfg = json.loads((run / "config.json").read_text())["config"]["discriminator"]
    assert d_cfg["impl"] == "grouped" and d_cfg["compile"] is True
    r = CliRunner().invoke(main, ["train", str(run), "--d-impl", "winograd"])
    assert r.exit_code == 2 and "winograd" in r.output


def test_text_pipeline_end_to_end(tmp_path):
    words = "a man rides a horse . the dog runs on the beach . two cats sleep on a red sofa .".split(" . ")
    lines = [f"{words[i % 3]} near the {['park', 'river', 'house'][i % 3]}" for i in range(80)]
    data = tmp_path / "sents.txt"
    data.write_text("\n".join(lines) + "\n")
    run = tmp_path / "text"
    r = invoke("pretrain", "--data", data, "--preset", "quick", "--test", data, "--out", run,
               "--epochs", "2", "--device", "cpu")
    assert r.exit_code == 0, r.output
    r = invoke("train", run, "--epochs", "1", "--device", "cpu")
    assert r.exit_code == 0, r.output
    r = invoke("sample", run, "-n", "3")
    assert r.exit_code == 0 and len(r.output[:-1].split("\n")) == 3  # an empty sentence is a blank line
    assert all(w.isalpha() or w == "<unk>" for w in r.output.split())
    r = invoke("evaluate", run, "--metrics", "bleu,self-bleu,nll-test", "-n", "20", "--references", data)
    assert r.exit_code == 0, r.output
    assert "bleu-2" in r.output and "self-bleu-4" in r.output


def test_music_with_plugin_objective_and_midi_export(tmp_path, abc_file, monkeypatch):
    plugin = tmp_path / "myobjs.py"
    plugin.write_text(textwrap.dedent("""
        import torch
        CALLS = []
        def high_notes(tokens, vocab):
            CALLS.append(tokens.shape)
            pitches = torch.tensor(vocab.meta["pitches"], device=tokens.device)[tokens]
            return (pitches >= 67).float().mean(1)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    run = tmp_path / "music"
    r = invoke("pretrain", "--data", abc_file, "--preset", "quick", "--out", run, "--device", "cpu",
               "--data-option", "cache=false")
    assert r.exit_code == 0, r.output
    r = invoke("train", run, "--epochs", "2", "--lambda", "0.5", "--objective", "myobjs:high_notes",
               "--duplicate-penalty", "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert sys.modules["myobjs"].CALLS, "the plug-in objective was never called"
    r = invoke("evaluate", run, "--metrics", "music,tonality", "--compare", "-n", "16")
    assert r.exit_code == 0, r.output
    assert "training data" in r.output and "MLE generator" in r.output and "diversity" in r.output
    out = tmp_path / "midi"
    r = invoke("export-midi", run, "--out", out, "-n", "3", "--tempo", "90")
    assert r.exit_code == 0, r.output
    mids = sorted(out.glob("*.mid"))
    assert len(mids) == 3 and (out / "piano_roll.png").stat().st_size > 1000
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(str(mids[0]))
    assert pm.get_tempo_changes()[1][0] == pytest.approx(90, abs=0.01)  # MIDI stores µs per beat
    # samples file -> MIDI, vocabulary found from the run the file sits in
    r = invoke("sample", run, "-n", "2", "--out", run / "samples" / "s.txt")
    assert r.exit_code == 0
    r = invoke("export-midi", run / "samples" / "s.txt", "--out", tmp_path / "midi2")
    assert r.exit_code == 0, r.output
    assert len(list((tmp_path / "midi2").glob("*.mid"))) == 2


def test_run_command_whole_pipeline_on_tiny_music(tmp_path, abc_file):
    out = tmp_path / "job"
    r = invoke("run", "--preset", "quick", "--data", abc_file, "--out", out, "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert (out / "results.json").is_file() and (out / "samples" / "piano_roll.png").is_file()
    assert len(list((out / "samples").glob("*.mid"))) == 16
    rows = json.loads((out / "results.json").read_text())
    assert set(rows) == {"training data", "MLE generator", "final generator"}


def test_help_lists_every_command():
    r = invoke("--help")
    for cmd in ("pretrain", "train", "sample", "export-midi", "evaluate", "run"):
        assert cmd in r.output


def test_text_run_without_test_set_evaluates_and_runs_what_it_can(tmp_path):
    data = tmp_path / "sents.txt"
    data.write_text("".join(f"the {['red', 'blue'][i % 2]} boat number {i % 7} sails\n" for i in range(60)))
    run = tmp_path / "t"
    r = invoke("pretrain", "--data", data, "--preset", "quick", "--out", run, "--epochs", "1", "--device", "cpu")
    assert r.exit_code == 0, r.output
    r = invoke("evaluate", run, "-n", "10", "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert "note: bleu left out (no test set and no --references); nll-test left out (no test set)" in r.stderr
    assert "self-bleu-2" in r.stdout and "distinct-1" in r.stdout and "nll-test" not in r.stdout
    r = invoke("evaluate", run, "-n", "10", "--references", data, "--device", "cpu")
    assert r.exit_code == 0 and "bleu-2" in r.stdout and "note: nll-test left out" in r.stderr
    r = invoke("evaluate", run, "--metrics", "nll-test")
    assert r.exit_code == 2 and "seqgan pretrain --test FILE" in r.stderr
    # the whole pipeline on it ends with its metrics table
    r = invoke("run", "--data", data, "--preset", "quick", "--out", tmp_path / "whole", "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert "training data" in r.stdout and (tmp_path / "whole" / "results.json").is_file()


def test_default_bleu_references_never_match_unknown_words():
    import torch

    from seqgan.datasets import Vocabulary
    from seqgan.metrics.registry import EvalContext, bleu

    v = Vocabulary(tokens=["<pad>", "<bos>", "<eos>", "<unk>", "cat", "dog"], kind="text", pad=0, bos=1,
                   eos=2, unk=3)
    test = torch.tensor([[3, 3, 3, 2], [4, 5, 3, 2]])
    unk_samples = EvalContext(torch.tensor([[3, 3, 3, 2]] * 3), v, test=test)
    assert bleu(unk_samples)["bleu-2"] < 1e-3  # "<unk> <unk> <unk>" against itself would score 1
    known = EvalContext(torch.tensor([[4, 5, 2, 0]] * 3), v, test=test)
    # known words still match: precision 1, brevity penalty exp(1 - 3/2) against the closest length 3
    assert bleu(known)["bleu-2"] == pytest.approx(math.exp(-0.5))
