"""The ``seqgan`` command line: parse, call :mod:`seqgan.api`, print.

Every command takes a run directory (see :mod:`seqgan.runs.rundir`). The options of
``pretrain`` and ``train`` are generated from the knobs of the config dataclasses
(:mod:`seqgan.knobs`), so their help, ranges and defaults are declared in one place. User
errors print one line ``error: ...`` and exit with status 2; Ctrl-C exits 130 with the run
saved at its last completed epoch.
"""
from __future__ import annotations

from pathlib import Path

import click

from seqgan.cli_common import (DEVICE_HELP, friendly, length_options, log, sample_options, samples_source,
                                tensorboard_option)
from seqgan.cli_media import export_audio
from seqgan.errors import UserError

DEFAULT_MAIN_DATA = "music21:essen"
DEFAULT_MAIN_RUN = "runs/folk"
MAIN_BARS = 8  # the length of the tunes `seqgan run` writes

def knob_options(command: str):
    """Click options for the knobs that ``command`` declares (see :mod:`seqgan.knobs`):
    type from the field, help from the declaration, every default None ("not given": the
    run's or the preset's value applies)."""
    import dataclasses
    import typing

    from seqgan.knobs import cli_knobs, flag_of
    from seqgan.runs.config import RunConfig

    def deco(f):
        """Add the click options of ``command``'s knobs to ``f``, in their declared order."""
        for path, field, k, hint in reversed(cli_knobs(RunConfig, command)):
            flag = flag_of(path, k)
            name = "lambda_" if flag == "lambda" else flag.replace("-", "_")
            default = None if field.default is dataclasses.MISSING else field.default
            text = f"{k.help} [default: the run's or preset's; {'none' if default is None else default} " \
                   f"in seqgan-oracle]"
            args = typing.get_args(hint) or (hint,)
            base = next((t for t in (bool, int, float, str) if t in args), str)
            if base is bool and k.negatable:
                f = click.option(f"--{flag}/--no-{flag}", name, default=None, help=text)(f)
            elif base is bool:
                f = click.option(f"--{flag}", name, is_flag=True, default=None, help=text)(f)
            else:
                ctype = click.Choice(k.choices) if k.choices else base
                f = click.option(f"--{flag}", name, type=ctype, default=None, help=text)(f)
        return f

    return deco


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="seqgan", message="seqgan %(version)s")
def main():
    """Train sequence GANs (SeqGAN, ORGAN) on text and music.

    Start with `seqgan run` (the whole pipeline on Essen folk songs), or
    `seqgan pretrain --data oracle --out runs/mle` for SeqGAN's synthetic experiment.
    """


def process_options(what: str):
    """``--workers K`` (K processes on this machine, each ``what``; under torchrun the
    launcher's processes) and ``--timeout``."""

    def deco(f):
        """Add ``--timeout`` and ``--workers`` to ``f``."""
        f = click.option("--timeout", type=float, default=120.0, show_default=True,
                         help="Seconds a worker waits for the others before the job stops.")(f)
        return click.option("--workers", type=int, default=1, show_default=True,
                            help=f"Processes on this machine, {what} (under torchrun: the "
                                 f"launcher's processes).")(f)

    return deco


# ---------------------------------------------------------------------------------------
@main.command()
@click.option("--data", default=None, help="Data spec: oracle, oracle:PATH.npz, music21:essen, "
              "a MIDI/MusicXML folder, FILE.abc or FILE.txt (required for a new run).")
@click.option("--out", required=True, help="Run directory (created, or resumed if it exists).")
@click.option("--preset", default=None, help="Named settings: seqgan-oracle, quick, text, "
              "folk, organ-music, ... [default: chosen from the data]")
@knob_options("pretrain")
@click.option("--data-option", "data_options", multiple=True, metavar="KEY=VALUE",
              help="Source option, e.g. tokenizer=treebank, lowercase=true, max_vocab=5000, "
                   "max_len=40, len_percentile=99, max_tunes=500, window=32, transpose=none "
                   "(repeatable; see the README's data specs).")
@click.option("--device", default=None, help=DEVICE_HELP)
@tensorboard_option
@process_options("each computing on a slice of every batch")
@friendly
def pretrain(data, out, preset, data_options, device, tensorboard, workers, timeout, **options):
    """MLE pretraining of the generator (creates or resumes RUN)."""
    from seqgan.api import Run, pretrain_run, resolve_device

    resolve_device(device)  # a bad --device (or a missing tensorboard) fails before a run is created
    if tensorboard:
        Run.check_tensorboard()
    st = pretrain_run(out, data, preset, data_options, log, device, workers, timeout, tensorboard, **options)
    if st is not None:  # (under torchrun, only rank 0 reports)
        click.echo(f"pretrained {out}: {st['mle_epoch']} MLE epochs ({st['seconds']:.1f} s)")


