"""Melody data: parsing, grid, keys, windows, sources and errors, MIDI export, metrics."""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import textwrap
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

from seqgan.datasets.config import DataConfig
from seqgan.datasets import format_samples, load_corpus
from seqgan.datasets import keys as K
from seqgan.datasets import music as M
from seqgan.datasets import music_readers as P
from seqgan.datasets import music_workers as W
from seqgan.datasets.midi import export_samples, piano_roll_png, tokens_to_midi
from seqgan.errors import UserError
from seqgan.metrics.music import diversity, edit_distance, music_metrics

DATA = Path(__file__).parents[1].parent / "shared" / "data"
NOTTINGHAM = DATA / "nottingham_abc" / "nottingham.abc.txt"
H, R = P.G_HOLD, P.G_REST
VOCAB = M.music_vocab(48, 84)


def enc(melody: str, vocab=VOCAB) -> torch.Tensor:
    return torch.tensor([vocab.tokens.index(t) for t in melody.split()])


def cfg(tmp_path: Path | None = None, **options) -> DataConfig:
    options.setdefault("workers", 1)
    if tmp_path is not None:
        options.setdefault("cache_dir", str(tmp_path / "cache"))
    else:
        options.setdefault("cache", False)
    return DataConfig(spec="x", options=options)


ABC_TUNES = """\
X:1
T:Up the fifths
M:4/4
L:1/8
K:D
"D"D2 A2 "A"e2 b2 | "D"a4 f4 |]

X:2
T:Written chord, tie, grace, triplet
M:2/4
L:1/8
K:C
[ceg]2 {a}c2- | c2 (3cde | z4 |]

X:3
T:Broken
M:3/4
L:1/4
K:C
c d [e f |

X:4
T:Minor
M:3/4
L:1/4
K:Em
E F G | A B c | B2 E |]
"""


# -- grid -------------------------------------------------------------------------------
def test_notes_to_grid_by_hand():
    # quarter C4, eighth E4, eighth rest, quarter G4 at 4 steps per quarter
    grid = P._notes_to_grid([(0, 1, 60), (1, 0.5, 64), (2, 1, 67)], spq=4)
    assert grid.tolist() == [60, H, H, H, 64, H, R, R, 67, H, H, H]
    # leading and trailing silence is cut; a 32nd note keeps one step
    grid = P._notes_to_grid([(1, 0.125, 62), (1.25, 0.25, 64)], spq=4)
    assert grid.tolist() == [62, 64]


def test_notes_to_grid_polyphony_highest_wins():
    # C4 whole note under an E4 quarter at beat 2: E4 sounds, then C4 is struck again
    grid = P._notes_to_grid([(0, 4, 60), (1, 1, 64)], spq=1)
    assert grid.tolist() == [60, 64, 60, H]
    # a repeated pitch is a new onset, not a HOLD
    assert P._notes_to_grid([(0, 1, 60), (1, 1, 60)], spq=2).tolist() == [60, H, 60, H]


def test_abc_parsing_chords_ties_grace_triplets():
    tunes = dict(P._split_abc(ABC_TUNES, "t.abc"))
    name = next(n for n in tunes if n.startswith("t.abc#2"))
    notes, meta = P._abc_notes(tunes[name])
    # [ceg]2 -> top note G5 (quarter); {a} grace dropped; c2-c2 tied -> one half note;
    # (3cde -> three triplet eighths
    assert [(round(o, 4), round(d, 4), p) for o, d, p in notes] == [
        (0, 1, 79), (1, 2, 72), (3, 0.3333, 72), (3.3333, 0.3333, 74), (3.6667, 0.3333, 76)]
    assert meta["time_signature"] == "2/4" and meta["sig_pc"] == 0
    # chord symbols in quotes are not notes
    first = next(n for n in tunes if n.startswith("t.abc#1"))
    assert [p for _, _, p in P._abc_notes(tunes[first])[0]] == [62, 69, 76, 83, 81, 78]


