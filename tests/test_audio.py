"""``seqgan export-audio``: samples rendered with FluidSynth and a General MIDI soundfont, or
with pretty_midi's sine waves where FluidSynth is missing (a one-line notice). On both
paths a file lasts as long as its notes (FluidSynth adds its release tail), is not
silent, and one A4 alone has its spectral peak at 440 Hz."""
from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pretty_midi
import pytest

import seqgan
from bad_input_contract import abc_tune
from helpers import error_line, fails_cleanly, invoke, succeeds
from seqgan.report import audio

HAS_FLUIDSYNTH = audio.find_fluidsynth() is not None and audio.find_soundfont() is not None
NEEDS_FLUIDSYNTH = pytest.mark.skipif(
    not HAS_FLUIDSYNTH, reason="FluidSynth or a General MIDI soundfont is missing (Debian: apt-get "
    "install fluidsynth fluid-soundfont-gm; see the README's 'Listen')")
TAIL = 4.0  # seconds FluidSynth may render past the last note (release and reverb: ~3 s measured)
A4_ALONE = "A4 " + "_ " * 7  # one A4 of 8 steps: 2 quarter notes, 1 s at 120 BPM
TUNE = "C5 _ _ _ D5 _ E5 _ F5 _ _ _ G5 _ _ _ A5 _ _ _ R R R R"  # 6 notes, 20 steps of 1/8 s, rests


@pytest.fixture(scope="module")
def music_run(tmp_path_factory) -> Path:
    """A music run made (not trained) on a few ABC tunes: its vocabulary spans F4..D6."""
    abc = tmp_path_factory.mktemp("tunes") / "tunes.abc"
    abc.write_text("".join(abc_tune(body=b, x=i) for i, b in enumerate(["CDEF GABc|cBAG FEDC|",
                                                                       "EGce gecG|FAcf afcA|"] * 4)))
    run = tmp_path_factory.mktemp("runs") / "music"
    seqgan.create_run(run, data=str(abc), preset="quick", data_options={"window": 8, "cache": False})
    return run


@pytest.fixture(params=["fluidsynth", "pretty_midi"])
def synth(request, monkeypatch, tmp_path) -> str:
    """Each rendering path: FluidSynth (skipped without it) or the fallback, forced by
    pointing $SEQGAN_FLUIDSYNTH at a binary that does not exist."""
    monkeypatch.delenv("SEQGAN_SOUNDFONT", raising=False)
    if request.param == "fluidsynth":
        if not HAS_FLUIDSYNTH:
            pytest.skip("FluidSynth or a General MIDI soundfont is missing (see the README's 'Listen')")
        monkeypatch.delenv("SEQGAN_FLUIDSYNTH", raising=False)
    else:
        monkeypatch.setenv("SEQGAN_FLUIDSYNTH", str(tmp_path / "no-such-fluidsynth"))
    return request.param


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """A 16-bit WAV file as mono floats in [-1, 1] and its sample rate."""
    with wave.open(str(path), "rb") as f:
        assert f.getsampwidth() == 2
        x = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2").astype(np.float64) / 32768
        return x.reshape(-1, f.getnchannels()).mean(axis=1), f.getframerate()


def render(run_path: Path, lines: list[str], out: Path) -> tuple[list[Path], list[str]]:
    """Render ``lines`` (samples in the run's tokens) through the API; the audio paths and
    what the run logged."""
    said: list[str] = []
    run = seqgan.open_run(run_path, log=said.append)
    sample_file = out.parent / f"{out.name}.txt"
    sample_file.write_text("\n".join(lines) + "\n")
    return run.export_audio(out, tokens=run.encode_samples(sample_file)), said


def peak_hz(x: np.ndarray, rate: int) -> float:
    """The frequency of the largest bin of a Hann-windowed spectrum."""
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[spectrum.argmax()])


