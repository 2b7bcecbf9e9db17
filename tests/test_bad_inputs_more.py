"""More bad inputs for every reader and every ``--data-option``, through ``seqgan pretrain``.

Each case names what it feeds and what must happen: ``error`` (exit status 2, exactly one
line ``error: ...`` on stderr, ending stderr, no traceback, and no run folder nor
``.NAME.*.creating`` temp folder left), ``load`` (exit 0, a run) or ``either`` (for inputs
that are odd but could be read: one of the two, nothing else). Readers: a text file, an
``.abc`` file, a folder of MIDI files, one MIDI or MusicXML file, ``oracle:PATH.npz``;
options: those of the oracle, text and music sources (README's data-spec paragraph).

A defect a case finds is fixed at its root (in the reader or the option check, not by
loosening the case), and the case is kept here, expecting what must happen now; no case is
marked xfail.
"""
from __future__ import annotations

import io
import json
import os
import random
import struct
import zipfile

import numpy as np
import pytest
from bad_input_contract import _isolated  # noqa: F401 (autouse: a private music cache, memory capped)
from bad_input_contract import (abc_tune, address_space_cap, check, midi_bytes, musicxml, npz,
                                oracle_arrays, pretrain, sentences)
from helpers import fails_cleanly, no_run_left, succeeds


# -- valid inputs ----------------------------------------------------------------------------
GOOD_ABC = abc_tune(x=9, title="Good")
TEXT = sentences(20)


@pytest.fixture(scope="module")
def good_midi() -> bytes:
    pytest.importorskip("pretty_midi")
    return midi_bytes()


def smf(division: int = 96, events: bytes | None = None, fmt: int = 0, ntracks: int = 1,
        header_len: int = 6, track_len: int | None = None) -> bytes:
    """A hand-made Standard MIDI File: one track of ``events`` (a note C4 by default)."""
    if events is None:
        events = b"\x00\x90\x3c\x40\x60\x80\x3c\x00\x00\xff\x2f\x00"
    head = b"MThd" + struct.pack(">IHHh", header_len, fmt, ntracks, division)
    return head + b"MTrk" + struct.pack(">I", len(events) if track_len is None else track_len) + events


NOTE = b"\x00\x90\x3c\x40\x60\x80\x3c\x00"
END = b"\x00\xff\x2f\x00"


# -- text files -----------------------------------------------------------------------------
TEXT_CASES = [
    ("only-blank-lines", b"\n\n\n\n", "error", "no sentence"),
    ("whitespace-lines", b"  \t \n\r\n \x0b\x0c\n", "error", "no sentence"),
    ("bom-only", b"\xef\xbb\xbf", "error", ""),
    ("bom-then-blank", b"\xef\xbb\xbf\n\n", "error", ""),
    ("utf-32", "a b c\nd e f\n".encode("utf-32"), "error", "binary"),
    ("nul-at-the-end", b"a b c\nd e\n\x00", "error", "binary"),
    ("lone-surrogate", b"\xed\xa0\x80 a b\n", "error", "UTF-8"),
    ("overlong-utf8", b"\xc0\xaf\n\xe0\x80\xaf\n", "error", "UTF-8"),
    ("mostly-undecodable", b"a b\n\xff\xfe x\n\xff\n", "error", "UTF-8"),
    ("truncated-utf8-char", "a b café".encode()[:-1], "error", "UTF-8"),
    ("one-undecodable-line", b"a b\nc d\n\xff\n", "load", "skipped_undecodable 1"),
    ("crlf", b"a b c\r\nd e f\r\n", "load", "sentences 2"),
    ("cr-only-line-ends", b"a b c\rd e f\r", "either", ""),
    ("one-word-no-newline", b"x", "load", "sentences 1"),
    ("control-characters", b"\x01\x02\x03\n\x04\x05 \x7f\n", "either", ""),
    ("unicode-separators", "a\u2028b c\u0085d\n\u00a0\n".encode(), "either", ""),
    ("emoji-and-combining", "😀 🎵 e\u0301 ½\n".encode(), "load", "sentences 1"),
    ("1MB-line-no-newline", b"la " * 400_000, "load", "cut 1"),
    ("30000-distinct-words", (" ".join(f"w{i}" for i in range(30_000)) + "\n").encode(), "load", "cut 1"),
    ("lines-of-one-char", b"a\n" * 20_000, "load", "sentences 20000"),
]