def test_key_shift_to_c_major_and_a_minor():
    tunes = P._split_abc(ABC_TUNES, "t.abc")
    parsed = [P.parse_item(("abc", n, t), 4, None) for n, t in tunes]
    d_major, minor = parsed[0], parsed[3]
    grids = [np.asarray(d_major[1], np.int16), np.asarray(minor[1], np.int16)]
    shifts = K.key_shifts(grids, [d_major[2], minor[2]], "signature")
    assert shifts == [-2, 5]  # D major -> C major; E minor (1 sharp) -> A minor
    # estimate: the E minor tune's notes (E F# G A B C B E) are clearly E minor
    assert K.key_shifts(grids[1:], [{}], "estimate") == [5]
    # 'tonic': the declared tonic with the mode from the notes (E minor declared as 'K:E')
    assert K.key_shifts(grids[1:], [{"tonic_pc": 4, "sig_pc": 4}], "tonic") == [5]


def test_krumhansl_scores_are_pearson_correlations():
    h = np.random.default_rng(0).random((3, 12))
    s = K._kk_scores(h)
    for n in range(3):
        for t in range(12):
            assert s[n, 0, t] == pytest.approx(np.corrcoef(h[n], np.roll(K._KK_MAJOR, t))[0, 1])
            assert s[n, 1, t] == pytest.approx(np.corrcoef(h[n], np.roll(K._KK_MINOR, t))[0, 1])


# -- windows ----------------------------------------------------------------------------
def test_windows_stride_tail_and_leading_hold():
    grid = np.array([60, H, H, H, H, H, 62, H, R, R, 64, H], np.int16)
    lo = 60
    w = M.windows(grid, lo, T=4, stride=4)
    names = [" ".join(_name(i, lo) for i in row) for row in w]
    # the window at step 4 starts inside C4: it is struck again
    assert names == ["C4 _ _ _", "C4 _ D4 _", "R R E4 _"]
    # stride 2: overlapping windows (starts 0, 2, ..., 10), none starting with HOLD
    w2 = M.windows(grid, lo, T=4, stride=2)
    assert len(w2) == 6 and (w2[:, 0] != M.HOLD).all()
    assert (w2[1:4, 1:] == M.windows(grid, lo, T=4, stride=2)[1:4, 1:]).all()
    # the last, partial window is kept when at least half of it is music
    long_c = [60] + [H] * 9
    assert M.windows(np.array(long_c + [62], np.int16), lo, T=8, stride=8).shape == (1, 8)
    assert M.windows(np.array(long_c + [62, H], np.int16), lo, T=8, stride=8).shape == (2, 8)
    # a window of rests only is dropped; min_notes drops sparse windows
    g = np.array([60, R, R, R, R, R, R, R, R, R, 62, H], np.int16)
    assert M.windows(g, lo, T=4, stride=4).tolist() == [[4, 2, 2, 2], [2, 2, 6, 3]]
    assert M.windows(g, lo, T=4, stride=4, min_notes=2).shape[0] == 0
    # a short tune is one window filled with REST
    assert M.windows(np.array([60, 62], np.int16), lo, T=8, stride=8).tolist() == [
        [4, 6, 2, 2, 2, 2, 2, 2]]


def _name(i: int, lo: int) -> str:
    specials = {M.PAD: "<pad>", M.BOS: "<bos>", M.REST: "R", M.HOLD: "_"}
    return specials.get(i) or M.pitch_name(i - M.FIRST_PITCH + lo)


# -- loading ABC ------------------------------------------------------------------------
@pytest.fixture()
def abc_file(tmp_path) -> Path:
    p = tmp_path / "tunes.abc"
    p.write_text(ABC_TUNES * 10)  # 40 tunes, 10 of them broken
    return p