def test_one_a4_alone_peaks_at_440_hz(music_run, tmp_path, synth):
    (path,), said = render(music_run, [A4_ALONE], tmp_path / "a4")
    x, rate = read_wav(path)
    assert path.suffix == ".wav" and rate == 44100
    assert abs(peak_hz(x, rate) - 440.0) <= 0.02 * 440
    duration = len(x) / rate
    if synth == "pretty_midi":
        assert abs(duration - 1.0) <= 1 / rate
        assert said == [said[0]] and said[0].startswith("note: FluidSynth not found: rendering plain sine "
                                                        "waves with pretty_midi")
    else:
        assert 1.0 <= duration <= 1.0 + TAIL and said == []
    assert np.sqrt(np.mean(x[:rate] ** 2)) > 0.01  # the note sounds through its second


def test_a_tune_lasts_as_long_as_its_notes_and_is_not_silent(music_run, tmp_path, synth):
    (path,), _ = render(music_run, [TUNE], tmp_path / "tune")
    notes = pretty_midi.PrettyMIDI(str(path.with_suffix(".mid"))).instruments[0].notes
    end = max(n.end for n in notes)
    assert len(notes) == 6 and end == pytest.approx(20 / 8)  # 20 steps of 1/8 s: the rests are cut
    x, rate = read_wav(path)
    duration = len(x) / rate
    assert end - 1 / rate <= duration <= end + (TAIL if synth == "fluidsynth" else 1 / rate)
    for n in notes:  # every note sounds (RMS over its first 100 ms)
        a = int(n.start * rate)
        assert np.sqrt(np.mean(x[a:a + rate // 10] ** 2)) > 0.01, n


def test_the_cli_renders_a_trained_runs_samples(tmp_path, monkeypatch):
    abc = tmp_path / "tunes.abc"
    abc.write_text("".join(abc_tune(body=b, x=i) for i, b in enumerate(["CDEF GABc|cBAG FEDC|"] * 6)))
    run = tmp_path / "run"
    succeeds(invoke("pretrain", "--data", abc, "--preset", "quick", "--epochs", "1", "--out", run,
                    "--data-option", "window=8", "--data-option", "cache=false", "--device", "cpu"))
    monkeypatch.setenv("SEQGAN_FLUIDSYNTH", str(tmp_path / "no-such-fluidsynth"))  # fast and always there
    out = tmp_path / "audio"
    r = invoke("export-audio", run, "--out", out, "-n", "2", "--bars", "2", "--tempo", "150")
    notices = [line for line in succeeds(r).splitlines() if line.startswith("note:")]
    assert len(notices) == 1 and "FluidSynth not found" in notices[0]
    assert "wrote 2 wav files" in r.stdout
    wavs = sorted(out.glob("*.wav"))
    assert [p.stem for p in wavs] == ["sample_0000", "sample_0001"] and (out / "piano_roll.png").is_file()
    for p in wavs:  # 2 bars at 150 BPM are at most 3.2 s; each file ends where its notes end
        x, rate = read_wav(p)
        end = pretty_midi.PrettyMIDI(str(p.with_suffix(".mid"))).get_end_time()
        assert 0 < end <= 3.2 + 1e-6 and abs(len(x) / rate - end) <= 1 / rate
        assert np.sqrt(np.mean(x ** 2)) > 0.01
    # a samples file inside the run folder finds its run
    (run / "mine.txt").write_text(A4_ALONE + "\n")
    succeeds(invoke("export-audio", run / "mine.txt", "--out", tmp_path / "mine"))
    x, rate = read_wav(tmp_path / "mine" / "sample_0000.wav")
    assert abs(peak_hz(x, rate) - 440) <= 0.02 * 440


@NEEDS_FLUIDSYNTH
def test_flac_through_fluidsynth(music_run, tmp_path):
    sample = tmp_path / "s.txt"
    sample.write_text(A4_ALONE + "\n")
    out = tmp_path / "flac"
    succeeds(invoke("export-audio", sample, "--run", music_run, "--out", out, "--format", "FLAC"))
    data = (out / "sample_0000.flac").read_bytes()
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0  # STREAMINFO first
    info = int.from_bytes(data[8 + 10:8 + 18], "big")  # rate (20 bits) ... total samples (36 bits)
    rate, frames = info >> 44, info & (2**36 - 1)
    assert rate == 44100 and 1.0 <= frames / rate <= 1.0 + TAIL


def test_bad_inputs_are_one_line_and_write_nothing(music_run, tmp_path, monkeypatch):
    sample = tmp_path / "s.txt"
    sample.write_text(A4_ALONE + "\n")
    out = tmp_path / "out"

    def fails(*args, words=()):
        line = fails_cleanly(invoke("export-audio", sample, "--run", music_run, "--out", out, *args), *words)
        assert not out.exists(), line
        return line

    fails("--soundfont", tmp_path / "none.sf2", words=("--soundfont", "none.sf2", "no such file"))
    fails("--soundfont", sample, words=("is not a SoundFont",))
    fails("--format", "mp3", words=("--format 'mp3'", "wav, flac"))
    fails("--tempo", "0", words=("--tempo",))
    monkeypatch.setenv("SEQGAN_SOUNDFONT", str(tmp_path / "gone.sf2"))
    fails(words=("$SEQGAN_SOUNDFONT", "gone.sf2"))
    monkeypatch.delenv("SEQGAN_SOUNDFONT")
    monkeypatch.setenv("SEQGAN_FLUIDSYNTH", str(tmp_path / "no-such-fluidsynth"))
    fails("--format", "flac", words=("flac needs FluidSynth", "--format wav"))
    with pytest.raises(seqgan.UserError, match="FluidSynth not found"):
        audio.choose_synth(synth="fluidsynth")


def test_without_a_soundfont_the_fallback_says_so(monkeypatch, tmp_path):
    monkeypatch.delenv("SEQGAN_SOUNDFONT", raising=False)
    monkeypatch.setattr(audio, "SOUNDFONT_PATHS", (str(tmp_path / "none.sf2"),))
    fluidsynth = tmp_path / "fluidsynth"  # a binary that is found (never run here)
    fluidsynth.write_text("#!/bin/sh\nexit 1\n")
    fluidsynth.chmod(0o755)
    monkeypatch.setenv("SEQGAN_FLUIDSYNTH", str(fluidsynth))
    s = audio.choose_synth()
    assert s.name == "pretty_midi" and s.notice.startswith("note: no General MIDI soundfont found (pass "
                                                           "--soundfont FILE or set $SEQGAN_SOUNDFONT)")
    assert audio.choose_synth(synth="pretty_midi").notice is None  # asked for: nothing to say
    # found but failing (or writing nothing, as FluidSynth does with a soundfont it cannot
    # load): one line with what it said last
    sf = tmp_path / "fake.sf2"
    sf.write_bytes(b"RIFF\0\0\0\0sfbk")
    midi = tmp_path / "a.mid"
    midi.write_bytes(b"MThd")
    with pytest.raises(seqgan.UserError, match=r"could not render .*a\.mid \(exit status 1\): fluidsynth: error: bad thing"):
        fluidsynth.write_text("#!/bin/sh\necho 'fluidsynth: error: bad thing' >&2\nexit 1\n")
        audio.render_midi(midi, tmp_path / "a.wav", soundfont=sf)
    with pytest.raises(seqgan.UserError, match=r"exit status 0"):
        fluidsynth.write_text("#!/bin/sh\nexit 0\n")
        audio.render_midi(midi, tmp_path / "a.wav", soundfont=sf)
    assert not (tmp_path / "a.wav").exists()


def test_a_text_run_has_no_audio(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("a b c d\n" * 40)
    run = tmp_path / "text"
    seqgan.create_run(run, data=str(text), preset="quick")
    assert "needs a music run" in error_line(invoke("export-audio", run, "--out", tmp_path / "o"))