@pytest.mark.parametrize("content,expect,words", [c[1:] for c in TEXT_CASES],
                         ids=[c[0] for c in TEXT_CASES])
def test_text_file(tmp_path, content, expect, words):
    f = tmp_path / "sentences.txt"
    f.write_bytes(content)
    out = tmp_path / "run"
    r = pretrain(f, out)
    check(r, out, expect, *([str(f), words] if expect == "error" else [words]))


@pytest.mark.parametrize("content,expect", [
    (b"\n\n", "error"), (b"\xef\xbb\xbf", "error"), (b"\xed\xa0\x80\n", "error"),
    ("a b c\n".encode("utf-16"), "error"), (b"a b\rc d\r", "either"), (b"\x01 \x02\n", "either"),
], ids=["blank", "bom-only", "surrogate", "utf-16", "cr-only", "control-chars"])
def test_text_test_file(tmp_path, content, expect):
    (tmp_path / "train.txt").write_text(TEXT)
    test = tmp_path / "test.txt"
    test.write_bytes(content)
    out = tmp_path / "run"
    r = pretrain(tmp_path / "train.txt", out, "--test", test)
    check(r, out, expect, *([str(test)] if expect == "error" else []))


def test_a_fifo_is_neither_file_nor_folder(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)  # never opened: opening a FIFO without a writer would block
    out = tmp_path / "run"
    check(pretrain(fifo, out), out, "error", str(fifo))


def test_a_dangling_symlink_is_a_missing_file(tmp_path):
    link = tmp_path / "gone.txt"
    link.symlink_to(tmp_path / "nowhere.txt")
    out = tmp_path / "run"
    check(pretrain(link, out), out, "error", str(link))


def test_seq_len_and_text_length_option_together(tmp_path):
    (tmp_path / "s.txt").write_text(TEXT)
    out = tmp_path / "run"
    check(pretrain(tmp_path / "s.txt", out, "--seq-len", "6", "--data-option", "max_len=10"),
          out, "error", "--seq-len", "max_len")


# -- ABC files --------------------------------------------------------------------------------
ABC_CASES = [  # (id, file text, expect alone, expect with a good tune after it)
    ("headers-without-body", abc_tune(body=""), "error", "load"),
    ("x-line-only", "X:1\n", "error", "load"),
    ("x-line-no-newline", "X:1", "error", "either"),
    ("no-x-lines", "T:no reference\nM:4/4\nK:G\nGAB\n", "error", "load"),
    ("only-comments", "% a comment\n%% another\n", "error", "load"),
    ("meter-3/0", abc_tune("M:3/0\nL:1/8\nK:G"), "error", "load"),
    ("meter-0/4", abc_tune("M:0/4\nL:1/8\nK:G"), "error", "load"),
    ("meter-0/0", abc_tune("M:0/0\nL:1/8\nK:G"), "error", "load"),
    ("meter-abc", abc_tune("M:abc\nL:1/8\nK:G"), "error", "load"),
    ("meter-empty", abc_tune("M:\nL:1/8\nK:G"), "error", "load"),
    ("meter-3/4/2", abc_tune("M:3/4/2\nL:1/8\nK:G"), "error", "load"),
    ("meter-huge-numerator", abc_tune("M:99999999999999999999/4\nL:1/8\nK:G"), "error", "load"),
    ("meter-huge-denominator", abc_tune("M:4/99999999999999999999\nL:1/8\nK:G"), "error", "load"),
    ("meter-negative", abc_tune("M:-3/4\nL:1/8\nK:G"), "either", "either"),
    ("meter-additive", abc_tune("M:2+3/8\nL:1/8\nK:G"), "either", "either"),
    ("inline-meter-0/4", abc_tune(body="[M:0/4]GABc dcBA|"), "either", "either"),
    ("key-H", abc_tune("M:4/4\nL:1/8\nK:H"), "either", "either"),
    ("key-empty", abc_tune("M:4/4\nL:1/8\nK:"), "either", "either"),
    ("key-many-sharps", abc_tune("M:4/4\nL:1/8\nK:C#######"), "either", "either"),
    ("key-explicit-accidentals", abc_tune("M:4/4\nL:1/8\nK:exp _b_e^f"), "either", "either"),
    ("inline-key-Z", abc_tune(body="[K:Z]GABc dcBA|"), "either", "either"),
    ("length-1/0", abc_tune("M:4/4\nL:1/0\nK:G"), "error", "load"),
    ("length-0/8", abc_tune("M:4/4\nL:0/8\nK:G"), "error", "load"),
    ("length-abc", abc_tune("M:4/4\nL:abc\nK:G"), "error", "load"),
    ("length-empty", abc_tune("M:4/4\nL:\nK:G"), "error", "load"),
    ("length-negative", abc_tune("M:4/4\nL:-1/8\nK:G"), "error", "load"),
    ("no-default-length", "X:1\nK:G\nGABc dcBA|\n\n", "error", "load"),
    ("note-length-/0", abc_tune(body="G/0 A B"), "error", "load"),
    ("note-length-3/0", abc_tune(body="G3/0 A B"), "error", "load"),
    ("note-length-slashes", abc_tune(body="G//////// A"), "error", "load"),
    ("note-length-0", abc_tune(body="G0 A0 B0"), "error", "load"),
    ("note-length-negative", abc_tune(body="G-2 A B"), "either", "either"),
    ("note-length-20-digits", abc_tune(body="G99999999999999999999 A"), "either", "either"),
    ("rest-of-1e14-steps", abc_tune(body="z99999999999999 G"), "error", "load"),
    ("tuplet-(0", abc_tune(body="(0GAB"), "error", "load"),
    ("tuplet-(3:0:0", abc_tune(body="(3:0:0GAB"), "either", "either"),
    ("grace-notes-only", abc_tune(body="{GAB}"), "error", "load"),
    ("chord-symbols-only", abc_tune(body='"C""D""G7"'), "error", "load"),
    ("bars-only", abc_tune(body="|||:|]"), "error", "load"),
    ("two-voices-second-empty", abc_tune("M:4/4\nL:1/8\nV:1\nV:2\nK:G", ""), "error", "load"),
    ("octave-far-below-midi", abc_tune(body="G" + "," * 40), "error", "load"),
    ("octave-far-above-midi", abc_tune(body="g" + "'" * 40), "error", "load"),
]