def test_abc_load_vocab_split_and_skips(abc_file, tmp_path):
    c = load_corpus(str(abc_file), cfg(window=8, test_fraction=0.1), seed=0)
    v = c.vocab
    assert v.kind == "music" and v.tokens[:4] == ["<pad>", "<bos>", "R", "_"]
    assert c.start_token == v.bos == M.BOS and v.pad == M.PAD
    assert v.meta["hold"] == M.HOLD and v.meta["rest"] == M.REST and v.meta["steps_per_quarter"] == 4
    assert len(v.meta["pitches"]) == len(v)
    assert v.meta["pitches"][M.FIRST_PITCH] == v.meta["pitch_range"][0]
    info = c.info
    assert info["tunes"] == 30 and info["skipped"] == 10 and "Broken" in info["skipped_examples"][0]
    assert info["train_tunes"] + info["test_tunes"] == 30 and info["test_tunes"] == 3
    assert c.train.shape[1] == 8 and c.test is not None and c.test.shape[1] == 8
    assert info["windows"] == c.train.shape[0] + c.test.shape[0]
    assert (c.train[:, 0] != M.HOLD).all() and ((c.train >= M.FIRST_PITCH).sum(1) >= 1).all()
    # seeded: same seed same split, other seed another split
    again = load_corpus(str(abc_file), cfg(window=8, test_fraction=0.1), seed=0)
    assert torch.equal(again.train, c.train) and torch.equal(again.test, c.test)
    other = load_corpus(str(abc_file), cfg(window=8, test_fraction=0.3), seed=1)
    assert other.info["test_tunes"] == 9


def test_transpose_options(abc_file):
    c = load_corpus(str(abc_file), cfg(window=8, test_fraction=0.1, transpose="c"), seed=0)
    pitches = torch.tensor(c.vocab.meta["pitches"])
    p = pitches[c.train][pitches[c.train] >= 0]
    assert set((p % 12).tolist()) <= {0, 2, 4, 5, 7, 9, 11}  # only white keys after C / Am
    none = load_corpus(str(abc_file), cfg(window=8, test_fraction=0.1, transpose="none"), seed=0)
    pn = torch.tensor(none.vocab.meta["pitches"])[none.train]
    assert 66 in pn.flatten().tolist() and 66 not in p.tolist()  # F#4 (E minor tune) stays
    aug = load_corpus(str(abc_file), cfg(window=8, test_fraction=0.1, transpose="augment"), seed=0)
    assert aug.train.shape[0] > c.train.shape[0]
    assert torch.equal(aug.test, c.test)  # held-out tunes are not augmented
    assert aug.vocab.meta["pitch_range"] == c.vocab.meta["pitch_range"]  # copies stay in range
    rng = load_corpus(str(abc_file), cfg(window=8, pitch_range=[60, 72]), seed=0)
    assert rng.vocab.meta["pitch_range"] == [60, 72] and len(rng.vocab) == 4 + 13


def test_stride_and_window_options(abc_file):
    a = load_corpus(str(abc_file), cfg(window=8, test_fraction=0), seed=0)
    b = load_corpus(str(abc_file), cfg(window=8, stride=4, test_fraction=0), seed=0)
    assert a.test is None and b.train.shape[0] > a.train.shape[0]
    c = load_corpus(str(abc_file), cfg(window=8), seq_len=16, seed=0)
    assert c.seq_len == 16


def test_cache_roundtrip_is_safetensors(abc_file, tmp_path):
    first = load_corpus(str(abc_file), cfg(tmp_path, window=8), seed=0)
    assert first.info["cached"] is False
    second = load_corpus(str(abc_file), cfg(tmp_path, window=8), seed=0)
    assert second.info["cached"] is True and torch.equal(first.train, second.train)
    assert second.info["skipped"] == first.info["skipped"] == 10
    files = list((tmp_path / "cache" / "music").glob("*.safetensors"))
    assert len(files) == 1
    raw = files[0].read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])  # a safetensors header: JSON, no pickle
    assert header["__metadata__"]["format"] == "seqgan-music-tunes"
    # another grid resolution is another cache entry
    load_corpus(str(abc_file), cfg(tmp_path, window=8, steps_per_quarter=2), seed=0)
    assert len(list((tmp_path / "cache" / "music").glob("*.safetensors"))) == 2


