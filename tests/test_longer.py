"""Samples longer than the training window: ``--length`` tokens or ``--bars`` bars, the
generator keeping its state past T; the first T tokens equal an ordinary sample of the
same seed."""
from __future__ import annotations

import pretty_midi
import pytest
import torch

import seqgan
from bad_input_contract import abc_tune
from helpers import error_line, invoke, succeeds
from seqgan.models.generator import Generator, GeneratorConfig


def test_a_longer_sample_starts_with_the_ordinary_one():
    torch.manual_seed(0)
    g = Generator(GeneratorConfig(vocab_size=30, emb_dim=8, hidden_dim=8, seq_len=6)).eval()
    short = g.sample(5, generator=torch.Generator().manual_seed(3))
    long = g.sample(5, generator=torch.Generator().manual_seed(3), length=40)
    assert short.shape == (5, 6) and long.shape == (5, 40)
    assert torch.equal(long[:, :6], short)
    assert not torch.equal(long[:, 6:12], long[:, :6])  # it goes on, it does not repeat the window


@pytest.fixture(scope="module")
def music_run(tmp_path_factory):
    abc = tmp_path_factory.mktemp("tunes") / "tunes.abc"
    abc.write_text("".join(abc_tune(body=b, x=i) for i, b in enumerate(
        ["CDEF GABc|cBAG FEDC|", "EGce gecG|FAcf afcA|", "GABc dcBA|GFED CDEF|", "ccGG AAGz|FFEE DDCz|"] * 4)))
    run = tmp_path_factory.mktemp("runs") / "music"
    succeeds(invoke("pretrain", "--data", abc, "--preset", "quick", "--epochs", "1", "--out", run,
                    "--data-option", "window=8", "--data-option", "cache=false", "--device", "cpu"))
    return run


def test_bars_and_length_through_the_cli_and_api(tmp_path, music_run):
    run = seqgan.open_run(music_run)
    spb = run.vocab.meta["steps_per_bar"]  # 4/4 at 4 steps a quarter: 16
    ordinary = run.sample_tokens(3, seed=7)
    eight_bars = run.sample_tokens(3, seed=7, bars=8)
    assert eight_bars.shape == (3, 8 * spb) and torch.equal(eight_bars[:, :ordinary.shape[1]], ordinary)
    r = invoke("sample", music_run, "-n", "2", "--length", "50", "--seed", "7")
    assert r.exit_code == 0 and [len(line.split()) for line in r.output.splitlines()] == [50, 50]
    out = tmp_path / "midi"
    succeeds(invoke("export-midi", music_run, "--out", out, "-n", "2", "--bars", "8", "--tempo", "120"))
    pm = pretty_midi.PrettyMIDI(str(sorted(out.glob("*.mid"))[0]))
    # 8 bars of 4/4 at 120 bpm last 16 s; a tune ends at its last note's end (rests trimmed)
    assert 4.0 < pm.get_end_time() <= 16.0 + 1e-6


def test_bad_lengths_are_one_line(music_run, tmp_path):
    assert "--length and --bars" in error_line(invoke("sample", music_run, "--length", "9", "--bars", "2"))
    assert "--length must be" in error_line(invoke("sample", music_run, "--length", "0"))
    assert "--bars must be" in error_line(invoke("sample", music_run, "--bars", "-1"))
    oracle = tmp_path / "o"
    succeeds(invoke("pretrain", "--data", "oracle", "--preset", "quick", "--epochs", "1", "--out", oracle,
                    "--device", "cpu"))
    assert "--bars is for music" in error_line(invoke("sample", oracle, "--bars", "2"))