@main.command()
@click.argument("run_dir", metavar="RUN")
@knob_options("train")
@click.option("--device", default=None, help=DEVICE_HELP)
@tensorboard_option
@process_options("each computing on a slice of every batch")
@friendly
def train(run_dir, device, tensorboard, workers, timeout, **options):
    """Adversarial training of a pretrained RUN (resumes where it stopped)."""
    from seqgan.api import open_run

    out = open_run(run_dir, log=log).train(device=device, tensorboard=tensorboard, workers=workers,
                                           timeout=timeout, **options)
    if out is None:  # (under torchrun, only rank 0 reports)
        return
    if "already_trained" in out:
        click.echo(out["already_trained"])
        return
    shown = ", ".join(f"{k} {v:.4f}" if v is not None else f"{k} n/a" for k, v in out["metrics"].items())
    click.echo(f"trained {run_dir}: {out['adv_epoch']} adversarial epochs "
               f"({out['seconds']:.1f} s of training in all phases){': ' + shown if shown else ''}")


@main.command()
@click.argument("run_dir", metavar="RUN")
@knob_options("coevolve")
@process_options("each owning a block of cells")
@click.option("--device", default=None, help=DEVICE_HELP)
@tensorboard_option
@friendly
def coevolve(run_dir, workers, timeout, device, tensorboard, **options):
    """Coevolve a population of GANs on a torus (Mustangs) from RUN's MLE generator."""
    from seqgan.api import open_run

    out = open_run(run_dir, log=log).coevolve(device=device, workers=workers, timeout=timeout,
                                              tensorboard=tensorboard, **options)
    if out is not None:  # (under torchrun, only rank 0 reports)
        click.echo(f"coevolved {run_dir}: {out['generation']} generations ({out['seconds']:.1f} s); "
                   f"best mixture: cell {out['best_cell']}, score {out['score']:.4f}")


# ---------------------------------------------------------------------------------------
@main.command()
@click.argument("run_dir", metavar="RUN")
@click.option("-n", "n", type=int, default=10, show_default=True, help="Number of samples.")
@click.option("--temperature", type=float, default=1.0, show_default=True,
              help="Softmax temperature: below 1 more likely tokens, above 1 more varied ones.")
@click.option("--seed", type=int, default=0, show_default=True, help="Sampling seed (same seed, same samples).")
@click.option("--out", default=None, help="Write the samples to FILE instead of printing them.")
@click.option("--mle", is_flag=True, help="Sample the generator as MLE pretraining left it.")
@click.option("--final", is_flag=True, help="Use the final generator even where the run keeps a "
              "selected one (--select data-close or best-nll-test).")
@length_options
@click.option("--device", default=None, help=DEVICE_HELP)
@friendly
def sample(run_dir, n, temperature, seed, out, mle, final, length, bars, device):
    """Sample sequences from RUN's generator: decoded text, note names, or token ids."""
    from seqgan.api import open_run
    from seqgan.files import atomic_write_bytes
    from seqgan.knobs import check_seed

    check_seed(seed)
    lines = open_run(run_dir, log=log).sample(n, temperature, seed, mle, device, length, bars, final)
    text = "\n".join(lines) + "\n"
    if out:
        atomic_write_bytes(out, text.encode("utf-8"))
        click.echo(f"wrote {len(lines)} samples to {out}", err=True)
    else:
        click.echo(text, nl=False)


@main.command("export-midi")
@click.argument("source", metavar="RUN|SAMPLES_FILE")
@click.option("--out", required=True, help="Folder for the .mid files and piano-roll PNG.")
@click.option("-n", "n", type=int, default=16, show_default=True, help="Samples to draw from a RUN.")
@click.option("--program", type=int, default=0, show_default=True, help="General MIDI program (0 = piano).")
@sample_options("Export")
@friendly
def export_midi(source, out, n, tempo, program, run_dir, seed, mle, final, length, bars, device):
    """Write one .mid per sample and a piano-roll PNG of them."""
    run, tokens = samples_source(source, run_dir, tempo, program, seed)
    paths = run.export_midi(out, n, tempo, program, seed, mle, device, tokens=tokens, length=length,
                            bars=bars, final=final)
    click.echo(f"wrote {len(paths)} MIDI files and {Path(out) / 'piano_roll.png'} to {out}")


