"""Commands that render a run's samples as media: ``seqgan export-audio``.

Thin click shells over :class:`seqgan.api.Run` (as ``cli.py`` is), registered on the
``seqgan`` group by ``cli.py``; errors are one line (:func:`seqgan.cli_common.friendly`).
"""
from __future__ import annotations

import click

from seqgan.cli_common import friendly, log, sample_options, samples_source


@click.command("export-audio")
@click.argument("source", metavar="RUN|SAMPLES_FILE")
@click.option("--out", required=True, help="Folder for the audio files (beside them: the .mid files "
              "and a piano-roll PNG).")
@click.option("-n", "n", type=int, default=8, show_default=True, help="Samples to draw from a RUN.")
@click.option("--format", "fmt", default="wav", show_default=True,
              help="wav or flac (flac needs FluidSynth).")
@click.option("--soundfont", default=None, metavar="FILE", help="General MIDI soundfont (.sf2) "
              "[default: $SEQGAN_SOUNDFONT, else the system's, e.g. /usr/share/sounds/sf2/FluidR3_GM.sf2].")
@click.option("--program", type=int, default=0, show_default=True,
              help="General MIDI program (0 = piano; the sine-wave fallback ignores it).")
@sample_options("Render")
@friendly
def export_audio(source, out, n, fmt, soundfont, program, tempo, run_dir, seed, mle, final, length, bars,
                 device):
    """Render samples to audio with FluidSynth and a General MIDI soundfont (WAV or FLAC),
    or as sine waves where FluidSynth is missing."""
    run, tokens = samples_source(source, run_dir, tempo, program, seed)
    paths = run.export_audio(out, n, fmt, soundfont, program, tempo, seed, mle, length, bars, device,
                             tokens=tokens, final=final)
    click.echo(f"wrote {len(paths)} {fmt.lower()} files (and their MIDI files) to {out}")
