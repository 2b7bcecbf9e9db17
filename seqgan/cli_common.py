"""What the command-line modules share: one-line errors, the log callback, common options.

``cli.py`` holds the ``seqgan`` group and most commands; :mod:`seqgan.cli_media` the
commands that render media (``export-audio``), registered on the same group. Both are
thin click shells over :mod:`seqgan.api`; what they share lives here, so neither imports
the other's commands.
"""
from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

import click

from seqgan.errors import UserError

DEVICE_HELP = "cpu, cuda or cuda:N [default: cuda if available]."


def friendly(fn):
    """Turn UserError / KeyboardInterrupt / OS errors into one line and an exit code."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        """Call ``fn``; a UserError or OSError prints ``error: ...`` and exits 2, Ctrl-C exits 130."""
        try:
            return fn(*args, **kwargs)
        except UserError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("\ninterrupted: what was checkpointed is kept (a run checkpoints every epoch); "
                       "run the same command again to resume", err=True)
            sys.exit(130)
        except OSError as e:
            where = f" ({e.filename})" if getattr(e, "filename", None) else ""
            click.echo(f"error: {e.strerror or e}{where}", err=True)
            sys.exit(2)

    return wrapper


def log(msg: str) -> None:
    """Print ``msg`` to stderr (the ``log`` callback the CLI gives the API)."""
    click.echo(msg, err=True)


def length_options(f):
    """``--length`` and ``--bars``: samples longer (or shorter) than the training window."""
    f = click.option("--bars", type=int, default=None,
                     help="Music: sample this many bars (the generator goes on past its window).")(f)
    return click.option("--length", type=int, default=None,
                        help="Tokens per sample [default: the training length T]; the first T "
                             "tokens are the ordinary sample of the same seed.")(f)


def sample_options(what: str):
    """The options every command that renders a run's samples shares: ``--tempo``,
    ``--run`` (a SAMPLES_FILE's run), ``--seed``, ``--mle``, ``--final``, ``--length``,
    ``--bars`` and ``--device``; ``what`` completes ``--mle``'s help ("Render", "Export")."""

    def deco(f):
        """Apply the options, last listed first (click's order)."""
        f = click.option("--device", default=None)(f)
        f = length_options(f)
        f = click.option("--final", is_flag=True, help="Use the final generator even where the run "
                         "keeps a selected one (--select data-close or best-nll-test).")(f)
        f = click.option("--mle", is_flag=True, help=f"{what} the MLE generator's samples.")(f)
        f = click.option("--seed", type=int, default=0, show_default=True)(f)
        f = click.option("--run", "run_dir", default=None,
                         help="The run a SAMPLES_FILE came from (its vocabulary).")(f)
        return click.option("--tempo", type=float, default=120.0, show_default=True,
                            help="Beats per minute.")(f)

    return deco


tensorboard_option = click.option(
    "--tensorboard", is_flag=True,
    help='Also log every epoch\'s metrics (and music piano rolls) to RUN/tensorboard/ (needs pip '
         'install "seqgan[tensorboard]"; view with `tensorboard --logdir RUN`).')


def _find_run_for(path: Path):
    from seqgan.api import open_run

    for parent in [path.parent, *path.parents]:
        if (parent / "vocab.json").is_file() and (parent / "config.json").is_file():
            return open_run(parent, log=log)
    raise UserError(f"{path}: cannot find the run it came from; pass --run RUN")


def samples_source(source: str, run_dir: str | None, tempo: float, program: int, seed: int
                   ) -> tuple[Any, Any]:
    """``(run, tokens)`` for an export's RUN|SAMPLES_FILE argument: a run folder (tokens None:
    the run samples them), or a samples file (one sample a line, as ``sample --out``
    writes) encoded with the vocabulary of ``run_dir`` or of the run folder it lies in.
    Checks the MIDI options and the seed first."""
    from seqgan.api import check_midi_options, open_run
    from seqgan.knobs import check_seed

    check_midi_options(tempo, program)
    check_seed(seed)
    src = Path(source)
    if src.is_dir():
        return open_run(src, log=log), None
    if src.is_file():
        run = open_run(run_dir, log=log) if run_dir else _find_run_for(src)
        return run, run.encode_samples(src)
    raise UserError(f"{source}: no such run or samples file")