def test_worker_processes_give_the_same_tunes(abc_file):
    serial, _ = M.parse_tunes("abc", str(abc_file), {"cache": False, "workers": 1})
    parallel, info = M.parse_tunes("abc", str(abc_file), {"cache": False, "workers": 2})
    assert info["workers"] == 2 and parallel.skipped == serial.skipped
    assert [g.tolist() for g in parallel.grids] == [g.tolist() for g in serial.grids]
    assert parallel.meta == serial.meta
    # the pool answers every item (in chunks, in order): none is left to redo
    items = [("abc", n, t) for n, t in P._split_abc(ABC_TUNES * 3, "t.abc")]
    results = [None] * len(items)
    ticks = []
    W.run_pool(partial(P.parse_item, spq=4, instrument=None), items, 2, results,
               lambda: ticks.append(1))
    assert results == [P.parse_item(it, 4, None) for it in items] and len(ticks) == len(items)


def test_pool_equals_serial_on_real_tunes():
    # Essen (ABC) and Bach chorales (MusicXML) from music21's corpus, no network
    for corpus, n in (("essen", 24), ("bach", 2)):
        items = P.source_items("music21", corpus)[0][:n]
        serial = W.parse_all(items, 4, None, 1, False, "serial")
        pooled = W.parse_all(items, 4, None, 2, False, "pool")
        assert pooled == serial and sum(err is None for *_, err in serial) >= n - 1


def test_chunk_size():
    assert W.chunk_size(1, 8) == 1 and W.chunk_size(40, 2) == 5
    assert W.chunk_size(8500, 8) == W.MAX_CHUNK


# a tune that makes the worker parsing it exit at once (in the caller it parses as usual)
CRASHER = "exit.abc#99 (Exit)"
PARSED_IN_CALLER: list[str] = []


def _exit_in_worker(item, spq, instrument):
    import multiprocessing

    if multiprocessing.parent_process() is None:
        PARSED_IN_CALLER.append(item[1])
    elif item[1] == CRASHER:
        os._exit(3)
    return P.parse_item(item, spq, instrument)


def test_a_crashed_worker_leaves_its_tunes_to_the_caller(caplog):
    items = [("abc", n, t) for n, t in P._split_abc(ABC_TUNES * 6, "t.abc")]
    items.append(("abc", CRASHER, "X:99\nT:Exit\nL:1/4\nK:G\nGABc|d4|]\n"))
    PARSED_IN_CALLER.clear()
    with caplog.at_level("WARNING", logger="seqgan.music"):
        got = W.parse_all(items, 4, None, 2, False, "crash", parse=_exit_in_worker)
    assert got == [P.parse_item(it, 4, None) for it in items]
    assert got[-1][1] is not None and got[-1][3] is None  # the crasher's tune, read by the caller
    # the pool broke (BrokenProcessPool); the caller parsed what was not answered yet
    assert "worker died" in caplog.text and CRASHER in PARSED_IN_CALLER


def test_workers_load_neither_torch_nor_the_training_code(tmp_path):
    """A process pool run from a Python without torch: the workers never import it."""
    script = tmp_path / "probe.py"
    script.write_text(textwrap.dedent(f'''
        import json
        import sys

        from seqgan.datasets import music_readers, music_workers


        def probe(item, spq, instrument):
            result = music_readers.parse_item(item, spq, instrument)
            return result, sorted(m for m in sys.modules if m == "torch" or m.startswith("seqgan"))


        if __name__ == "__main__":
            items = [("abc", n, t) for n, t in music_readers._split_abc({ABC_TUNES!r}, "t.abc")]
            out = music_workers.parse_all(items, 4, None, 2, False, "probe", parse=probe)
            serial = [music_readers.parse_item(it, 4, None) for it in items]
            assert [r for r, _ in out] == serial
            print(json.dumps([sorted({{m for _, mods in out for m in mods}}), "torch" in sys.modules]))
        '''))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    worker_modules, parent_has_torch = json.loads(proc.stdout.splitlines()[-1])
    assert "torch" not in worker_modules and not parent_has_torch
    assert "seqgan.datasets.music_readers" in worker_modules
    assert set(worker_modules) <= {"seqgan", "seqgan.errors", "seqgan.version", "seqgan.datasets", "seqgan.datasets.vocab",
                                   "seqgan.datasets.music_readers", "seqgan.datasets.music_workers",
                                   "seqgan.datasets.music_organ"}


