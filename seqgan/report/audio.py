"""MIDI files → audio (WAV or FLAC): FluidSynth with a General MIDI soundfont, or sine waves.

The synthesizer is FluidSynth's own command line (``fluidsynth -ni -F OUT -T TYPE -r RATE
SOUNDFONT IN.mid``), which renders a file faster than real time and plays the MIDI
program (0 = piano) with the soundfont's instrument. FluidSynth keeps rendering until
the last note's release has died away, so its files are the notes' length plus a tail of
about 3 s. Where FluidSynth or a soundfont is missing, the fallback is pretty_midi's
built-in synthesis (:meth:`pretty_midi.PrettyMIDI.synthesize`: a decaying sine wave per
note, whatever the program), written as 16-bit mono WAV by the standard library's
:mod:`wave` exactly as long as the notes; it cannot write FLAC.

Where things are found:

- the soundfont: ``soundfont`` (``--soundfont``), else ``$SEQGAN_SOUNDFONT``, else the
  first of :data:`SOUNDFONT_PATHS` that exists (Debian's ``fluid-soundfont-gm``, Fedora,
  Arch, Homebrew, conda); a soundfont that is named but missing, or is no SoundFont, is
  an error;
- the binary: ``$SEQGAN_FLUIDSYNTH`` (a path or a name on ``PATH``) [default:
  ``fluidsynth``].

Files are written atomically (a temporary name, then renamed), so an interrupted export
never leaves half a file under its final name.
"""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from seqgan.errors import UserError
from seqgan.files import atomic_write_bytes

FORMATS = ("wav", "flac")
SYNTHS = ("auto", "fluidsynth", "pretty_midi")
SAMPLE_RATE = 44100
GAIN = 1.0  # FluidSynth's master gain (its default 0.2 is quiet for one melody line)
SOUNDFONT_PATHS = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",  # Debian, Ubuntu: fluid-soundfont-gm
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/sounds/sf3/default-GM.sf3",
    "/usr/share/soundfonts/default.sf2",  # Fedora, Arch
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/opt/homebrew/share/soundfonts/default.sf2",  # Homebrew (Apple silicon, Intel)
    "/usr/local/share/soundfonts/default.sf2",
    "$CONDA_PREFIX/share/soundfonts/default.sf2",
    "~/.local/share/soundfonts/default.sf2",
)
HOW_TO_INSTALL = "see the README's 'Listen' section"


def check_format(fmt: str) -> str:
    """``fmt`` (``wav`` or ``flac``, any case), or a one-line UserError."""
    f = str(fmt).lower().lstrip(".")
    if f not in FORMATS:
        raise UserError(f"--format {fmt!r} is not an audio format this can write; choose one of: "
                        f"{', '.join(FORMATS)}")
    return f


def _check_soundfont(path: Path, where: str) -> Path:
    if not path.is_file():
        raise UserError(f"{where} {str(path)!r}: no such file; give a General MIDI soundfont (.sf2), "
                        f"{HOW_TO_INSTALL}")
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError as e:
        raise UserError(f"{where} {str(path)!r}: cannot read it: {e.strerror or e}") from None
    if head[:4] != b"RIFF" or head[8:12] != b"sfbk":
        raise UserError(f"{where} {str(path)!r} is not a SoundFont (.sf2/.sf3) file")
    return path


def find_soundfont(soundfont: str | Path | None = None) -> Path | None:
    """The soundfont to use: ``soundfont``, else ``$SEQGAN_SOUNDFONT``, else the first of
    :data:`SOUNDFONT_PATHS` that exists (None if none does). A named one must exist and be
    a SoundFont, else a one-line UserError."""
    if soundfont is not None:
        return _check_soundfont(Path(soundfont).expanduser(), "--soundfont")
    env = os.environ.get("SEQGAN_SOUNDFONT")
    if env:
        return _check_soundfont(Path(env).expanduser(), "$SEQGAN_SOUNDFONT")
    for p in SOUNDFONT_PATHS:
        if p.startswith("$CONDA_PREFIX") and not os.environ.get("CONDA_PREFIX"):
            continue
        path = Path(os.path.expandvars(p)).expanduser()
        if path.is_file():
            return path
    return None


def find_fluidsynth() -> str | None:
    """The FluidSynth binary: ``$SEQGAN_FLUIDSYNTH`` or ``fluidsynth``, looked up on ``PATH``."""
    return shutil.which(os.environ.get("SEQGAN_FLUIDSYNTH") or "fluidsynth")


@dataclass(frozen=True)
class Synth:
    """How files will be rendered: by ``binary`` with ``soundfont`` (FluidSynth), or by
    pretty_midi's sine waves when ``binary`` is None; ``notice`` says why the fallback."""

    fmt: str
    binary: str | None = None
    soundfont: Path | None = None
    sample_rate: int = SAMPLE_RATE
    notice: str | None = None

    @property
    def name(self) -> str:
        """``fluidsynth`` or ``pretty_midi``."""
        return "fluidsynth" if self.binary else "pretty_midi"

    def render(self, midi_path: str | Path, out_path: str | Path) -> Path:
        """Render one MIDI file to ``out_path`` (written atomically); the path."""
        out = Path(out_path)
        data = _fluidsynth(self, Path(midi_path)) if self.binary else _sine_wav(Path(midi_path), self.sample_rate)
        atomic_write_bytes(out, data)
        return out

    def render_all(self, midi_paths: Sequence[str | Path], out_dir: str | Path | None = None) -> list[Path]:
        """Render each MIDI file to a file of the same name with this format's suffix (in
        ``out_dir``, default beside it); FluidSynth runs as several processes at once."""
        outs = [(Path(out_dir) if out_dir else Path(p).parent) / Path(p).with_suffix(f".{self.fmt}").name
                for p in midi_paths]
        workers = max(1, min(len(outs), os.cpu_count() or 1, 8)) if self.binary else 1
        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(self.render, midi_paths, outs))