@pytest.mark.parametrize("text,expect", [(c[1], c[2]) for c in ABC_CASES], ids=[c[0] for c in ABC_CASES])
def test_abc_file(tmp_path, text, expect):
    f = tmp_path / "tunes.abc"
    f.write_text(text)
    out = tmp_path / "run"
    r = pretrain(f, out, "--data-option", "cache=false")
    check(r, out, expect)


@pytest.mark.parametrize("text,expect", [(c[1], c[3]) for c in ABC_CASES], ids=[c[0] for c in ABC_CASES])
def test_abc_file_with_a_good_tune_after_the_bad_one(tmp_path, text, expect):
    f = tmp_path / "tunes.abc"
    f.write_text(text + ("\n" if not text.endswith("\n") else "") + GOOD_ABC)
    out = tmp_path / "run"
    r = pretrain(f, out, "--data-option", "cache=false")
    check(r, out, expect)


@pytest.mark.parametrize("body,pitches", [("G" + "," * 40, "-413..-413"), ("g" + "'" * 40, "559..559")],
                         ids=["below", "above"])
def test_an_abc_tune_outside_midi_is_skipped_by_name_and_the_rest_load(tmp_path, caplog, body, pitches):
    f = tmp_path / "tunes.abc"
    f.write_text(abc_tune(body=body) + GOOD_ABC)
    out = tmp_path / "run"
    assert "skipped 1," in succeeds(pretrain(f, out, "--data-option", "cache=false"))
    assert f"tunes.abc#1 (Spoilt): notes outside MIDI 0..127 (pitches {pitches})" in caplog.text


@pytest.mark.parametrize("name,src,midi", [
    ("G-2", "G,,,,,,", -5),          # G in octave -2, not G flat in octave 2
    ("B--2", "_B,,,,,,", -2),        # B flat in octave -2
    ("G##-2", "^^g,,,,,,,", -3),
    ("G-1", "G,,,,,", 7),            # octave -1 is still MIDI (0..11)
    ("B-0", "B,,,,", 22), ("G-1", "_g,,,,", 30), ("B-4", "B", 70), ("C4", '"Am,,,,,"C', 60),
    ("Cn5", "=c", 72), ("G#5", "^g", 80),
])
def test_the_minus_of_a_negative_abc_octave_is_not_a_flat(name, src, midi):
    from seqgan.datasets.music_readers import _m21_pitch_to_midi

    assert _m21_pitch_to_midi(name, src) == midi