@pytest.mark.skipif(not NOTTINGHAM.is_file(), reason=f"shared data not found at {NOTTINGHAM}")
def test_nottingham_parses_and_reports_skips(tmp_path):
    c = load_corpus(str(NOTTINGHAM), cfg(tmp_path, workers=None), seed=0)
    info = c.info
    assert info["tunes"] + info["skipped"] == 1037
    assert 1 <= info["skipped"] <= 20 and len(info["skipped_examples"]) >= 1
    assert info["tunes"] > 1000 and c.train.shape[0] > 5000 and c.seq_len == 32
    assert info["time_signature"] in ("4/4", "6/8", "2/4", "3/4")


# -- music21 corpora ----------------------------------------------------------------------
def test_music21_essen_subset(tmp_path):
    c = load_corpus("music21:essen", cfg(tmp_path, max_tunes=20), seed=0)
    assert c.info["tunes"] + c.info["skipped"] == 20 and c.info["tunes"] >= 18
    assert c.info["key"] == "tonic" and c.train.shape[1] == 32 and c.train.shape[0] > 20
    assert c.info["test_tunes"] == 1


def test_music21_bach_soprano(tmp_path):
    c = load_corpus("music21:bach", cfg(tmp_path, max_tunes=2, window=16), seed=0)
    lo, hi = c.vocab.meta["pitch_range"]
    assert c.info["tunes"] == 2 and lo >= 52 and hi <= 84  # a soprano line, not the bass


def test_unknown_corpus_and_option():
    with pytest.raises(UserError, match="essen, oneills, bach"):
        load_corpus("music21:nosuchcorpus", cfg())
    with pytest.raises(UserError, match="unknown music data option.*windoww"):
        load_corpus("music21:essen", cfg(windoww=8))
    with pytest.raises(UserError, match="transpose"):
        load_corpus("music21:essen", cfg(transpose="d"))


# -- folders, files, errors -------------------------------------------------------------
def test_empty_folder_and_no_music_files(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="is empty"):
        load_corpus(str(empty), cfg())
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("hello")
    with pytest.raises(UserError, match="no MIDI"):
        load_corpus(str(other), cfg())


def test_corrupt_midi(tmp_path):
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"MThd\x00\x00\x00\x06garbage that is not a midi file")
    with pytest.raises(UserError, match="cannot read a melody from .*bad.mid"):
        load_corpus(str(bad), cfg())
    folder = tmp_path / "songs"
    folder.mkdir()
    (folder / "bad.mid").write_bytes(bad.read_bytes())
    with pytest.raises(UserError, match="no melody could be read.*all 1"):
        load_corpus(str(folder), cfg())
    # next to a good file the corrupt one is skipped and counted
    seq = enc("C4 _ E4 _ G4 _ C5 _ B4 _ G4 _ E4 _ C4 _")
    export_samples(VOCAB, seq[None], folder, prefix="good")
    c = load_corpus(str(folder), cfg(window=16, test_fraction=0), seed=0)
    assert c.info["tunes"] == 1 and c.info["skipped"] == 1
    assert "bad.mid" in c.info["skipped_examples"][0]


