"""Data options (``--data-option KEY=VALUE``) of text and music sources, and MIDI export limits.

Every bad value is one :class:`UserError` naming the option (never a traceback, never a
silent fix); every good value still works; the tempo and grid limits of MIDI are checked
before anything is written; exported files get the usual file mode.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from seqgan.datasets.config import DataConfig
from seqgan.datasets import load_corpus
from seqgan.datasets import music as M
from seqgan.datasets import text as TX
from seqgan.datasets.midi import (MAX_TEMPO, MIN_TEMPO, export_samples, ticks_per_quarter,
                                  tokens_to_midi)
from seqgan.datasets.music_parse import MAX_STEPS_PER_QUARTER
from seqgan.datasets.music_parse import _options as music_options
from seqgan.datasets.options import check_options, integer
from seqgan.errors import UserError

try:  # installed: cli.py is seqgan/_cli/cli.py; a checkout maps it to seqgan.cli
    from seqgan._cli.cli import main
except ModuleNotFoundError:
    from seqgan.cli import main

VOCAB = M.music_vocab(48, 84)
MELODY = "C4 _ E4 _ G4 _ C5 _ B4 _ G4 _ E4 _ C4 _"
ABC = "X:1\nT:One\nM:4/4\nL:1/8\nK:C\nCDEF GABc | cBAG FEDC | CDEF GABc | c8 |]\n"


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQGAN_CACHE_DIR", str(tmp_path / "cache"))


def enc(melody: str, vocab=VOCAB) -> torch.Tensor:
    return torch.tensor([vocab.tokens.index(t) for t in melody.split()])


def text_cfg(**options) -> DataConfig:
    return DataConfig(spec="x", options=options)


def one_line_error(fn, *args, **kw) -> str:
    with pytest.raises(UserError) as e:
        fn(*args, **kw)
    msg = str(e.value)
    assert msg and "\n" not in msg
    return msg


# -- text options -----------------------------------------------------------------------
TEXT_BAD = [
    ("tokenizer", [1]), ("tokenizer", "punkt"), ("tokenizer", None), ("tokenizer", 3),
    ("lowercase", "no"), ("lowercase", "False"), ("lowercase", "true"), ("lowercase", 1),
    ("lowercase", None),
    ("min_freq", True), ("min_freq", 0), ("min_freq", 2.5), ("min_freq", "abc"), ("min_freq", None),
    ("max_vocab", True), ("max_vocab", 0), ("max_vocab", 2.5), ("max_vocab", "abc"),
    ("max_vocab", [5]),
    ("len_percentile", "abc"), ("len_percentile", None), ("len_percentile", 0),
    ("len_percentile", 100.5), ("len_percentile", True), ("len_percentile", math.nan),
    ("len_percentile", math.inf), ("len_percentile", [50]),
    ("max_len", 1), ("max_len", "abc"), ("max_len", 2.5), ("max_len", True), ("max_len", None),
]


@pytest.mark.parametrize("name,value", TEXT_BAD)
def test_text_bad_option_values(name, value):
    msg = one_line_error(TX._options, text_cfg(**{name: value}))
    assert f"option {name} must be" in msg and "got" in msg


def test_text_bad_value_through_load(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("a b\n")
    msg = one_line_error(TX.load, "text", str(f), text_cfg(len_percentile="abc"), None, 0)
    assert msg == "text option len_percentile must be a number in (0, 100], got 'abc'"
    msg = one_line_error(TX.load, "text", str(f), text_cfg(max_vocab="abc"), None, 0)
    assert msg == "text option max_vocab must be an integer >= 1 or null, got 'abc'"


def test_text_unknown_option_lists_valid_ones():
    msg = one_line_error(TX._options, text_cfg(vocab_size=10))
    assert "vocab_size" in msg and all(k in msg for k in TX.DEFAULT_OPTIONS)


@pytest.mark.parametrize("name,value", [
    ("tokenizer", "treebank"), ("lowercase", True), ("lowercase", False), ("min_freq", 2),
    ("max_vocab", None), ("max_vocab", 7), ("len_percentile", 90), ("len_percentile", 99.5),
    ("len_percentile", 100), ("max_len", 2),
])
def test_text_good_option_values(name, value):
    opts = TX._options(text_cfg(**{name: value}))
    assert opts[name] == value and type(opts[name]) is type(value)
    assert set(opts) == set(TX.DEFAULT_OPTIONS)


def test_lowercase_false_keeps_case(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("Hello hello HELLO world\nhello World\n")
    kept = TX.load("text", str(f), text_cfg(lowercase=False), None, 0).vocab
    assert {"Hello", "hello", "HELLO", "world", "World"} <= set(kept.tokens)
    assert kept.meta["lowercase"] is False
    low = TX.load("text", str(f), text_cfg(lowercase=True), None, 0).vocab
    words = set(low.tokens) - set(TX.SPECIALS)
    assert words == {"hello", "world"} and low.meta["lowercase"] is True


def test_tokenizer_from_a_damaged_vocabulary_is_one_line():
    # a vocab.json edited by hand: the tokenizer name is a list (unhashable for the cache)
    msg = one_line_error(TX.tokenize, "a b", {"tokenizer": [1]})
    assert "tokenizer" in msg


# -- music options ----------------------------------------------------------------------
MUSIC_BAD = [
    ("steps_per_quarter", "abc"), ("steps_per_quarter", 2.5), ("steps_per_quarter", 0),
    ("steps_per_quarter", True), ("steps_per_quarter", 280), ("steps_per_quarter", 97),
    ("steps_per_quarter", None),
    ("window", "abc"), ("window", 0), ("window", -3), ("window", 1), ("window", 2.5),
    ("window", None),
    ("stride", "abc"), ("stride", 0), ("stride", -1), ("stride", 2.5), ("stride", True),
    ("min_notes", "abc"), ("min_notes", 0), ("min_notes", 1.5), ("min_notes", None),
    ("max_tunes", "abc"), ("max_tunes", 2.5), ("max_tunes", 0), ("max_tunes", True),
    ("pitch_range", "abc"), ("pitch_range", "6072"), ("pitch_range", [60]),
    ("pitch_range", [60, 65]), ("pitch_range", [-1, 60]), ("pitch_range", [60, 128]),
    ("pitch_range", [72, 60]), ("pitch_range", [60.0, 72.0]), ("pitch_range", [48, 60, 72]),
    ("pitch_range", [True, 72]),
    ("test_fraction", 1), ("test_fraction", -0.1), ("test_fraction", "abc"),
    ("test_fraction", None), ("test_fraction", math.nan),
    ("instrument", True), ("instrument", -1), ("instrument", [1]), ("instrument", ""),
    ("instrument", 1.5),
    ("transpose", "d"), ("transpose", None), ("key", 3), ("key", "major"),
    ("cache", "abc"), ("cache", 1), ("cache", None), ("cache_dir", 5), ("cache_dir", ""),
    ("workers", "abc"), ("workers", 0), ("workers", 1.5), ("workers", True), ("workers", 10 ** 6),
    ("progress", "yes"), ("progress", 0),
]


@pytest.mark.parametrize("name,value", MUSIC_BAD)
def test_music_bad_option_values(name, value):
    msg = one_line_error(music_options, {name: value})
    assert f"option {name} must be" in msg and "got" in msg


def test_music_unknown_option_lists_valid_ones():
    msg = one_line_error(music_options, {"windoww": 8})
    assert "windoww" in msg and all(k in msg for k in M.OPTIONS)


@pytest.mark.parametrize("name,value", [
    ("steps_per_quarter", 1), ("steps_per_quarter", MAX_STEPS_PER_QUARTER), ("window", 2),
    ("stride", None), ("stride", 3), ("min_notes", 4), ("max_tunes", None), ("max_tunes", 1),
    ("pitch_range", None), ("pitch_range", [48, 84]), ("pitch_range", [0, 11]),
    ("pitch_range", [116, 127]), ("test_fraction", 0), ("test_fraction", 0.5),
    ("instrument", None), ("instrument", 0), ("instrument", "piano"), ("transpose", "augment"),
    ("key", "estimate"), ("cache", False), ("cache_dir", "some/where"), ("workers", None),
    ("workers", 2), ("progress", False),
])
def test_music_good_option_values(name, value):
    opts = music_options({name: value})
    assert opts[name] == value and set(opts) == set(M.OPTIONS)


def test_checker_rejects_bools_and_fractions_as_integers():
    spec = {"n": integer(1)}
    assert check_options("x", {"n": 3}, {"n": 1}, spec) == {"n": 3}
    assert check_options("x", None, {"n": 1}, spec) == {"n": 1}
    for bad in (True, False, 2.0, 2.5, "2", None):
        with pytest.raises(UserError, match="x option n must be an integer >= 1, got"):
            check_options("x", {"n": bad}, {"n": 1}, spec)


@pytest.fixture
def midi_file(tmp_path) -> Path:
    return export_samples(VOCAB, enc(MELODY)[None], tmp_path / "mid", prefix="tune")[0]


@pytest.fixture
def abc_file(tmp_path) -> Path:
    f = tmp_path / "tunes.abc"
    f.write_text(ABC)
    return f


def music_cfg(**options) -> DataConfig:
    options.setdefault("workers", 1)
    return DataConfig(spec="x", options={"cache": False, **options})


def test_stride_zero_is_refused_not_replaced(midi_file):
    msg = one_line_error(load_corpus, str(midi_file), music_cfg(window=4, stride=0))
    assert "stride" in msg
    c = load_corpus(str(midi_file), music_cfg(window=4, stride=2, test_fraction=0), seed=0)
    assert c.info["stride"] == 2 and c.train.shape == (8, 4)  # 16 steps: starts 0, 2, ..., 14


def test_instrument_applies_to_midi_only(midi_file, abc_file, tmp_path):
    c = load_corpus(str(midi_file), music_cfg(window=8, instrument=0, test_fraction=0), seed=0)
    assert c.train.shape[1] == 8
    msg = one_line_error(load_corpus, str(abc_file), music_cfg(instrument="piano"))
    assert "instrument" in msg and "ABC" in msg and "tunes.abc" in msg
    folder = tmp_path / "abc-only"
    folder.mkdir()
    (folder / "a.abc").write_text(ABC)
    assert "instrument" in one_line_error(load_corpus, str(folder), music_cfg(instrument=0))
    # next to a MIDI file the option means something again
    (folder / "m.mid").write_bytes(midi_file.read_bytes())
    c = load_corpus(str(folder), music_cfg(window=8, instrument=0, test_fraction=0), seed=0)
    assert c.info["tunes"] == 2


def test_instrument_refused_for_an_abc_corpus():
    pytest.importorskip("music21")
    msg = one_line_error(load_corpus, "music21:essen", music_cfg(instrument=0, max_tunes=2))
    assert "instrument" in msg and "music21:essen" in msg


# -- steps_per_quarter: every accepted grid exports -------------------------------------
def test_every_accepted_grid_has_a_valid_midi_resolution():
    for spq in range(1, MAX_STEPS_PER_QUARTER + 1):
        music_options({"steps_per_quarter": spq})
        ticks = ticks_per_quarter(spq)
        assert ticks % spq == 0 and ticks <= 32767
    for bad in (0, MAX_STEPS_PER_QUARTER + 1, 280, 2.5, True):
        assert "steps_per_quarter" in one_line_error(ticks_per_quarter, bad)


@pytest.mark.parametrize("spq", [7, 95, MAX_STEPS_PER_QUARTER])
def test_fine_grids_export_and_read_back(midi_file, tmp_path, spq):
    import pretty_midi

    c = load_corpus(str(midi_file), music_cfg(steps_per_quarter=spq, window=spq * 2,
                                              test_fraction=0), seed=0)
    assert c.vocab.meta["steps_per_quarter"] == spq
    path = export_samples(c.vocab, c.train[:1], tmp_path / f"out{spq}")[0]
    pm = pretty_midi.PrettyMIDI(str(path))
    assert pm.resolution == ticks_per_quarter(spq)
    first = pm.instruments[0].notes[0]
    step = 60 / 120 / spq  # seconds per grid step at the default tempo
    # an eighth note (0.25 s), quantised to the grid: within one step
    assert first.pitch == 60 and first.end - first.start == pytest.approx(0.25, abs=step)


# -- tempo ------------------------------------------------------------------------------
@pytest.mark.parametrize("tempo", [MIN_TEMPO, 3.6, 120, 6000, MAX_TEMPO / 2, MAX_TEMPO])
def test_valid_tempo_near_both_ends_reads_back(tmp_path, tempo):
    import pretty_midi

    path = export_samples(VOCAB, enc(MELODY)[None], tmp_path / "t", tempo=tempo)[0]
    _, tempi = pretty_midi.PrettyMIDI(str(path)).get_tempo_changes()
    assert len(tempi) == 1 and tempi[0] == pytest.approx(tempo, rel=0.01)


@pytest.mark.parametrize("tempo", [math.inf, -math.inf, math.nan, 0, -120, 3, 3.57, 1e308,
                                   MAX_TEMPO * 1.01, "fast", True, None])
def test_bad_tempo_is_one_line(tmp_path, tempo):
    msg = one_line_error(tokens_to_midi, VOCAB, enc(MELODY), tempo=tempo)
    assert "tempo" in msg and "3.5763" in msg and "60000000" in msg
    out = tmp_path / "never"
    assert "tempo" in one_line_error(export_samples, VOCAB, enc(MELODY)[None], out, tempo=tempo)
    assert not out.exists()


@pytest.mark.parametrize("kw,words", [({"program": 128}, "program"), ({"program": 1.5}, "program"),
                                      ({"velocity": 0}, "velocity"), ({"velocity": 200}, "velocity")])
def test_bad_program_and_velocity(kw, words):
    assert words in one_line_error(tokens_to_midi, VOCAB, enc(MELODY), **kw)


def test_exported_midi_has_the_usual_file_mode(tmp_path):
    normal = tmp_path / "normal.txt"
    normal.write_text("x")
    path = export_samples(VOCAB, enc(MELODY)[None], tmp_path / "mid")[0]
    assert os.stat(path).st_mode & 0o777 == os.stat(normal).st_mode & 0o777
    assert not [p for p in path.parent.iterdir() if p.suffix == ".tmp"]  # no temporary left


# -- end to end through the CLI ---------------------------------------------------------
@pytest.mark.parametrize("kind,option,words", [
    ("text", "lowercase=no", "lowercase"),
    ("text", "tokenizer=[1]", "tokenizer"),
    ("midi", "steps_per_quarter=abc", "steps_per_quarter"),
    ("abc", "instrument=piano", "instrument"),
])
def test_cli_bad_data_option_leaves_no_run(tmp_path, midi_file, abc_file, kind, option, words):
    data = {"midi": midi_file, "abc": abc_file}.get(kind)
    if data is None:
        data = tmp_path / "t.txt"
        data.write_text("a b c\nb c d\n")
    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["pretrain", "--preset", "quick", "--data", str(data),
                                  "--data-option", option, "--out", str(out), "--device", "cpu"])
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert r.exit_code == 2, r.output[-2000:]
    assert "Traceback" not in r.output
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len([line for line in lines if line.startswith("error:")]) == 1
    assert lines[-1].startswith("error: ") and words in lines[-1], lines
    assert not out.exists() and not list(tmp_path.glob(".*.creating"))
