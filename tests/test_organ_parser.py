"""``--data-option parser=organ``: ORGAN's character scanner on hand-made ABC (chord symbols,
lines that start with a quote, accidentals, bars, the carried state, the lost first line and
last tune), hand-traced token by token, and the tunes it gives the time-grid pipeline."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from seqgan.datasets import load_corpus
from seqgan.datasets import music_readers as P
from seqgan.datasets.config import DataConfig
from seqgan.datasets.music_organ import (NOTE_NAMES, PITCHES, organ_items, organ_note_names,
                                         organ_notes, organ_songs, organ_vocab_size)
from seqgan.datasets.music_parse import parse_tunes
from seqgan.errors import UserError
from seqgan.metrics.music import music_metrics

H = P.G_HOLD

# line 0 is music but ORGAN throws the first line away; lines starting with '"' are skipped
# whole; the chord letters of "Em" inside a line become notes; tune 3 is never kept
ABC = """\
abc|
X:1
T:Test One
M:4/4
L:1/8
K:G
"G"GABc "D7"d2 B|
"Am"cBAG A4|
GE"Em"ED ^CD=F2|
X:2
T:Second
L:1/4
R:reel
A,2c'3 d/2e|
A3/2B|
c4||
X:3
T:Lost
L:1/8
K:C
CDEF|
"""

# hand trace of ORGAN's scanner (see seqgan.datasets.music_organ):
# "GE"Em"ED ^CD=F2|": G E, quotes and m skipped so E (of Em) is a note, E D; ^ closes D and
# swallows C and D; = closes "^" and swallows F; 2 closes "=2"; | emits "" and waits
TUNE1 = ["G", "E", "E", "E", "D", "^", "=2", ""]
# the pending "|" of tune 1 comes out in tune 2; "R:reel" is scanned (R pending, ':' makes
# "|R:", r and l skipped, e e notes); "," and "'" join their note, a digit closes it;
# "/2" after A3: '/' pending, 2 dropped, B deletes the '/' and is lost; "||" is one token
TUNE2 = ["|R:", "e", "e", "A,2", "c'3", "d/2", "e", "", "|", "A3", "", "", "|", "c4", "", "||"]


def cfg(tmp_path: Path, **options) -> DataConfig:
    options = {"workers": 1, "cache_dir": str(tmp_path / "cache"), "progress": False, **options}
    return DataConfig(spec="x", options=options)


def test_organ_token_stream_by_hand():
    songs = organ_songs(ABC)
    assert [s.tokens for s in songs] == [[], TUNE1, TUNE2]  # tune 3 lost, line 0 dropped
    assert [s.ref for s in songs] == [None, "1", "2"]
    assert [(s.title, s.unit, s.meter) for s in songs[1:]] == [("Test One", "1/8", "4/4"),
                                                               ("Second", "1/4", None)]
    assert organ_note_names(TUNE1) == ["G", "E", "E", "E", "D"]
    assert organ_note_names(TUNE2) == ["e", "e", "A,", "c'", "e", "A", "c"]
    # ORGAN's build_vocab: distinct tokens + "^" (start; already a token here) + "_" + "hi"
    assert organ_vocab_size(songs) == len(set(TUNE1) | set(TUNE2) | {"_", "hi"})


def test_crlf_and_the_first_line():
    assert [s.tokens for s in organ_songs(ABC.replace("\n", "\r\n"))] == [[], TUNE1, TUNE2]
    assert organ_songs("X:1\nCDEF|\nX:2\nGABc|\n")[0].tokens == ["C", "D", "E", "F", ""]  # X:1 was line 0
    assert organ_songs("X:1\n") == [] and organ_songs("") == []


def test_pitch_names_and_lengths():
    assert len(NOTE_NAMES) == 28 and PITCHES["C"] == 60 and PITCHES["c"] == 72
    assert PITCHES["C,"] == 48 and PITCHES["b'"] == 95 and PITCHES["A,"] == 57
    items = organ_items(ABC, "t.abc")
    assert [name for _, name, _ in items] == ["t.abc#(before the first X line)", "t.abc#1 (Test One)",
                                              "t.abc#2 (Second)"]
    notes, meta = organ_notes(items[2][2])  # L:1/4: a unit is one quarter note
    assert notes == [(0.0, 1.0, 76), (1.0, 1.0, 76), (2.0, 2.0, 57), (4.0, 3.0, 84), (7.0, 1.0, 76),
                     (8.0, 3.0, 69), (11.0, 4.0, 72)]
    assert meta == {"time_signature": None, "sig_pc": None, "tonic_pc": None}
    notes, meta = organ_notes(items[1][2])  # L:1/8, natural notes only (no key signature)
    assert [p for _, _, p in notes] == [67, 64, 64, 64, 62] and {d for _, d, _ in notes} == {0.5}
    assert meta["time_signature"] == "4/4"
    with pytest.raises(ValueError, match="fewer than two"):
        organ_notes(items[0][2])


def test_parse_item_grid_and_skips():
    items = organ_items(ABC, "t.abc")
    name, grid, meta, err = P.parse_item(items[2], 1, None)
    assert err is None and meta["name"] == "t.abc#2 (Second)"
    assert grid == [76, 76, 57, H, 84, H, H, 76, 69, H, H, 72, H, H, H]
    assert "fewer than two" in P.parse_item(items[0], 4, None)[3]


def test_parser_option_reads_the_file_as_organ_did(tmp_path):
    path = tmp_path / "t.abc"
    path.write_text(ABC)
    organ, _ = parse_tunes("abc", str(path), cfg(tmp_path, parser="organ").options)
    assert len(organ.grids) == 2 and len(organ.skipped) == 1
    default, _ = parse_tunes("abc", str(path), cfg(tmp_path).options)  # cached apart
    assert len(default.grids) == 3 and not default.skipped
    again, info = parse_tunes("abc", str(path), cfg(tmp_path, parser="organ").options)
    assert info["cached"] and [g.tolist() for g in again.grids] == [g.tolist() for g in organ.grids]
    # the default reading keeps the chord-symbol lines and reads accidentals
    assert int((default.grids[0] >= 0).sum()) > int((organ.grids[0] >= 0).sum())


def test_organ_corpus_goes_through_windows_and_metrics(tmp_path):
    path = tmp_path / "t.abc"
    path.write_text(ABC * 3)  # 9 tunes; the empty one before X:1 skipped, the last one lost
    c = load_corpus(str(path), cfg(tmp_path, parser="organ", window=8, test_fraction=0.0))
    assert c.info["tunes"] == 8 and c.info["skipped"] == 1 and c.train.shape[1] == 8
    m = music_metrics(c.train, c.vocab)
    assert 0 <= m["tonality"] <= 1 and m["notes_per_bar"] > 0
    pitches = np.array(c.vocab.meta["pitches"])
    used = pitches[c.train[c.train >= 4].numpy()]
    assert len(set((used % 12).tolist())) <= 7  # natural notes, moved together to C


def test_parser_option_is_checked(tmp_path):
    path = tmp_path / "t.abc"
    path.write_text(ABC)
    with pytest.raises(UserError, match="parser must be one of music21, organ"):
        parse_tunes("abc", str(path), cfg(tmp_path, parser="ORGAN").options)
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "a.abc").write_text(ABC)
    (folder / "b.mid").write_bytes(b"MThd")
    with pytest.raises(UserError, match="parser=organ reads ABC files only"):
        parse_tunes("music-folder", str(folder), cfg(tmp_path, parser="organ").options)


def test_nottingham_organ_reading(shared_data):
    text = (shared_data / "nottingham_abc" / "nottingham.abc.txt").read_text()
    songs = organ_songs(text)
    assert len(songs) == 1037 and songs[0].tokens == []  # 1037 X lines: 1036 tunes, the last lost
    notes = [organ_note_names(s.tokens) for s in songs]
    assert sum(len(n) >= 2 for n in notes) < 1000  # whole tunes written in chord-symbol lines vanish
    assert torch.tensor([len(n) for n in notes]).sum() > 0
