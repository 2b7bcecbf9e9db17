"""Seeded fuzzing of the readers: text, ABC, MIDI, MusicXML and oracle ``.npz`` files.

Every case starts from a valid file (real Nottingham tunes, a MIDI file that pretty_midi
writes here, a small MusicXML score, a text of sentences, oracle parameters) or from
nothing, and spoils it with a mutation drawn from ``random.Random(f"{reader}-{seed}")``:
truncation, flipped bytes, inserted, deleted or repeated chunks, splices, random bytes or a
soup of the reader's own characters. The seeds are fixed, so every run tries the same
files (string seeds do not depend on PYTHONHASHSEED).

Contract, through ``seqgan pretrain`` in-process: the input either loads (exit 0, a run
directory) or the command ends with exactly one line ``error: ...`` on stderr, exit
status 2, no traceback, and neither the run folder nor a ``.NAME.*.creating`` temp folder
beside it is left.

The process's address space is capped (``RLIMIT_AS``, a few GiB above what it uses) while
these tests run, so that a mutation that declares an absurd note length or track length
fails an allocation instead of eating the shared machine's memory.
"""
from __future__ import annotations

import io
import random
import re
from pathlib import Path

import pytest
from bad_input_contract import _isolated  # noqa: F401 (autouse: a private music cache, memory capped)
from bad_input_contract import abc_tune, check, musicxml, npz, oracle_arrays, pretrain, xml_notes

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
NOTTINGHAM = SHARED / "nottingham_abc" / "nottingham.abc.txt"
NO_CACHE = ("--data-option", "cache=false")


# -- valid files to start from ------------------------------------------------------------
TEXT = ("".join(f"the café number {i} is open until {i % 7} o'clock\n" for i in range(24))
        + "naïve façade — “quoted” words ½\n\nlast line without newline").encode()

ABC_FALLBACK = "".join(abc_tune("M:6/8\nL:1/8\nK:D", '|:"D"d2e f2g|"A"a3 A3|(3Bcd e>f g2|1 d6:|2 d3 z3||',
                                x=i, title=f"Tune {i}") for i in range(1, 4))

MUSICXML = musicxml(xml_notes("GABCDE"), xml_notes("FDC", "2", "quarter", octave=5, alter="1"),
                    fifths="1", beats="3")


def real_abc_tunes(n: int = 3) -> str:
    """The file header and the first ``n`` tunes of the Nottingham database (or stand-ins)."""
    if not NOTTINGHAM.is_file():
        return ABC_FALLBACK
    text = NOTTINGHAM.read_text(encoding="utf-8", errors="replace")
    parts = text.split("\nX:")
    return parts[0] + "".join("\nX:" + p for p in parts[1:n + 1])