def choose_synth(fmt: str = "wav", soundfont: str | Path | None = None, synth: str = "auto",
                 sample_rate: int = SAMPLE_RATE) -> Synth:
    """Check the options and find the synthesizer, before anything is written.

    ``synth``: ``auto`` (FluidSynth when the binary and a soundfont are found, else
    pretty_midi with a one-line ``notice``), ``fluidsynth`` (an error without them) or
    ``pretty_midi``. FLAC needs FluidSynth.
    """
    fmt = check_format(fmt)
    if synth not in SYNTHS:
        raise UserError(f"synth {synth!r}: choose one of: {', '.join(SYNTHS)}")
    if not isinstance(sample_rate, int) or not 8000 <= sample_rate <= 192000:
        raise UserError(f"sample rate must be an integer in 8000..192000 Hz; got {sample_rate!r}")
    sf = find_soundfont(soundfont)  # a named soundfont is checked even if it is not used
    if synth == "pretty_midi":
        missing = "pretty_midi's sine waves were asked for"
    else:
        binary = find_fluidsynth()
        if binary and sf:
            return Synth(fmt, binary, sf, sample_rate)
        missing = "FluidSynth not found" if not binary else \
            "no General MIDI soundfont found (pass --soundfont FILE or set $SEQGAN_SOUNDFONT)"
        if synth == "fluidsynth":
            raise UserError(f"{missing}; {HOW_TO_INSTALL}")
    if fmt == "flac":
        raise UserError(f"--format flac needs FluidSynth ({missing}); use --format wav, or install "
                        f"FluidSynth and a soundfont ({HOW_TO_INSTALL})")
    notice = None if synth == "pretty_midi" else \
        f"note: {missing}: rendering plain sine waves with pretty_midi ({HOW_TO_INSTALL} for real instruments)"
    return Synth(fmt, None, None, sample_rate, notice)


def render_midi(midi_path: str | Path, out_path: str | Path, *, fmt: str = "wav",
                soundfont: str | Path | None = None, sample_rate: int = SAMPLE_RATE,
                synth: str = "auto") -> Path:
    """Render one MIDI file to ``out_path`` as ``fmt`` (see :func:`choose_synth`; the
    fallback's notice is printed to stderr); the path."""
    s = choose_synth(fmt, soundfont, synth, sample_rate)
    if s.notice:
        import sys

        print(s.notice, file=sys.stderr)
    return s.render(midi_path, out_path)


def _fluidsynth(s: Synth, midi: Path) -> bytes:
    """FluidSynth's rendering of ``midi`` as the bytes of a ``s.fmt`` file."""
    if not midi.is_file():
        raise UserError(f"{midi}: no such MIDI file")
    with tempfile.TemporaryDirectory(prefix="seqgan-audio-") as tmp:
        out = Path(tmp) / f"out.{s.fmt}"
        base = [s.binary, "-ni", "-F", str(out), "-T", s.fmt, "-r", str(s.sample_rate), "-g", str(GAIN)]
        fast = ["-o", "synth.dynamic-sample-loading=1"]  # load only the instruments played
        args = [str(s.soundfont), str(midi)]
        r = subprocess.run(base + fast + args, capture_output=True, text=True, errors="replace")
        if r.returncode != 0 and "dynamic-sample-loading" in r.stdout + r.stderr:  # FluidSynth < 2.1
            r = subprocess.run(base + args, capture_output=True, text=True, errors="replace")
        if r.returncode != 0 or not out.is_file() or out.stat().st_size == 0:
            said = [ln.strip() for ln in (r.stderr + r.stdout).splitlines() if ln.strip()]
            raise UserError(f"FluidSynth could not render {midi} (exit status {r.returncode})"
                            + (f": {said[-1][:200]}" if said else ""))
        return out.read_bytes()


def _sine_wav(midi: Path, sample_rate: int) -> bytes:
    """pretty_midi's sine-wave rendering of ``midi``, cut to the notes' end, peak-normalized
    to 0.9, as the bytes of a 16-bit mono WAV file."""
    import wave

    import numpy as np
    import pretty_midi

    try:
        pm = pretty_midi.PrettyMIDI(str(midi))
    except (OSError, ValueError, EOFError, KeyError, IndexError) as e:
        raise UserError(f"{midi}: cannot read it as MIDI: {e}") from None
    frames = int(round(pm.get_end_time() * sample_rate))
    x = np.zeros(frames)
    for inst in pm.instruments:  # pretty_midi adds 1 s of silence; the notes end at end_time
        w = inst.synthesize(fs=sample_rate)[:frames]
        x[:len(w)] += w
    peak = float(np.abs(x).max()) if frames else 0.0
    pcm = (x * (0.9 / peak if peak > 0 else 0.0) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(sample_rate)
        f.writeframes(pcm.tobytes())
    return buf.getvalue()
