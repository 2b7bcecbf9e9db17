"""ORGAN's reading of ABC files, ``--data-option parser=organ``: a compatibility mode.

ORGAN's music experiments (Guimaraes et al. 2017; gablg1/ORGAN, ``load_train_data`` of
``model/music_metrics.py`` and ``organ/music_metrics.py``, ABC version) do not parse ABC:
they scan it a character at a time. This module reproduces that token stream, from the
behaviour of that code (none of it is copied), so that the music metrics and training can
run on the data ORGAN trained on. It is never the default: the default reading
(:mod:`seqgan.datasets.music_readers`, music21's tokenizer) reads the music that is written.

**Lines.** The file's first line is discarded. A line whose first character is one of
``T % S M K P L " space ( ) m - \\ ! t r i l z [ + n o #`` (or that is blank) is skipped
whole, so *every line that starts with a chord symbol* ``"G"`` is lost, as are the header
fields ``T: M: L: K: P: S:``; other fields (``R:reel``, ``N:``, ``C:``) are scanned as
music. A line starting with ``X`` ends the current tune and starts the next; the tune in
progress when the file ends is never kept (the file's last tune is lost), and the text
before the first ``X`` line is a tune of its own (usually empty).

**Characters** (state: the pending token, "in a note", "after a bar"; it is never reset,
not even between tunes). The characters of the list above are skipped wherever they are,
including the quotes around chord symbols, so the letters of ``"Am"`` and ``"D7"`` become
notes (``m`` is skipped, ``7`` is a length). A note letter ``A-G a-g`` opens a token after
a bar token or when nothing is pending; after a pending letter it closes that token and
opens its own; after a pending ``/`` it deletes the first pending character and is itself
lost; after anything else (an accidental, ``,``, ``'``, ``>``) it is lost. ``_ ^ =`` close
the pending token and become the pending one (the note after an accidental is therefore
lost). A digit closes a note with itself appended (``d2``), and is dropped outside a
note. ``|`` and ``:`` close the note and make bar tokens (``|``, ``||``, ``:|``, ...;
empty tokens ``""`` are emitted on the way). Anything else is appended to the pending token.

**Notes.** ORGAN's metrics read a token as a note when, stripped of ``_ ^ = \\`` and digits
at its ends, it is one of the 28 names ``C, D, E, F, G, A, B, C D E F G A B c d e f g a b
c' d' e' f' g' a' b'``: natural notes (no key signature is applied, accidentals are lost),
no rests, no durations. :func:`organ_notes` turns those into the notes of the time grid,
in order, each at the pitch of its name in standard ABC (``C`` = MIDI 60; ORGAN's
frequency table puts every name an octave lower, which changes no interval) and as long as
its digit says (one digit, ``0`` or none = 1) in units of the tune's ``L:`` field (ABC's
default when absent: 1/16 below 3/4 time, else 1/8), which ORGAN's metrics never look at.
The melody's intervals, and so tonality, melodicity and ratio of steps, are exactly those
of ORGAN's note list. The other tokens (bars, ``""``, ``/``) have no place on a time grid.

ORGAN's MIDI variant of the metrics (``organ/music_metrics.py`` at commit e6da226, notes
0..47 read from a pickle) scores melodicity as ``... if len(seq) > 1`` where ``seq`` is
undefined in that function: the NameError is swallowed by a bare ``except`` and melodicity
is 0.0 for every sequence. That is documentation only; no metric here reproduces it.

Standard library only (worker processes import this module through music_readers).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["OrganSong", "organ_songs", "organ_note_names", "organ_vocab_size", "organ_items",
           "organ_notes", "NOTE_NAMES"]

# first characters of skipped lines, and characters skipped inside a line
IGNORED = frozenset('TSMKPL%"\n ()m-\\!trilzn[+o#')
LETTERS = frozenset("ABCDEFGabcdefg")
ACCIDENTALS = frozenset("_^=")
BARS = frozenset("|:")
DIGITS = frozenset("0123456789")  # ORGAN ran on Python 2 byte strings: ASCII digits only
STRIPPED = "_^=\\0123456789"  # what ORGAN's clean() strips from both ends of a token
# the 28 names ORGAN's metrics know, lowest first, and their MIDI pitch in standard ABC
NOTE_NAMES = tuple([f"{s}," for s in "CDEFGAB"] + list("CDEFGAB") + list("cdefgab")
                   + [f"{s}'" for s in "cdefgab"])
_STEP = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
PITCHES = {name: 48 + 12 * (i // 7) + _STEP[name[0].upper()] for i, name in enumerate(NOTE_NAMES)}


@dataclass
class OrganSong:
    """One tune as ORGAN's reader returns it (``tokens``), with what our grid needs and
    ORGAN never reads: the ``X:`` reference and title (for its name), the ``L:`` unit and
    ``M:`` meter of the lines that followed its ``X`` line."""

    tokens: list[str] = field(default_factory=list)
    ref: str | None = None
    title: str | None = None
    unit: str | None = None
    meter: str | None = None

    def header(self, line: str) -> None:
        """Remember the first ``T:``, ``L:`` and ``M:`` of a skipped line."""
        key, _, value = line.partition(":")
        value = value.strip()
        if key == "T" and self.title is None:
            self.title = value
        elif key == "L" and self.unit is None:
            self.unit = value
        elif key == "M" and self.meter is None:
            self.meter = value


class _Scanner:
    """ORGAN's character state machine; its state carries over lines and tunes."""

    def __init__(self) -> None:
        self.pending, self.in_note, self.after_bar = "", False, False

    def feed(self, line: str, out: list[str]) -> None:
        """Scan one line, appending the tokens it closes to ``out``."""
        for ch in line:
            if ch in IGNORED:
                continue
            if ch in LETTERS:
                self.in_note = True
                if self.after_bar:
                    self.after_bar = False
                    out.append(self.pending)
                    self.pending = ch
                elif not self.pending:
                    self.pending = ch
                elif self.pending[-1] in LETTERS:
                    out.append(self.pending)
                    self.pending = ch
                elif self.pending[-1] == "/":
                    self.pending = self.pending[1:]  # the letter itself is lost
            elif ch in ACCIDENTALS:
                self.in_note = True
                out.append(self.pending)
                self.pending = ch
            elif ch in DIGITS:
                if self.in_note:
                    out.append(self.pending + ch)
                    self.pending, self.in_note = "", False
            elif ch in BARS:
                if self.in_note:
                    out.append(self.pending)
                    self.pending = ""
                if self.after_bar:
                    out.append(self.pending + ch)
                    self.pending, self.after_bar = "", False
                else:
                    out.append(self.pending)
                    self.pending, self.after_bar = ch, True
                self.in_note = False
            else:
                self.pending += ch