# ---------------------------------------------------------------------------------------
def format_table(rows: dict[str, dict[str, float]]) -> str:
    """Rows {label: {metric: value}} as a text table: a column per metric (first-seen order),
    values to 4 decimals, blank where a row lacks one."""
    cols = []
    for r in rows.values():
        cols += [c for c in r if c not in cols]
    width = max([len(k) for k in rows] + [6])
    lines = [" " * width + "  " + "  ".join(f"{c:>12}" for c in cols)]
    for label, r in rows.items():
        cells = [f"{r[c]:>12.4f}" if c in r else f"{'':>12}" for c in cols]
        lines.append(f"{label:<{width}}  " + "  ".join(cells))
    return "\n".join(lines)


@main.command()
@click.argument("run_dir", metavar="RUN")
@click.option("--metrics", "metric_spec", default=None,
              help="Comma-separated: nll-oracle, nll-test, bleu, self-bleu, distinct, music, or an "
                   "objective [default: by data kind].")
@click.option("-n", "n", type=int, default=None, help="Samples to draw [default: eval samples of the run].")
@click.option("--sample-size", type=int, default=None, help="Score only the first K samples (to compare "
              "with tools that score 200 or 500).")
@click.option("--references", default=None, help="Reference file for BLEU, one sentence a line, scored "
              "untruncated [default: the run's test set, cut to T-1 words].")
@click.option("--bleu-mode", type=click.Choice(["nltk", "texygen", "texygen-fast"]), default="nltk",
              show_default=True, help="nltk: blank reference lines skipped, tokens as the run's data. "
              "texygen: Texygen's Bleu.py, every line a reference, blank lines kept as empty references, "
              "nltk word_tokenize. texygen-fast: its first 500 lines (Texygen's default).")
@click.option("--compare", is_flag=True, help="Rows for the training data and the MLE, selected (where "
              "the run keeps one) and final generators.")
@click.option("--mle", is_flag=True, help="Evaluate the MLE generator instead of the latest.")
@click.option("--final", is_flag=True, help="Use the final generator even where the run keeps a "
              "selected one (--select data-close or best-nll-test).")
@click.option("--seed", type=int, default=0, show_default=True, help="Sampling seed of the evaluated samples.")
@click.option("--json", "json_out", default=None, help="Also write the results as JSON to FILE.")
@click.option("--device", default=None, help=DEVICE_HELP)
@friendly
def evaluate(run_dir, metric_spec, n, sample_size, references, bleu_mode, compare, mle, final, seed,
             json_out, device):
    """Measure RUN's generator: NLL-oracle, NLL-test, BLEU, self-BLEU, music metrics."""
    from seqgan.api import open_run
    from seqgan.files import atomic_write_json
    from seqgan.knobs import check_seed

    check_seed(seed)
    if json_out and Path(json_out).is_dir():
        raise UserError(f"--json {json_out!r} is a folder; give a file name")
    run = open_run(run_dir, log=log)
    got = run.evaluate(metric_spec, n, sample_size, references, compare, mle, seed, device, final,
                       bleu_mode=bleu_mode)
    rows = got if compare else {"MLE generator" if mle else "generator": got}
    cfg, versions = run.config, run.dir.meta.get("versions", {})
    n = n if n is not None else cfg.train.eval_samples
    scored = f"{min(n, sample_size)} of {n}" if sample_size else f"{n}"
    click.echo(f"run {run_dir}: data {cfg.data.spec}, preset {cfg.preset}, seed {cfg.train.seed}, "
               f"seqgan {versions.get('seqgan')}, torch {versions.get('torch')}, {scored} samples "
               f"scored (sampling seed {seed})")
    click.echo(format_table(rows))
    if json_out:
        atomic_write_json(json_out, {"run": str(run_dir), "rows": rows, "samples": n, "seed": seed,
                                     "config": cfg.to_dict(), "versions": versions})


@main.command()
@click.argument("run_dir", metavar="RUN")
@click.option("--out", default=None, help="PNG or SVG file [default: RUN/learning-curves.png].")
@click.option("--compare", multiple=True, metavar="RUN2", help="Overlay another run's curves (repeatable).")
@friendly
def plot(run_dir, out, compare):
    """Learning curves: every metric of RUN's metrics.jsonl against epoch, phases shaded."""
    from seqgan.api import open_run

    run = open_run(run_dir, log=log)
    path = run.plot(out, compare)
    click.echo(f"wrote {path}")