def test_abc_tune_of_200k_notes_on_one_line(tmp_path):
    f = tmp_path / "long.abc"
    f.write_text("X:1\nT:Long\nM:4/4\nL:1/8\nK:G\n" + "GABc " * 2_000 + "\n")
    out = tmp_path / "run"
    check(pretrain(f, out, "--data-option", "cache=false"), out, "load")


# -- MIDI folders and files -------------------------------------------------------------------
def _midi_case_bytes(name: str, good: bytes) -> bytes:
    rng = random.Random(name)
    cases = {
        "zero-length": b"",
        "mthd-only": b"MThd",
        "mthd-then-noise": b"MThd\x00\x00\x00\x06" + bytes(rng.randrange(256) for _ in range(300)),
        "mthd-then-zeros": b"MThd\x00\x00\x00\x06" + b"\x00" * 64,
        "cut-after-4-bytes": good[:4],
        "cut-in-header": good[:13],
        "cut-after-header": good[:14],
        "cut-in-track-header": good[:20],
        "cut-in-events": good[:len(good) // 2],
        "cut-before-end-of-track": good[:-1],
        "division-0": smf(division=0),
        "smpte-division": smf(division=-7000),
        "no-tracks": smf(ntracks=0)[:14],
        "65535-tracks-declared": smf(ntracks=65535, fmt=1),
        "format-9": smf(fmt=9),
        "header-length-4GB": smf(header_len=0xFFFFFFFF),
        "track-length-2GB": smf(track_len=0x7FFFFFFF),
        "tempo-0": smf(events=b"\x00\xff\x51\x03\x00\x00\x00" + NOTE + END),
        "metre-numerator-0": smf(events=b"\x00\xff\x58\x04\x00\x02\x18\x08" + NOTE + END),
        "metre-denominator-2^255": smf(events=b"\x00\xff\x58\x04\x04\xff\x18\x08" + NOTE + END),
        "key-127-sharps": smf(events=b"\x00\xff\x59\x02\x7f\x05" + NOTE + END),
        "delta-time-2^28": smf(division=1, events=b"\x00\x90\x3c\x40\xff\xff\xff\x7f\x80\x3c\x00" + END),
        "drums-only": smf(events=b"\x00\x99\x3c\x40\x60\x89\x3c\x00" + END),
        "note-off-without-on": smf(events=b"\x00\x80\x3c\x00" + END),
        "no-end-of-track": smf(events=NOTE),
        "running-status-garbage": smf(events=b"\x00\x3c\x40\x60\x3c\x00" + END),
        "sysex-unterminated": smf(events=b"\x00\xf0\x05\x7e\x7f" + END),
        "text-file": b"this is not a midi file\n",
        "png-header": b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,
    }
    return cases[name]


MIDI_CASES = {  # name -> (alone, beside a good file)
    "zero-length": ("error", "load"), "mthd-only": ("error", "load"),
    "mthd-then-noise": ("error", "load"), "mthd-then-zeros": ("error", "load"),
    "cut-after-4-bytes": ("error", "load"), "cut-in-header": ("error", "load"),
    "cut-after-header": ("error", "load"), "cut-in-track-header": ("error", "load"),
    "cut-in-events": ("error", "load"), "cut-before-end-of-track": ("either", "load"),
    "division-0": ("error", "load"), "smpte-division": ("either", "load"),
    "no-tracks": ("error", "load"), "65535-tracks-declared": ("error", "load"),
    "format-9": ("either", "load"), "header-length-4GB": ("error", "load"),
    "track-length-2GB": ("error", "load"), "tempo-0": ("error", "load"),
    "metre-numerator-0": ("either", "load"), "metre-denominator-2^255": ("either", "load"),
    "key-127-sharps": ("either", "load"), "delta-time-2^28": ("either", "load"),
    "drums-only": ("error", "load"), "note-off-without-on": ("error", "load"),
    "no-end-of-track": ("either", "load"), "running-status-garbage": ("either", "load"),
    "sysex-unterminated": ("either", "load"), "text-file": ("error", "load"),
    "png-header": ("error", "load"),
}


@pytest.mark.parametrize("name", MIDI_CASES)
def test_midi_folder_with_one_bad_file(tmp_path, good_midi, name):
    folder = tmp_path / "songs"
    folder.mkdir()
    (folder / "bad.mid").write_bytes(_midi_case_bytes(name, good_midi))
    out = tmp_path / "run"
    r = pretrain(folder, out, "--data-option", "cache=false")
    expect = MIDI_CASES[name][0]
    check(r, out, expect, *([str(folder)] if expect == "error" else []))


@pytest.mark.parametrize("name", [n for n in MIDI_CASES if MIDI_CASES[n][0] == "error"])
def test_midi_folder_with_a_bad_file_beside_a_good_one(tmp_path, good_midi, name):
    folder = tmp_path / "songs"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "bad.mid").write_bytes(_midi_case_bytes(name, good_midi))
    (folder / "good.MID").write_bytes(good_midi)  # found recursively, suffix in any case
    out = tmp_path / "run"
    check(pretrain(folder, out, "--data-option", "cache=false"), out, MIDI_CASES[name][1], "skipped 1")