def test_musicxml_file(tmp_path):
    from music21 import meter, note, stream

    s = stream.Score()
    for name, pitches in (("Soprano", ["E5", "D5", "C5", "D5"]), ("Bass", ["C3", "G2", "A2", "G2"])):
        part = stream.Part()
        part.partName = name
        part.append(meter.TimeSignature("4/4"))
        for p in pitches:
            part.append(note.Note(p, quarterLength=1))
        s.insert(0, part)
    path = tmp_path / "tiny.musicxml"
    s.write("musicxml", fp=str(path))
    c = load_corpus(str(path), cfg(window=16, transpose="none", test_fraction=0), seed=0)
    assert format_samples(c.vocab, c.train) == ["E5 _ _ _ D5 _ _ _ C5 _ _ _ D5 _ _ _"]


# -- MIDI export ------------------------------------------------------------------------
MELODY = "C4 _ _ _ E4 _ R _ G4 G4 _ _ _ _ _ _ C5 R R B4 _ _ A4 _ _ _ _ _ _ _ _ F#4"
# onset step, steps, pitch
MELODY_NOTES = [(0, 4, 60), (4, 2, 64), (8, 1, 67), (9, 7, 67), (16, 1, 72), (19, 3, 71),
                (22, 9, 69), (31, 1, 66)]


def test_decode_notes_by_hand():
    assert M.decode_notes(VOCAB, enc(MELODY)) == MELODY_NOTES
    assert M.decode_notes(VOCAB, enc("_ _ C4 R _ D4 <pad> _")) == [(2, 1, 60), (5, 1, 62)]