@main.command()
@click.argument("run_dir", metavar="RUN")
@click.option("--out", default=None, help="GIF file [default: RUN/progress.gif].")
@click.option("--fps", type=float, default=2.0, show_default=True, help="Frames (snapshots) a second.")
@friendly
def animate(run_dir, out, fps):
    """Training progress as a GIF: a frame per snapshot, the same seeds in every frame."""
    from seqgan.api import open_run

    click.echo(f"wrote {open_run(run_dir, log=log).animate(out, fps)}")


@main.command()
@click.argument("run_dir", metavar="RUN")
@click.option("--out", default=None, help="HTML file [default: RUN/report.html].")
@click.option("--compare", multiple=True, metavar="RUN2", help="Another run: its curves and metrics row.")
@click.option("-n", "n", type=int, default=None, help="Tunes [default: 8] or samples [default: 20] shown.")
@click.option("--seed", type=int, default=0, show_default=True, help="Sampling seed (tunes, samples, metrics).")
@length_options
@click.option("--device", default=None, help=DEVICE_HELP)
@friendly
def report(run_dir, out, compare, n, seed, length, bars, device):
    """One self-contained HTML page: metrics, curves, tunes and audio or samples, animation."""
    from seqgan.api import open_run

    path = open_run(run_dir, log=log).report(out, compare, n, seed, device, length=length, bars=bars)
    click.echo(f"wrote {path}")


# ---------------------------------------------------------------------------------------
@main.command("run")
@click.option("--preset", default=None, help="folk (CPU, minutes; default), organ-music (GPU), "
              "seqgan-oracle, text, quick.")
@click.option("--data", default=None, help=f"Data spec [default: {DEFAULT_MAIN_DATA}].")
@click.option("--out", default=None, help=f"Run directory [default: {DEFAULT_MAIN_RUN}].")
@click.option("--objective", default=None, help="ORGAN objective for music [default: the preset's].")
@click.option("--lambda", "lambda_", type=float, default=None, help="Reward weight λ.")
@click.option("--seed", type=int, default=None)
@click.option("--device", default=None)
@friendly
def run_all(preset, data, out, objective, lambda_, seed, device):
    """The whole pipeline: pretrain, adversarial training, samples, MIDI, audio, a metrics
    table, the progress animation and an HTML report (RUN/report.html)."""
    from seqgan.api import open_or_create, publish, writing
    from seqgan.files import atomic_write_bytes, atomic_write_json
    from seqgan.objectives import get_objective
    from seqgan.runs.options import check_options
    from seqgan.api import resolve_device

    out = out or DEFAULT_MAIN_RUN
    new = not Path(out).exists()
    if preset is None and (data or DEFAULT_MAIN_DATA) == DEFAULT_MAIN_DATA and new:
        preset = "folk"
    resolve_device(device)  # bad options fail before a run directory is created
    check_options("train", {"lambda_": lambda_})
    check_options("pretrain", {"seed": seed})
    if objective is not None:
        get_objective(objective, allow_import=True)
    run, new = open_or_create(out, (data or DEFAULT_MAIN_DATA) if new else data, preset, log=log, seed=seed)
    with writing(run, new):
        done = run.train(device=device, objective=objective, lambda_=lambda_)
        if "already_trained" in done:
            click.echo(done["already_trained"])
        bars = MAIN_BARS if run.kind == "music" else None  # whole tunes, not training windows
        samples = run.sample_tokens(16, 1.0, 0, False, device, bars=bars)
        lines = run.decode(samples)
        atomic_write_bytes(run.path / "samples" / "samples.txt", ("\n".join(lines) + "\n").encode())
        if run.kind == "music":
            paths = run.export_midi(run.path / "samples", tokens=samples)
            click.echo(f"wrote {len(paths)} MIDI files and a piano roll to {run.path / 'samples'}")
        else:
            click.echo("\n".join(lines[:5]))
        rows = run.evaluate(run.default_metrics(), min(run.config.train.eval_samples, 1000), compare=True,
                            device=device)
        click.echo(format_table(rows))
        atomic_write_json(run.path / "results.json", rows)
        made = publish(run, rows, samples, device)  # audio/*.wav, progress.gif, report.html
        wrote = ([f"{len(made['audio'])} audio files to {run.path / 'audio'}"] if made["audio"] else []) \
            + ([f"the animation {made['animation']}"] if made["animation"] else [])
        if wrote:
            click.echo("wrote " + " and ".join(wrote))
        click.echo(f"report: {made['report']}")


main.add_command(export_audio)  # seqgan.cli_media

if __name__ == "__main__":
    main()
