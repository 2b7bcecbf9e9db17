"""What the bad-input tests share: the contract a reader must keep, and valid files to spoil.

Used by ``test_bad_inputs.py``, ``test_bad_inputs_more.py`` and ``test_fuzz_readers.py``.
A module that imports :func:`_isolated` gets, for all its tests, a private music cache and
an address space capped a few GiB above what the process holds (so that an input which
makes a reader allocate gigabytes fails that allocation rather than eating the shared
machine's memory).
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from click.testing import Result
from helpers import fails_cleanly, invoke, no_run_left, no_temp_left, succeeds, traceback_of

HEADROOM = 6 << 30  # bytes of address space allowed above what the process holds


# -- the contract -----------------------------------------------------------------------------
class address_space_cap:
    """Lower the soft RLIMIT_AS to the current size + HEADROOM (Linux); restore on exit.

    ``active`` says whether the cap is in place.
    """

    def __enter__(self):
        self.old, self.active = None, False
        try:
            import resource

            vm = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status")
                      if line.startswith("VmSize:"))
        except (ImportError, OSError, StopIteration):
            return self
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = vm + HEADROOM
        if hard != resource.RLIM_INFINITY:
            cap = min(cap, hard)
        if soft == resource.RLIM_INFINITY or soft > cap:
            resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
            self.old = (soft, hard)
        self.active = True
        return self

    def __exit__(self, *exc):
        if self.old is not None:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, self.old)
        return False


@pytest.fixture(scope="module", autouse=True)
def _isolated(tmp_path_factory):
    """A private music cache, and an address-space cap so no input can exhaust memory."""
    mp = pytest.MonkeyPatch()
    mp.setenv("SEQGAN_CACHE_DIR", str(tmp_path_factory.mktemp("music-cache")))
    with address_space_cap():
        yield
    mp.undo()


def pretrain(data, out: Path, *options) -> Result:
    """``seqgan pretrain`` of ``data`` into ``out``: the quick preset, no epoch, on the CPU."""
    return invoke("pretrain", "--data", data, "--out", out, "--preset", "quick", "--epochs", "0",
                  "--device", "cpu", *options)


def check(r: Result, out: Path, expect: str, *words: str) -> str:
    """The whole contract for one input; says what happened, ``"load"`` or ``"error"``.

    ``expect``: ``"error"`` (exit 2, one ``error:`` line ending stderr that holds ``words``,
    no traceback, no run folder ``out`` nor temp folder left), ``"load"`` (exit 0, a run
    ``out`` and no temp folder; ``words`` on stderr) or ``"either"`` (one of the two, nothing
    else; ``words`` are not checked).
    """
    if expect == "either":
        assert r.exception is None or isinstance(r.exception, SystemExit), traceback_of(r)
        assert r.exit_code in (0, 2), (r.exit_code, r.output[-2000:])
        expect = "load" if r.exit_code == 0 else "error"
        words = ()
    if expect == "load":
        stderr = succeeds(r)
        assert out.is_dir(), r.output[-2000:]
        no_temp_left(out)
        for w in words:
            assert w in stderr, (w, stderr[-2000:])
    else:
        fails_cleanly(r, *words)
        no_run_left(out)
    return expect


# -- valid files of each kind -------------------------------------------------------------------
def sentences(n: int) -> str:
    """``n`` lines of text."""
    return "".join(f"the café number {i} is open\n" for i in range(n))


def abc_tune(header: str = "M:4/4\nL:1/8\nK:G", body: str = "GABc dcBA|GFED CDEF|G2B2 d2g2|",
             x: int = 1, title: str = "Spoilt") -> str:
    """One ABC tune, reference number ``x``, and the blank line that ends it."""
    return f"X:{x}\nT:{title}\n{header}\n{body}\n\n"


def xml_notes(steps: str, duration: str = "1", kind: str = "eighth", octave: int = 4,
              alter: str = "") -> str:
    """MusicXML ``<note>`` elements, one per letter of ``steps``."""
    alter = f"<alter>{alter}</alter>" if alter else ""
    return "".join(f"<note><pitch><step>{s}</step>{alter}<octave>{octave}</octave></pitch>"
                   f"<duration>{duration}</duration><type>{kind}</type></note>" for s in steps)


def musicxml(*measures: str, divisions: str = "2", fifths: str = "0", beats: str = "4",
             beat_type: str = "4", duration: str = "1") -> str:
    """A one-part score of ``measures`` (each a string of notes; by default one measure of the
    C major scale in eighths of ``duration`` divisions each)."""
    first, *rest = measures or (xml_notes("CDEFGABC", duration),)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<score-partwise version="3.1"><part-list><score-part id="P1"><part-name>Melody'
            '</part-name>\n</score-part></part-list><part id="P1">\n'
            f'<measure number="1"><attributes><divisions>{divisions}</divisions><key><fifths>'
            f'{fifths}</fifths></key>\n<time><beats>{beats}</beats><beat-type>{beat_type}'
            f'</beat-type></time></attributes>\n{first}'
            + "".join(f'</measure>\n<measure number="{i}">{m}' for i, m in enumerate(rest, 2))
            + "</measure></part></score-partwise>\n")


def midi_bytes(repeats: int = 2) -> bytes:
    """A MIDI file of one piano: the scale C4..C5 ``repeats`` times, in eighths at 120 bpm."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(0)
    for i, p in enumerate([60, 62, 64, 65, 67, 69, 71, 72] * repeats):
        inst.notes.append(pretty_midi.Note(velocity=80, pitch=p, start=i * 0.25, end=(i + 1) * 0.25))
    pm.instruments.append(inst)
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


GATES = ("i", "f", "og", "c")


def oracle_arrays(V: int = 12, E: int = 4, H: int = 4, seed: int = 3) -> dict[str, np.ndarray]:
    """Random parameters of an oracle LSTM: vocabulary V, embedding E, hidden size H."""
    rng = np.random.default_rng(seed)
    shapes = {"embedding": (V, E), "Wo": (H, V), "bo": (V,), **{f"W{g}": (E, H) for g in GATES},
              **{f"U{g}": (H, H) for g in GATES}, **{f"b{g}": (H,) for g in GATES}}
    return {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}


def npz(arrays: dict[str, np.ndarray]) -> bytes:
    """``arrays`` as the bytes of an ``.npz`` file."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()