def organ_songs(text: str) -> list[OrganSong]:
    """The tunes of an ABC file's text as ORGAN's reader returns them (see the module doc):
    the first line dropped, the text before the first ``X`` line as the first tune, the
    last tune missing."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lines = [line + "\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
    songs: list[OrganSong] = []
    song, scan = OrganSong(), _Scanner()
    for line in lines[1:]:  # the first line is read and thrown away
        if line[0] in IGNORED:
            song.header(line)
            continue
        if line[0] == "X":
            songs.append(song)
            song = OrganSong(ref=line[1:].lstrip(":").strip())
            continue
        scan.feed(line, song.tokens)
    return songs  # the tune in progress at the end of the file is not kept


def organ_note_names(tokens: list[str]) -> list[str]:
    """The tokens ORGAN's metrics read as notes (its ``clean``): stripped of ``_^=\\`` and
    digits at both ends, those that are one of :data:`NOTE_NAMES`."""
    names = (t.strip(STRIPPED) for t in tokens)
    return [n for n in names if n in PITCHES]


def organ_vocab_size(songs: list[OrganSong]) -> int:
    """The size of ORGAN's vocabulary of these tunes (its ``build_vocab``: the distinct tokens
    plus a start token ``^``, a pad token ``_`` and an extra ``hi``, a dict, so a token
    spelled like one of those is counted once)."""
    return len({t for s in songs for t in s.tokens} | {"^", "_", "hi"})


def _unit_ql(unit: str | None, meter: str | None) -> float:
    """The ABC unit note length in quarter notes: ``L:`` when readable, else ABC's default
    (1/16 for a meter below 3/4, else 1/8)."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", unit or "")
    if m and int(m.group(1)) > 0 and int(m.group(2)) > 0:
        return 4 * int(m.group(1)) / int(m.group(2))
    ts = _meter(meter)
    if ts is not None:
        num, den = map(int, ts.split("/"))
        return 0.25 if num / den < 0.75 else 0.5
    return 0.5


def _meter(meter: str | None) -> str | None:
    """``"3/4"`` from an ``M:`` value (``C`` is 4/4, ``C|`` 2/2); None when unreadable."""
    meter = (meter or "").strip()
    if meter == "C":
        return "4/4"
    if meter == "C|":
        return "2/2"
    m = re.fullmatch(r"(\d+)\s*/\s*(\d+)", meter)
    return f"{int(m.group(1))}/{int(m.group(2))}" if m and int(m.group(1)) and int(m.group(2)) else None


def organ_items(text: str, label: str) -> list[tuple[str, str, str]]:
    """An ABC file's text → ``[("organ", name, payload)]``, one item per tune ORGAN reads;
    the payload (JSON) holds the tune's tokens, unit length and meter."""
    items = []
    for k, song in enumerate(organ_songs(text)):
        ref = "(before the first X line)" if song.ref is None else song.ref or f"(tune {k})"
        name = f"{label}#{ref}" + (f" ({song.title})" if song.title else "")
        payload = json.dumps({"tokens": song.tokens, "unit_ql": _unit_ql(song.unit, song.meter),
                              "meter": _meter(song.meter)})
        items.append(("organ", name, payload))
    return items


def organ_notes(payload: str) -> tuple[list[tuple[float, float, int]], dict[str, Any]]:
    """One item's payload → notes ``(onset, duration in quarter notes, MIDI pitch)`` of the
    names ORGAN's metrics read, back to back, and the tune's metadata (meter; no key: ORGAN
    reads none). A ValueError for a tune of fewer than two notes, which ORGAN's training set
    leaves out (``verify_sequence``)."""
    data = json.loads(payload)
    unit = float(data["unit_ql"])
    notes, t = [], 0.0
    for token in data["tokens"]:
        name = token.strip(STRIPPED)
        if name not in PITCHES:
            continue
        digit = token[-1] if token[-1] in DIGITS else "1"
        ql = max(1, int(digit)) * unit
        notes.append((t, ql, PITCHES[name]))
        t += ql
    if len(notes) < 2:
        raise ValueError(f"ORGAN's reading keeps {len(notes)} note(s) of this tune and ORGAN drops "
                         f"tunes with fewer than two (its verify_sequence)")
    return notes, {"time_signature": data.get("meter"), "sig_pc": None, "tonic_pc": None}