def test_midi_roundtrip_pretty_midi_mido_music21(tmp_path):
    import mido
    import pretty_midi
    from music21 import converter

    tempo = 100
    paths = export_samples(VOCAB, enc(MELODY)[None].repeat(2, 1), tmp_path / "mid", tempo=tempo,
                           program=73)
    assert [p.name for p in paths] == ["sample_0000.mid", "sample_0001.mid"]
    step = 60 / tempo / 4
    pm = pretty_midi.PrettyMIDI(str(paths[0]))
    assert pm.instruments[0].program == 73
    got = [(n.pitch, n.start, n.end) for n in pm.instruments[0].notes]
    want = [(p, s * step, (s + n) * step) for s, n, p in MELODY_NOTES]
    assert [g[0] for g in got] == [w[0] for w in want]
    np.testing.assert_allclose([g[1:] for g in got], [w[1:] for w in want], atol=1e-6)

    mf = mido.MidiFile(str(paths[0]))
    tpq = mf.ticks_per_beat
    on, notes = {}, []
    for track in mf.tracks:
        t = 0
        for msg in track:
            t += msg.time
            if msg.type == "note_on" and msg.velocity > 0:
                on[msg.note] = t
            elif msg.type in ("note_off", "note_on"):
                notes.append((on.pop(msg.note) * 4 // tpq, (t - 0) * 4 // tpq, msg.note))
    notes.sort()
    assert [(s, e - s, p) for s, e, p in notes] == MELODY_NOTES
    tempos = [m.tempo for tr in mf.tracks for m in tr if m.type == "set_tempo"]
    assert tempos and all(t == mido.bpm2tempo(tempo) for t in tempos)

    score = converter.parse(str(paths[0]))
    got21 = [(int(n.offset * 4), int(n.quarterLength * 4), n.pitch.midi) for n in score.flatten().notes]
    assert got21 == MELODY_NOTES
    assert score.flatten().getElementsByClass("TimeSignature")[0].ratioString == "4/4"


def test_midi_roundtrip_through_our_loader(tmp_path):
    # canonical token form: silence is REST only (a HOLD after REST would read back as R)
    canonical = MELODY.replace("R _", "R R")
    rows = torch.stack([enc(canonical), enc("A4 _ G4 _ E4 _ _ _ D4 _ E4 _ G4 _ A4 _ " * 2)])
    export_samples(VOCAB, rows, tmp_path / "songs")
    c = load_corpus(str(tmp_path / "songs"), cfg(window=32, transpose="none", test_fraction=0), seed=0)
    assert sorted(format_samples(c.vocab, c.train)) == sorted(format_samples(VOCAB, rows))


def test_tokens_to_midi_checks():
    with pytest.raises(UserError):
        tokens_to_midi(VOCAB, enc(MELODY), program=200)
    with pytest.raises(UserError):
        tokens_to_midi(VOCAB, enc(MELODY)[None])
    pm = tokens_to_midi(VOCAB, enc("R R R R"))  # silence: an empty track, still valid
    assert pm.instruments[0].notes == []


def test_piano_roll_png(tmp_path):
    x = enc(MELODY)[None].repeat(20, 1)
    path = piano_roll_png(VOCAB, x, tmp_path / "rolls" / "roll.png", max_rows=6)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_format_lines():
    assert format_samples(VOCAB, enc("C4 _ _ _ E4 _ R _")[None]) == ["C4 _ _ _ E4 _ R _"]
    assert M.format_lines(VOCAB, torch.tensor([[len(VOCAB) + 1, 0, 1]])) == ["? <pad> <bos>"]


# -- metrics ------------------------------------------------------------------------------
def test_music_metrics_by_hand():
    a = enc("C4 _ E4 _ G4 _ C5 _")  # +4 +3 +5: melodicity 1/3, no fifth, no step
    b = enc("C4 _ G4 _ D5 _ C5 _")  # +7 +7 -2: tonality 2/3, melodicity 2/3, steps 1/3
    x = torch.stack([a, a, b])
    m = music_metrics(x, VOCAB, train_tokens=a[None])
    assert m["tonality"] == pytest.approx((0 + 0 + 2 / 3) / 3)
    assert m["melodicity"] == pytest.approx((1 / 3 + 1 / 3 + 2 / 3) / 3)
    assert m["ratio_of_steps"] == pytest.approx(1 / 9)
    assert m["unique"] == pytest.approx(200 / 3)
    assert m["novel"] == pytest.approx(100 / 3)
    # pairs (a,a)=0, (a,b)=(a,b)=2 substitutions of 8 -> mean over 3 pairs = 4/3 / 8
    assert m["diversity"] == pytest.approx((0 + 2 + 2) / 3 / 8)
    # a: C E G C -> p = (1/2, 1/4, 1/4): 1.5 bits; b: C G D C -> 1.5 bits
    assert m["pitch_class_entropy"] == pytest.approx(1.5)
    # 12 onsets in 3 x 8 steps, 16 steps a bar -> 8 per bar
    assert m["notes_per_bar"] == pytest.approx(12 / (24 / 16))
    assert "novel" not in music_metrics(x, VOCAB)


def test_diversity_identical_is_zero_and_sampled_is_seeded():
    x = enc(MELODY)[None].repeat(50, 1)
    assert diversity(x) == 0.0 and diversity(x[:1]) == 0.0
    g = torch.Generator().manual_seed(0)
    y = torch.randint(4, 20, (300, 16), generator=g)
    exact = diversity(y, max_pairs=10**6)
    s1, s2 = diversity(y, max_pairs=2000, seed=3), diversity(y, max_pairs=2000, seed=3)
    assert s1 == s2 and abs(s1 - exact) < 0.02


def test_edit_distance_matches_reference():
    def lev(a, b):
        prev = list(range(len(b) + 1))
        for i, x in enumerate(a, 1):
            cur = [i]
            for j, y in enumerate(b, 1):
                cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
            prev = cur
        return prev[-1]

    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 3, (200, 10), generator=g)
    b = torch.randint(0, 3, (200, 10), generator=g)
    assert edit_distance(a, b).tolist() == [lev(x, y) for x, y in zip(a.tolist(), b.tolist())]
    # a shift by one is 2 edits, not 8 substitutions
    shifted = edit_distance(torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8]]),
                            torch.tensor([[0, 1, 2, 3, 4, 5, 6, 7]]))
    assert shifted.item() == 2