@pytest.mark.parametrize("name", ["zero-length", "cut-in-events", "mthd-then-noise", "division-0"])
def test_single_bad_midi_file(tmp_path, good_midi, name):
    f = tmp_path / "song.mid"
    f.write_bytes(_midi_case_bytes(name, good_midi))
    out = tmp_path / "run"
    check(pretrain(f, out, "--data-option", "cache=false"), out, "error", str(f))


def test_folder_with_only_hidden_music_files(tmp_path, good_midi):
    folder = tmp_path / "songs"
    folder.mkdir()
    (folder / ".hidden.mid").write_bytes(good_midi)
    out = tmp_path / "run"
    check(pretrain(folder, out), out, "error", str(folder))


def test_folder_of_unreadable_names_and_an_empty_subfolder(tmp_path):
    folder = tmp_path / "songs"
    (folder / "empty-sub").mkdir(parents=True)
    (folder / "notes.md").write_text("# not music\n")
    out = tmp_path / "run"
    check(pretrain(folder, out), out, "error", str(folder))


# -- MusicXML files ---------------------------------------------------------------------------
def _mxl_zip(members: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in members.items():
            z.writestr(name, text)
    return buf.getvalue()


XML_CASES = [
    ("truncated-half", "score.musicxml", musicxml()[:len(musicxml()) // 2].encode(), "error"),
    ("truncated-end", "score.musicxml", musicxml()[:-20].encode(), "error"),
    ("truncated-after-declaration", "score.musicxml", musicxml()[:40].encode(), "error"),
    ("empty", "score.musicxml", b"", "error"),
    ("plain-text", "score.musicxml", b"hello world\nnot xml\n", "error"),
    ("html-root", "score.xml", b"<html><body>hi</body></html>", "error"),
    ("timewise-root", "score.xml", b'<?xml version="1.0"?><score-timewise version="3.1"/>', "error"),
    ("no-parts", "score.xml", b'<?xml version="1.0"?><score-partwise version="3.1"></score-partwise>', "error"),
    ("beat-type-0", "score.musicxml", musicxml(beat_type="0").encode(), "error"),
    ("beats-0", "score.musicxml", musicxml(beats="0").encode(), "error"),
    ("beats-abc", "score.musicxml", musicxml(beats="abc").encode(), "error"),
    ("divisions-0", "score.musicxml", musicxml(divisions="0").encode(), "error"),
    ("divisions-negative", "score.musicxml", musicxml(divisions="-2").encode(), "either"),
    ("durations-0", "score.musicxml", musicxml(duration="0").encode(), "error"),
    ("durations-negative", "score.musicxml", musicxml(duration="-1").encode(), "either"),
    ("fifths-abc", "score.musicxml", musicxml(fifths="abc").encode(), "error"),
    ("fifths-99", "score.musicxml", musicxml(fifths="99").encode(), "either"),
    ("utf-16-declared-utf-8", "score.musicxml", musicxml().encode("utf-16"), "either"),
    ("external-entity", "score.musicxml",
     b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
     b'<score-partwise version="3.1"><part-list><score-part id="P1"><part-name>&e;</part-name>'
     b'</score-part></part-list><part id="P1"><measure number="1"/></part></score-partwise>', "error"),
    ("random-bytes-mxl", "score.mxl", bytes(random.Random("mxl").randrange(256) for _ in range(500)), "error"),
    ("zip-header-then-noise-mxl", "score.mxl",
     b"PK\x03\x04" + bytes(random.Random("pk").randrange(256) for _ in range(500)), "error"),
    ("zip-without-score-mxl", "score.mxl", _mxl_zip({"META-INF/container.xml": "<container/>"}), "error"),
    ("zip-with-broken-score-mxl", "score.mxl", _mxl_zip({
        "META-INF/container.xml": '<?xml version="1.0"?><container><rootfiles><rootfile full-path='
                                  '"score.xml"/></rootfiles></container>',
        "score.xml": musicxml()[:100]}), "error"),
]


@pytest.mark.parametrize("name,content,expect", [c[1:] for c in XML_CASES], ids=[c[0] for c in XML_CASES])
def test_musicxml_file(tmp_path, name, content, expect):
    f = tmp_path / name
    f.write_bytes(content)
    out = tmp_path / "run"
    r = pretrain(f, out, "--data-option", "cache=false")
    check(r, out, expect, *([str(f)] if expect == "error" else []))
    assert "root:" not in r.output  # /etc/passwd is never read into a message


def test_musicxml_file_beside_a_good_midi(tmp_path, good_midi):
    folder = tmp_path / "songs"
    folder.mkdir()
    (folder / "a.musicxml").write_text(musicxml()[:300])
    (folder / "b.mid").write_bytes(good_midi)
    out = tmp_path / "run"
    check(pretrain(folder, out, "--data-option", "cache=false"), out, "load", "skipped 1")


# -- oracle parameters (.npz) -------------------------------------------------------------------
def _with(**changes) -> bytes:
    arrays = oracle_arrays()
    for k, v in changes.items():
        if v is None:
            del arrays[k]
        else:
            arrays[k] = v
    return npz(arrays)


NPZ_CASES = [
    ("missing-Wo", lambda: _with(Wo=None), "error", "Wo"),
    ("missing-everything-but-embedding", lambda: npz({"embedding": np.zeros((3, 2), np.float32)}), "error", "lack"),
    ("no-arrays", lambda: npz({}), "error", ""),
    ("Ui-1-D", lambda: _with(Ui=np.zeros(4, np.float32)), "error", "Ui"),
    ("Wo-transposed", lambda: _with(Wo=np.zeros((12, 4), np.float32)), "error", "Wo"),
    ("bo-too-long", lambda: _with(bo=np.zeros(13, np.float32)), "error", "bo"),
    ("NaN", lambda: _with(bo=np.full(12, np.nan, np.float32)), "error", "NaN"),
    ("inf", lambda: _with(Wi=np.full((4, 4), np.inf, np.float32)), "error", "Wi"),
    ("float64-beyond-float32", lambda: _with(bo=np.full(12, 1e300)), "error", "bo"),
    ("strings", lambda: _with(bo=np.array(["a"] * 12)), "error", ""),
    ("object-array", lambda: _with(bo=np.array([{"a": 1}] * 12, dtype=object)), "error", ""),
    ("extra-array", lambda: _with(zzz=np.zeros(3)), "load", ""),
    ("bool-array", lambda: _with(bo=np.zeros(12, bool)), "either", ""),
    ("int-arrays", lambda: npz({k: v.astype(np.int64) for k, v in oracle_arrays().items()}), "either", ""),
    ("vocabulary-1", lambda: npz(oracle_arrays(V=1)), "either", ""),
    ("hidden-0", lambda: npz(oracle_arrays(H=0)), "either", ""),
    ("zip-of-text", lambda: _mxl_zip({"hello.txt": "hi"}), "error", ""),
    ("zip-of-bad-npy", lambda: _mxl_zip({"embedding.npy": "\x93NUMPY garbage"}), "error", ""),
    ("cut-after-10-bytes", lambda: npz(oracle_arrays())[:10], "error", ""),
    ("cut-in-the-middle", lambda: (lambda b: b[:len(b) // 2])(npz(oracle_arrays())), "error", ""),
    ("cut-in-the-directory", lambda: npz(oracle_arrays())[:-30], "error", ""),
    ("a-bare-npy", lambda: (lambda buf: (np.save(buf, np.zeros(3)), buf.getvalue())[1])(io.BytesIO()), "error", ""),
    ("embedding-1-D", lambda: _with(embedding=np.zeros(12, np.float32)), "error", "embedding"),
    ("embedding-3-D", lambda: _with(embedding=np.zeros((12, 4, 1), np.float32)), "error", "embedding"),
    ("embedding-scalar", lambda: _with(embedding=np.float32(1.0)), "error", "embedding"),
    ("Ui-scalar", lambda: _with(Ui=np.float32(1.0)), "error", "Ui"),
    ("Wo-3-D", lambda: _with(Wo=np.zeros((4, 12, 1), np.float32)), "error", "Wo"),
    ("vocabulary-0", lambda: npz(oracle_arrays(V=0)), "error", "V=0"),
    ("embedding-size-0", lambda: npz(oracle_arrays(E=0)), "error", "E=0"),
]


@pytest.mark.parametrize("name,make,expect,words", NPZ_CASES, ids=[c[0] for c in NPZ_CASES])
def test_oracle_npz(tmp_path, name, make, expect, words):
    f = tmp_path / "params.npz"
    f.write_bytes(make())
    out = tmp_path / "run"
    r = pretrain(f"oracle:{f}", out)
    check(r, out, expect, *([words] if words else []))
    if expect == "error" and r.exit_code == 2:
        assert "unsafe" not in r.stderr  # (numpy's advice to load a foreign file with pickle)


def test_oracle_spec_with_an_empty_path(tmp_path):
    out = tmp_path / "run"
    check(pretrain("oracle:", out), out, "error", "oracle:PATH.npz", "'oracle'")
    check(pretrain("oracle:  ", out), out, "error", "oracle:PATH.npz")


def test_oracle_npz_that_is_a_folder(tmp_path):
    (tmp_path / "params.npz").mkdir()
    out = tmp_path / "run"
    check(pretrain(f"oracle:{tmp_path / 'params.npz'}", out), out, "error", "params.npz")


# -- --data-option, per source ---------------------------------------------------------------------
@pytest.fixture
def sources(tmp_path, good_midi) -> dict[str, str]:
    (tmp_path / "s.txt").write_text(TEXT)
    (tmp_path / "t.abc").write_text(abc_tune(x=1, title="Good") + abc_tune(x=2, title="Good"))
    (tmp_path / "songs").mkdir()
    (tmp_path / "songs" / "a.mid").write_bytes(good_midi)
    (tmp_path / "score.musicxml").write_text(musicxml())
    return {"oracle": "oracle", "text": str(tmp_path / "s.txt"), "abc": str(tmp_path / "t.abc"),
            "midi": str(tmp_path / "songs"), "musicxml": str(tmp_path / "score.musicxml"),
            "music21": "music21:essen", "cache-file": str(tmp_path / "s.txt")}


def refused(source: str, *options: str) -> list[tuple]:
    """Cases of one ``--data-option`` each that must fail naming the option's key."""
    return [(source, [o], "error", o.split("=")[0].strip()) for o in options]


DEEP = "[" * 100_000
OPTION_CASES = [
    # oracle; window: a music option
    *refused("oracle", "bogus=1", "window=8", "vocab_size=1", "vocab_size=2.5", "vocab_size=\"50\"",
             "vocab_size=null", "vocab_size=true", "oracle_dim=0", "oracle_dim=[4]", "oracle_dim=1e400"),
    ("oracle", ["vocab_size=2", "oracle_dim=1"], "load", ""),
    pytest.param("oracle", ["vocab_size=10000000000000"], "error", "vocab_size", id="oracle-vocab_size-1e13"),
    pytest.param("oracle", ["oracle_dim=100000000000"], "error", "oracle_dim", id="oracle-oracle_dim-1e11"),
    ("oracle", ["vocab_size=1000000", "oracle_dim=4096"], "error", "vocab_size=1000000"),
    # text; window: a music option
    *refused("text", "windoww=8", "window=8", "tokenizer=punkt", "tokenizer=TREEBANK", "tokenizer=",
             "lowercase=True", "lowercase=1", "min_freq=0", "min_freq=2.5",
             "min_freq=100000000000000000000000", "max_vocab=0", "max_vocab=[5]", "len_percentile=0",
             "len_percentile=100.5", "len_percentile=NaN", "max_len=1", "max_len=0x10",
             "max_len=-Infinity", "max_len={\"a\": 1}", "max_len =8"),
    ("text", ["=5"], "error", "KEY=VALUE"),
    ("text", ["novalue"], "error", "KEY=VALUE"),
    ("text", ["max_vocab=1", "min_freq=1", "lowercase=true", "max_len=2"], "load", "cut 20"),
    ("text", ["len_percentile=1e-9", "max_len=1000000000"], "load", ""),
    pytest.param("text", ["max_len=" + "9" * 5000], "error", "max_len", id="text-max_len-5000-digits"),
    pytest.param("text", ["max_len=" + DEEP], "error", "max_len", id="text-max_len-deeply-nested"),
    # ABC (music); max_len: a text option; instrument: ABC tunes have one melody each
    *refused("abc", "bogus=1", "max_len=20", "steps_per_quarter=0", "steps_per_quarter=97",
             "steps_per_quarter=\"4\"", "window=1", "window=8.0", "window=true", "stride=0", "min_notes=0",
             "transpose=d", "key=major", "pitch_range=[60,65]", "pitch_range=[60,128]",
             "pitch_range=[72,60]", "pitch_range=6072", "max_tunes=0", "test_fraction=1",
             "test_fraction=-0.1", "instrument=0", "cache=\"no\"", "cache_dir=\"\"", "workers=0",
             "workers=257", "progress=\"yes\"", "window=100001"),
    ("abc", ["min_notes=1000000"], "error", "1000000"),
    ("abc", ["window=6", "--seq-len", "6"], "error", "--seq-len"),
    ("abc", ["window=2", "stride=1", "steps_per_quarter=96", "max_tunes=1"], "load", ""),
    ("abc", ["pitch_range=[0,11]", "transpose=\"augment\"", "key=\"estimate\""], "load", ""),
    ("abc", ["test_fraction=0.999", "stride=1000000000000000000", "max_tunes=1000000000000000000000"],
     "load", ""),
    pytest.param("abc", ["window=1000000000000000"], "error", "window", id="abc-window-1e15"),
    # a MIDI folder, a MusicXML file (music)
    *refused("midi", "instrument=-1", "instrument=1.5", "instrument=\"\"", "tokenizer=treebank"),
    ("midi", ["instrument=5"], "error", "instrument 5"),  # the file has one instrument
    ("midi", ["instrument=\"zzz\""], "error", "zzz"),
    ("midi", ["instrument=piano", "window=4"], "load", ""),
    ("musicxml", ["instrument=\"nope\""], "error", "nope"),
    ("musicxml", ["instrument=0"], "either", ""),
    # music21 (refused before any corpus is parsed)
    ("music21", ["bogus=1", "max_tunes=1"], "error", "bogus"),
    ("music21", ["window=1", "max_tunes=1"], "error", "window"),
    # the cache folder is a file: loading still works, the cache is skipped
    ("cache-file", [], "load", ""),
]


def _option_ids():
    out = []
    for c in OPTION_CASES:
        if hasattr(c, "id"):
            out.append(c.id)
        else:
            out.append(f"{c[0]}-{'-'.join(c[1]) or 'none'}"[:60])
    return out


@pytest.mark.parametrize("source,options,expect,words", OPTION_CASES, ids=_option_ids())
def test_data_option(tmp_path, sources, source, options, expect, words):
    args: list[str] = []
    for o in options:
        if o.startswith("--"):
            args.append(o)
        elif args and args[-1] == "--seq-len":
            args.append(o)
        else:
            args += ["--data-option", o]
    if source in ("abc", "midi", "musicxml") and not any("cache" in o for o in options):
        args += ["--data-option", "cache=false"]
    data = sources[source]
    if source == "cache-file":  # a music source whose cache_dir is a plain file
        data = sources["abc"]
        args += ["--data-option", f"cache_dir={json.dumps(sources['cache-file'])}"]
    out = tmp_path / "run"
    r = pretrain(data, out, *args)
    check(r, out, expect, *([words] if words else []))


# -- resource exhaustion -------------------------------------------------------------------------
@pytest.mark.parametrize("kind,content", [
    pytest.param("abc", abc_tune(body="G999999999 A"), id="abc-note-of-1e9-eighths"),
    pytest.param("musicxml", musicxml(duration="100000000"), id="musicxml-note-of-5e7-quarters"),
])
def test_a_tiny_file_declaring_an_absurd_note_length_is_refused_without_gigabytes(tmp_path, kind, content):
    with address_space_cap() as cap:
        if not cap.active:
            pytest.skip("cannot cap the address space here; the case would take ~15 GiB")
        f = tmp_path / f"huge.{kind}"
        f.write_text(content)
        out = tmp_path / "run"
        r = pretrain(f, out, "--data-option", "cache=false")
    line = fails_cleanly(r, str(f))
    no_run_left(out)
    assert "MemoryError" not in line and "allocate" not in line, line
