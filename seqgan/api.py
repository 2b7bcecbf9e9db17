"""The public Python API: a run's whole lifecycle, one call per command.

::

    import seqgan
    run = seqgan.create_run("runs/demo", data="music21:essen", preset="quick", seed=1)
    run.pretrain()                                   # MLE pretraining
    run.train(epochs=5, objective="melodicity", lambda_=0.5)   # D pretraining, adversarial
    tunes = run.sample(16)                           # decoded: note names / sentences
    run.export_midi("midi/", n=8)
    print(run.evaluate(["music"]))                   # {metric: value}
    run = seqgan.open_run("runs/demo")               # resume anywhere, same rules as the CLI

Every command of the CLI is one call here, with the same checks and the same errors: a
:class:`~seqgan.errors.UserError` whose message is the CLI's one line. Writing calls
(:meth:`Run.pretrain`, :meth:`Run.train`) hold the run's writer lock while they work
(:mod:`seqgan.runs.lock`), so a second writer — a CLI command, another notebook — is
refused; reading calls never lock. ``callbacks`` receive each epoch's record
``{"phase", "epoch", "metrics"}`` as it is made; ``log`` receives the messages the CLI
prints to stderr.
"""
from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Any, Iterator

from seqgan.datasets import load_corpus
from seqgan.errors import UserError
from seqgan.knobs import override
from seqgan.report.html import publish
from seqgan.run import KIND_WORDS, Log, Run, _stderr, check_midi_options
from seqgan.runs import options as opts
from seqgan.runs.rundir import create_run_dir
from seqgan.training.state import resolve_device

__all__ = ["Run", "create_run", "open_run", "open_or_create", "writing", "pretrain_run", "resolve_device",
           "check_midi_options", "KIND_WORDS", "publish"]


def open_run(path: str | Path, log: Log | None = None) -> Run:
    """An existing run (read-only until a writing call)."""
    return Run(path, log=log)


def _new_run(path: Path, data: str, preset: str | None, data_options: Any, log: Log,
             options: dict[str, Any]) -> Run:
    cfg = opts.creation_config(data, preset, data_options, **options)
    corpus = load_corpus(data, cfg.data, cfg.data.seq_len or None, cfg.train.seed)
    cfg.generator = override(cfg.generator, vocab_size=len(corpus.vocab), seq_len=corpus.seq_len,
                             start_token=corpus.start_token)
    cfg.data = override(cfg.data, seq_len=corpus.seq_len)
    info = ", ".join(f"{k} {v}" for k, v in corpus.info.items()
                     if isinstance(v, (int, float, str)) and not isinstance(v, bool)
                     and not any(w in k for w in ("cache", "seconds", "file", "examples", "source")))
    log(f"data: {len(corpus.train)} training sequences of length {corpus.seq_len}, "
        f"vocabulary {len(corpus.vocab)}" + (f" ({info})" if info else ""))
    return Run(path, log, rundir=create_run_dir(path, cfg, corpus))  # created locked


def create_run(path: str | Path, data: str, preset: str | None = None, data_options: Any = None,
               log: Log | None = None, **options: Any) -> Run:
    """A new run on ``data`` (a data spec) at ``path``, built all or nothing. ``options``
    are ``seqgan pretrain``'s: ``seed``, ``epochs``, ``batch_size``, ``lr``, ``seq_len``,
    ``test``, ``eval_every``; ``data_options`` a dict (or KEY=VALUE strings)."""
    path = Path(path)
    if path.exists():
        raise UserError(f"{path} already exists; open it with seqgan.open_run({str(path)!r})")
    run = _new_run(path, data, preset, data_options, log or _stderr, options)
    run.dir.unlock()
    return run


def open_or_create(path: str | Path, data: str | None = None, preset: str | None = None,
                   data_options: Any = None, log: Log | None = None, **options: Any
                   ) -> tuple[Run, bool]:
    """``(run, created)``, the run locked for writing (use it inside :func:`writing`, which
    releases the lock): RUN opened if it exists (checking it holds the same data and that
    creation-only options agree), else created on ``data``."""
    path, log = Path(path), log or _stderr
    if not path.exists():
        if data is None:
            raise UserError("--data is required to create a new run (e.g. --data oracle)")
        return _new_run(path, data, preset, data_options, log, options), True
    run = Run(path, log=log)
    run.dir.lock()
    try:
        _check_reopen(run, path, data, preset, data_options, log, options)
    except BaseException:
        run.dir.unlock()
        raise
    return run, False


def _check_reopen(run: Run, path: Path, data: str | None, preset: str | None, data_options: Any,
                  log: Log, options: dict[str, Any]) -> None:
    if data is not None and not opts.same_data(data, run.config.data.spec):
        raise UserError(f"{path} holds a run on data {run.config.data.spec!r}, not {data!r}; "
                        f"choose another --out or omit --data to resume it")
    opts.check_resume(path, run.config, preset, data_options, **options)
    changeable = ("eval_every", "snapshot_every", "snapshot_samples")  # knobs a resume may change
    given = opts.check_options("pretrain", {k: options.get(k) for k in changeable})
    if any(getattr(run.config.train, k) != v for k, v in given.items()):
        run.config.train = override(run.config.train, **given)
        run.dir.save_config()
    log(f"resuming {path}")


@contextlib.contextmanager
def writing(run: Run, new: bool) -> Iterator[Run]:
    """Work on a run from :func:`open_or_create` and release its lock at the end. A run
    created by this command that fails (or is interrupted) before its first checkpoint
    holds nothing worth resuming: it is removed, so the command can be re-run with other
    options."""
    try:
        yield run
    except BaseException:
        if new and not run.dir.checkpoints.any():
            shutil.rmtree(run.path, ignore_errors=True)
            run.log(f"{run.path} had no checkpoint yet and was removed")
        raise
    finally:
        run.dir.unlock()


def pretrain_run(out: str | Path, data: str | None = None, preset: str | None = None,
                 data_options: Any = None, log: Log | None = None, device: Any = None, workers: int = 1,
                 timeout: float = 120.0, tensorboard: bool = False, **options: Any) -> dict[str, Any] | None:
    """``seqgan pretrain``: create the run ``out`` on ``data`` (or resume it, see
    :func:`open_or_create`) and pretrain it (:meth:`Run.pretrain`); the counters. Under
    torchrun every rank calls this: rank 0 creates or opens the run, all train it
    data-parallel, and the other ranks get None."""
    from seqgan.distributed.group import under_torchrun

    log = log or _stderr
    resolve_device(device)
    if under_torchrun():
        from seqgan.distributed.data_parallel import launch

        @contextlib.contextmanager
        def opener() -> Iterator[Run]:
            """Rank 0: the run, created or opened and locked, removed if new and failed early."""
            run, new = open_or_create(out, data, preset, data_options, log, **options)
            with writing(run, new):
                yield run

        return launch(out, "pretrain", opener, device, workers, timeout, None, log, tensorboard,
                      epochs=options.get("epochs"))
    run, new = open_or_create(out, data, preset, data_options, log, **options)
    with writing(run, new):
        return run.pretrain(epochs=None if new else options.get("epochs"), device=device,
                            tensorboard=tensorboard, workers=workers, timeout=timeout)