def midi_bytes() -> bytes:
    """A melody, a bass line and drums, with a metre, a key and a tempo change."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=100)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(3, 4, 0))
    pm.key_signature_changes.append(pretty_midi.KeySignature(2, 0))  # D major
    melody, bass = pretty_midi.Instrument(73, name="Flute"), pretty_midi.Instrument(32, name="Bass")
    drums = pretty_midi.Instrument(0, is_drum=True)
    for i, p in enumerate([62, 64, 66, 67, 69, 71, 73, 74, 73, 71, 69, 67]):
        melody.notes.append(pretty_midi.Note(velocity=90, pitch=p, start=i * 0.3, end=i * 0.3 + 0.28))
        drums.notes.append(pretty_midi.Note(velocity=60, pitch=42, start=i * 0.3, end=i * 0.3 + 0.1))
    for i, p in enumerate([38, 45, 38, 43]):
        bass.notes.append(pretty_midi.Note(velocity=70, pitch=p, start=i * 0.9, end=i * 0.9 + 0.85))
    melody.pitch_bends.append(pretty_midi.PitchBend(200, 0.5))
    melody.control_changes.append(pretty_midi.ControlChange(64, 127, 1.0))
    pm.instruments += [melody, bass, drums]
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


@pytest.fixture(scope="module")
def bases() -> dict[str, bytes]:
    pytest.importorskip("pretty_midi")
    return {"txt": TEXT, "abc": real_abc_tunes().encode(), "mid": midi_bytes(),
            "musicxml": MUSICXML.encode(), "npz": npz(oracle_arrays(seed=7))}


# -- mutations ------------------------------------------------------------------------------
SOUPS = {  # characters a reader gives meaning to, for "soup" mutations
    "txt": "abcdefghij klmno \n\n\t\r.,;'\"-—é½\x0b\x0c",
    "abc": "ABCDEFGabcdefgzxZ0123456789/|:[]()^_=,'<>-.~\"!{}% \n\nXTMLKQVPw+",
    "musicxml": "<>/=\" \nabcdefghijklmnopqrstuvwxyz0123456789-?!&;",
}
ABC_FIELDS = ["M:3/0", "M:0/4", "M:C|", "M:abc", "M:13/16", "L:1/0", "L:1/3", "L:", "K:Hm",
              "K:C clef=bass", "K:Bb dor", "K:", "V:2", "Q:1/4=0", "X:", "X:99", "T:"]


def mutate(data: bytes, rng: random.Random, soup: str | None, others: list[bytes]) -> bytes:
    """One seeded mutation of ``data``; sometimes two stacked."""
    kinds = ["truncate", "flip", "insert", "delete", "repeat", "splice", "random", "zero"]
    if soup:
        kinds += ["soup", "soup-insert"]
    kind = rng.choice(kinds)
    n = len(data)
    b = bytearray(data)
    if kind == "truncate":
        out = data[:rng.randrange(n + 1)]
    elif kind == "flip":
        for _ in range(rng.randint(1, 12)):
            if b:
                b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        out = bytes(b)
    elif kind == "insert":
        at = rng.randrange(n + 1)
        out = data[:at] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 64))) + data[at:]
    elif kind == "delete":
        at = rng.randrange(n + 1)
        out = data[:at] + data[at + rng.randint(1, max(1, n // 4)):]
    elif kind == "repeat":
        at = rng.randrange(n + 1)
        chunk = data[at:at + rng.randint(1, 80)]
        out = data[:at] + chunk * rng.randint(2, 20) + data[at:]
    elif kind == "splice":
        other = rng.choice(others)
        out = data[:rng.randrange(n + 1)] + other[rng.randrange(len(other) + 1):]
    elif kind == "random":
        out = bytes(rng.randrange(256) for _ in range(rng.choice([1, 7, 64, 700, 3000])))
    elif kind == "zero":
        at = rng.randrange(n + 1)
        out = data[:at] + b"\x00" * rng.randint(1, 16) + data[at + 16:]
    elif kind == "soup":
        out = "".join(rng.choice(soup) for _ in range(rng.randint(1, 1500))).encode()
    else:  # soup-insert
        at = rng.randrange(n + 1)
        out = data[:at] + "".join(rng.choice(soup) for _ in range(rng.randint(1, 200))).encode() + data[at:]
    if rng.random() < 0.25 and out:
        return mutate(out, rng, soup, others)
    return out


XML_VALUES = ["0", "-1", "-0", "1", "3.5", "1e9", "9999", "abc", "", "H", "C", "128", "-7", "99"]


def xml_mutation(data: bytes, rng: random.Random, others: list[bytes]) -> bytes:
    """MusicXML: keep the markup, change a few values (durations, octaves, steps, divisions,
    beats, fifths), so the parser gets past XML; else a generic mutation."""
    if rng.random() < 0.6:
        text = data.decode()
        for _ in range(rng.randint(1, 4)):  # the content of a leaf element: <octave>4</octave>
            spans = [m.span(2) for m in re.finditer(r"<([a-z-]+)>([^<>]*)</\1>", text)]
            a, b = rng.choice(spans)
            text = text[:a] + rng.choice(XML_VALUES) + text[b:]
        return text.encode()
    return mutate(data, rng, SOUPS["musicxml"], others)


def midi_mutation(data: bytes, rng: random.Random, others: list[bytes]) -> bytes:
    """MIDI: change data bytes (< 0x80: pitches, velocities, delta times, meta values) inside
    the tracks, which keeps the event structure; or a header and noise; else generic."""
    x = rng.random()
    if x < 0.4:
        b = bytearray(data)
        body = [i for i in range(22, len(b)) if b[i] < 0x80]
        for _ in range(rng.randint(1, 10)):
            b[rng.choice(body)] = rng.randrange(0x80)
        return bytes(b)
    if x < 0.6:
        return b"MThd\x00\x00\x00\x06" + bytes(rng.randrange(256) for _ in range(rng.randint(0, 400)))
    return mutate(data, rng, None, others)


def abc_mutation(data: bytes, rng: random.Random, others: list[bytes]) -> bytes:
    """ABC only: swap one header field for a broken or odd one, else a generic mutation."""
    if rng.random() < 0.3:
        lines = data.decode("utf-8", "replace").split("\n")
        fields = [i for i, line in enumerate(lines) if line[:2] in ("M:", "L:", "K:", "X:", "T:")]
        if fields:
            lines[rng.choice(fields)] = rng.choice(ABC_FIELDS)
            return "\n".join(lines).encode()
    return mutate(data, rng, SOUPS["abc"], others)


# -- the fuzz tests ---------------------------------------------------------------------------
N_TEXT, N_ABC, N_MIDI, N_XML, N_NPZ = 30, 40, 30, 20, 12
FUZZ = {  # reader -> (seeds, file name, mutation, the bases spliced in, options)
    "txt": (N_TEXT, "sentences.txt", lambda d, rng, o: mutate(d, rng, SOUPS["txt"], o), ("abc", "musicxml"),
            ()),
    "abc": (N_ABC, "tunes.abc", abc_mutation, ("txt", "mid"), (*NO_CACHE, "--data-option", "max_tunes=16")),
    "musicxml": (N_XML, "score.musicxml", xml_mutation, ("txt", "abc"), NO_CACHE),
    "npz": (N_NPZ, "params.npz", lambda d, rng, o: mutate(d, rng, None, o), ("mid", "txt"), ()),
}


@pytest.mark.parametrize("reader,seed", [(k, s) for k, v in FUZZ.items() for s in range(v[0])])
def test_fuzz_file(tmp_path, bases, reader, seed):
    _, name, mutation, others, options = FUZZ[reader]
    f = tmp_path / name
    f.write_bytes(mutation(bases[reader], random.Random(f"{reader}-{seed}"), [bases[o] for o in others]))
    out = tmp_path / "run"
    check(pretrain(f"oracle:{f}" if reader == "npz" else f, out, *options), out, "either")


# cut points inside the real tunes, as fractions of the file: header, first tune, body
ABC_CUTS = (0.02, 0.1, 0.25, 0.4, 0.55, 0.7, 0.85, 0.97)


@pytest.mark.parametrize("cut", ABC_CUTS)
def test_truncated_real_abc_tunes(tmp_path, bases, cut):
    data = bases["abc"]
    f = tmp_path / "tunes.abc"
    f.write_bytes(data[:int(len(data) * cut)])
    out = tmp_path / "run"
    check(pretrain(f, out, *NO_CACHE), out, "either")


@pytest.mark.parametrize("seed", range(N_MIDI))
def test_fuzz_midi_folder(tmp_path, bases, seed):
    """A folder with one or two spoilt MIDI files, and sometimes an intact one beside them."""
    rng = random.Random(f"mid-{seed}")
    folder = tmp_path / "songs"
    folder.mkdir()
    for i in range(rng.choice([1, 1, 2])):
        data = midi_mutation(bases["mid"], rng, [bases["txt"], bases["npz"]])
        (folder / f"spoilt{i}.mid").write_bytes(data)
    if rng.random() < 0.3:
        (folder / "intact.mid").write_bytes(bases["mid"])
    out = tmp_path / "run"
    check(pretrain(folder, out, *NO_CACHE), out, "either")


def test_the_fuzz_is_deterministic_and_varied(bases):
    """Same seeds, same files; and the mutations are not all alike."""
    def draw(seed: int) -> bytes:
        return abc_mutation(bases["abc"], random.Random(f"abc-{seed}"), [bases["txt"], bases["mid"]])

    assert [draw(s) for s in range(5)] == [draw(s) for s in range(5)]
    assert len({draw(s) for s in range(N_ABC)}) == N_ABC


def test_unspoilt_bases_load(tmp_path, bases):
    """The reference point: every file the fuzz starts from loads."""
    for kind, data in bases.items():
        f = tmp_path / f"ok.{kind}"
        if kind == "mid":
            f = tmp_path / "midi" / "ok.mid"
            f.parent.mkdir()
        f.write_bytes(data)
        spec = f"oracle:{f}" if kind == "npz" else (f.parent if kind == "mid" else f)
        out = tmp_path / f"run-{kind}"
        check(pretrain(spec, out, *([] if kind in ("txt", "npz") else NO_CACHE)), out, "load")
