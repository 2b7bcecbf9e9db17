"""A run, opened: :class:`Run`, whose methods are the commands of the CLI.

See :mod:`seqgan.api` for the lifecycle (creating and opening runs); everything else a
command does is a method here, with the same checks and the same one-line errors.
"""
from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch

from seqgan.datasets import format_samples
from seqgan.datasets.midi import check_tempo, export_samples, piano_roll_png
from seqgan.datasets.text import read_sentences
from seqgan.errors import UserError
from seqgan.evolve.coevolve import Coevolution, population_store
from seqgan.evolve.grid import Torus
from seqgan.evaluation import evaluation_table, load_generator, metrics_for, sample_from, which_of
from seqgan.metrics.bleu_modes import bleu_references
from seqgan.metrics.registry import parse_metrics
from seqgan.objectives import get_objective
from seqgan.report.audio import choose_synth
from seqgan.report.animate import write_gif
from seqgan.report.html import make_report
from seqgan.report.plots import plot_runs
from seqgan.report.tensorboard import require_tensorboard, with_tensorboard
from seqgan.runs import options as opts
from seqgan.runs.rundir import RunDir
from seqgan.training.baselines import get_baseline
from seqgan.training.loop import RunTrainer, nothing_to_train
from seqgan.training.rewards import RewardFn
from seqgan.training.state import resolve_device

KIND_WORDS = {"ids": "token ids (oracle data)", "text": "text", "music": "music"}
Log = Callable[[str], Any]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


class Run:
    """A run directory, opened (see :func:`create_run`, :func:`open_run`)."""

    def __init__(self, path: str | Path, log: Log | None = None, rundir: RunDir | None = None):
        self.log: Log = log or _stderr
        self.dir = rundir if rundir is not None else RunDir(path)

    def __repr__(self) -> str:
        return f"seqgan.Run({str(self.path)!r})"

    @property
    def path(self) -> Path:
        """The run directory's path."""
        return self.dir.path

    @property
    def config(self):
        """The run's :class:`~seqgan.runs.config.RunConfig`, as config.json holds it."""
        return self.dir.config

    @property
    def vocab(self):
        """The run's :class:`~seqgan.datasets.vocab.Vocabulary`."""
        return self.dir.vocab

    @property
    def kind(self) -> str:
        """``ids`` (oracle data), ``text`` or ``music``."""
        return self.dir.vocab.kind

    @property
    def state(self) -> dict[str, Any] | None:
        """The latest checkpoint's counters (phase, mle_epoch, d_round, adv_epoch, seconds)."""
        ck = self.dir.checkpoints.load(warn=self.log)
        return None if ck is None else {k: v for k, v in ck[0].items() if k not in ("files",)}

    def metrics(self) -> list[dict]:
        """The records of metrics.jsonl (phase, epoch, seconds, metrics)."""
        return self.dir.metrics.read()

    # -- writing --------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator["Run"]:
        """Hold the run's writer lock across several calls (each writing call takes it
        anyway); re-entrant."""
        held = self.dir.writer is not None
        self.dir.lock()
        try:
            yield self
        except OSError as e:  # a full disk, a read-only file system: what was written is kept
            where = f" ({e.filename})" if getattr(e, "filename", None) else ""
            raise UserError(f"{self.path}: could not write: {e.strerror or e}{where}; its last "
                            f"checkpoint and metrics log are intact; free some space and run the "
                            f"same command again to resume") from None
        finally:
            if not held:
                self.dir.unlock()

    @property
    def is_population(self) -> bool:
        """Whether this is a coevolution run (its checkpoints hold a population)."""
        return population_store(self.dir).any()

    def _refuse_population(self) -> None:
        if self.is_population:
            raise UserError(f"{self.path} is a coevolution run ({self.config.evolve.grid} grid); continue "
                            f"it with `seqgan coevolve {self.path}`, or pretrain a new run for a single pair")

    def _trainer(self, device: Any, allow_import: bool, callbacks: Sequence, progress: bool | None
                 ) -> RunTrainer:
        return RunTrainer(self.dir, device=device, log=self.log, progress=progress,
                          allow_import=allow_import, callbacks=tuple(callbacks)).resume()

    def _board(self, callbacks: Sequence, tensorboard: bool):
        return with_tensorboard(self.path, self.vocab, callbacks, tensorboard)

    @staticmethod
    def check_tensorboard() -> None:
        """A one-line UserError unless ``tensorboard=True`` can work (the package is installed)."""
        require_tensorboard()

    def pretrain(self, epochs: int | None = None, device: Any = None, callbacks: Sequence = (),
                 progress: bool | None = None, tensorboard: bool = False, workers: int = 1,
                 timeout: float = 120.0) -> dict[str, Any] | None:
        """MLE pretraining (``seqgan pretrain``): up to ``epochs`` MLE epochs in total (more
        than the run has continues MLE while the discriminator is untrained); the counters.
        ``tensorboard`` also logs to ``RUN/tensorboard/`` (:mod:`seqgan.report.tensorboard`).
        ``workers`` > 1 or torchrun: data-parallel (:mod:`seqgan.distributed.data_parallel`)."""
        resolve_device(device)
        if epochs is not None:
            opts.check_options("pretrain", {"epochs": epochs})
        from seqgan.distributed.group import under_torchrun

        if workers != 1 or under_torchrun():
            from seqgan.distributed.data_parallel import launch

            return launch(self.path, "pretrain", self.lock, device, workers, timeout, progress, self.log,
                          tensorboard=tensorboard, epochs=epochs)
        with self.lock(), self._board(callbacks, tensorboard) as cbs:
            self._refuse_population()
            trainer = self._trainer(device, False, cbs, progress)
            if epochs is not None:
                trainer.set_mle_epochs(epochs)
            trainer.pretrain_mle()
            return dict(trainer.state)

    def train(self, device: Any = None, callbacks: Sequence = (), progress: bool | None = None,
              tensorboard: bool = False, workers: int = 1, timeout: float = 120.0,
              **options: Any) -> dict[str, Any] | None:
        """Discriminator pretraining and adversarial training (``seqgan train``), MLE first
        if it is not done; resumes where the run stopped. ``options`` are ``seqgan train``'s
        (``epochs``, ``lambda_``, ``objective``, ``rollout_num``, ... see
        ``seqgan train --help``); ``epochs`` is the total. Returns the counters and the
        last metrics; where the run already had all the epochs asked for, nothing is
        trained or saved and ``"already_trained"`` holds a message saying so. ``tensorboard``,
        ``workers`` and ``timeout`` as in :meth:`pretrain`."""
        resolve_device(device)
        from seqgan.distributed.group import under_torchrun

        if workers != 1 or under_torchrun():
            from seqgan.distributed.data_parallel import launch

            return launch(self.path, "train", self.lock, device, workers, timeout, progress, self.log,
                          tensorboard=tensorboard, options=options)
        with self.lock(), self._board(callbacks, tensorboard) as cbs:
            self._refuse_population()
            changed = self._apply_train_options(options)
            trainer = self._trainer(device, options.get("objective") is not None, cbs, progress)
            done = nothing_to_train(self.path, trainer.state, trainer.tc, options.get("epochs"), changed)
            if done is not None:  # nothing is saved
                return done
            if changed:
                self.dir.save_config()
            trainer.train_all()
            last = self.dir.metrics.read()
            return {**trainer.state, "metrics": last[-1]["metrics"] if last else {}}

    def coevolve(self, device: Any = None, callbacks: Sequence = (), progress: bool | None = None,
                 workers: int = 1, timeout: float = 120.0, tensorboard: bool = False,
                 **options: Any) -> dict[str, Any]:
        """Coevolve a population of generator/discriminator pairs on a torus (``seqgan
        coevolve``, :mod:`seqgan.evolve`), starting from the run's MLE generator; resumes
        where it stopped. ``options`` are ``seqgan coevolve``'s (``grid``, ``generations``
        (the total), ``g_loss``, ``mixture_score``, ``lambda_``, ``objective``, ...).
        ``workers`` > 1 runs the cells on that many processes of this machine (under
        torchrun, the launcher's processes are used instead); collectives time out after
        ``timeout`` seconds. ``callbacks`` receive each cell's record per generation (in
        one process). ``tensorboard`` as in :meth:`pretrain` (with several processes, the
        records are written when the job ends). Returns the generation, the best cell and
        its mixture's score."""
        resolve_device(device)
        if not isinstance(workers, int) or workers < 1:
            raise UserError(f"--workers must be an integer >= 1; got {workers}")
        allow = options.get("objective") is not None
        from seqgan.distributed.group import under_torchrun

        if tensorboard:
            require_tensorboard()
        if under_torchrun() or workers > 1:
            start = len(self.metrics())
            out = self._coevolve_torchrun(device, progress, timeout, allow, options) if under_torchrun() \
                else self._coevolve_spawn(device, workers, timeout, allow, options)
            if tensorboard and out is not None:  # (rank 0) the records the workers logged
                with self._board((), True) as (board,):
                    board.replay(self.metrics()[start:])
            return out
        with self.lock(), self._board(callbacks, tensorboard) as cbs:
            changed = self._apply_train_options(options, "coevolve")
            co = Coevolution(self.dir, self.config.evolve, device, self.log, progress, allow, cbs)
            co.resume()
            if changed:
                self.dir.save_config()
            co.evolve()
            best, score = co.best()
            return {"generation": co.pop.generation, "best_cell": best, "score": score,
                    "seconds": co.seconds}

    def _coevolve_spawn(self, device: Any, workers: int, timeout: float, allow: bool,
                        options: dict[str, Any]) -> dict[str, Any]:
        """Coevolve on ``workers`` processes of this machine (:func:`seqgan.distributed.coevolve.spawn`)."""
        from seqgan.distributed.coevolve import spawn

        with self.lock():
            changed = self._apply_train_options(options, "coevolve")
            self._check_can_coevolve()
            if changed:
                self.dir.save_config()
            return spawn(self.path, workers, device, allow, timeout)

    def _check_can_coevolve(self) -> None:
        cfg = self.config.evolve
        if not self.is_population and not cfg.from_scratch and \
                not (self.path / "generator-mle.safetensors").is_file():
            raise UserError(f"{self.path} has no MLE generator yet: run `seqgan pretrain --out "
                            f"{self.path}` first, or coevolve with --from-scratch")

    def _coevolve_torchrun(self, device: Any, progress: bool | None, timeout: float, allow: bool,
                           options: dict[str, Any]) -> dict[str, Any] | None:
        """Every rank of a torchrun job: rank 0 takes the lock and checks and saves the
        options, then all ranks work on their cells."""
        from seqgan.distributed.coevolve import work
        from seqgan.distributed.group import Group

        group = Group.init(timeout=timeout)
        try:
            error = None
            if group.rank == 0:
                try:
                    self.dir.lock()
                    changed = self._apply_train_options(options, "coevolve")
                    self._check_can_coevolve()
                    if changed:
                        self.dir.save_config()
                except UserError as e:
                    error = str(e)
            error = group.broadcast(error)
            if error:
                raise UserError(error)
            return work(group, self.path, device, allow, progress, self.log)
        finally:
            self.dir.unlock()
            group.close()

    def _apply_train_options(self, options: dict[str, Any], command: str = "train") -> bool:
        """Check a training command's options and apply them to the config in memory (saved
        only once training can start); whether anything changed."""
        values = opts.check_options(command, options)
        if "baseline" in values:
            get_baseline(values["baseline"])
        cfg = self.dir.config
        before = cfg.to_dict()
        trial = opts.apply(type(cfg).from_dict(before), command, values)
        tc = trial.train
        uses_objective = tc.lambda_ < 1 and tc.baseline == "seqgan"
        if uses_objective and not tc.objective:
            raise UserError("λ < 1 needs an objective: pass --objective NAME")
        if uses_objective and ":" in tc.objective and values.get("objective") != tc.objective:
            raise UserError(f"{self.path}: its config.json names the objective {tc.objective!r}, which "
                            f"would import and run code from module {tc.objective.partition(':')[0]!r}; "
                            f"pass --objective {tc.objective} to allow that (in Python: "
                            f"objective={tc.objective!r}), or --objective NAME for another objective")
        if uses_objective or values.get("objective") is not None:  # a typed one is checked even at λ = 1
            self._probe_objective(tc.objective, allow_import=values.get("objective") == tc.objective)
        if command == "coevolve" and values.get("grid") and self.is_population \
                and values["grid"] != cfg.evolve.grid:
            raise UserError(f"{self.path} coevolves a {cfg.evolve.grid} grid, not {values['grid']}; "
                            f"omit --grid to resume it, or coevolve a copy of the MLE run")
        if command == "coevolve":
            Torus.parse(trial.evolve.grid)  # a bad grid fails before anything starts
        cfg.train, cfg.discriminator, cfg.evolve = trial.train, trial.discriminator, trial.evolve
        return cfg.to_dict() != before

    def _probe_objective(self, name: str, allow_import: bool) -> None:
        """Try the objective on real sequences now, not after minutes of D pretraining."""
        fn = get_objective(name, allow_import=allow_import)
        probe = self.dir.data()["train"][:64].long()
        RewardFn(None, 0.0, fn, name, self.vocab).objective_values(probe, len(probe))

    # -- reading --------------------------------------------------------------------------
    def sample_tokens(self, n: int = 10, temperature: float = 1.0, seed: int = 0, mle: bool = False,
                      device: Any = None, length: int | None = None, bars: int | None = None,
                      final: bool = False) -> torch.Tensor:
        """``n`` sampled sequences (n, L) as token ids, on the CPU; the same seed gives the
        same samples. L is the training length T, or ``length`` tokens, or (music) ``bars``
        bars; past T the generator keeps its state, and the first T tokens are the ordinary
        sample of the same seed. By default the generator the run's ``--select`` kept."""
        g = load_generator(self.dir, which_of(mle, final), device, warn=self.log)
        return sample_from(g, n, temperature, seed, self.length_of(length, bars)).cpu()

    def length_of(self, length: int | None, bars: int | None) -> int | None:
        """Tokens for ``--length`` or ``--bars`` (None: the training length)."""
        if bars is None:
            return length
        if length is not None:
            raise UserError("--length and --bars both set the length; give one of them")
        if self.kind != "music":
            raise UserError(f"--bars is for music; {self.path} holds {KIND_WORDS[self.kind]}: use --length")
        if not isinstance(bars, int) or bars < 1:
            raise UserError(f"--bars must be an integer >= 1; got {bars}")
        return bars * int(self.vocab.meta.get("steps_per_bar") or 4 * self.vocab.meta.get("steps_per_quarter", 4))

    def sample(self, n: int = 10, temperature: float = 1.0, seed: int = 0, mle: bool = False,
               device: Any = None, length: int | None = None, bars: int | None = None,
               final: bool = False) -> list[str]:
        """``n`` samples decoded: sentences (text), note names (music) or ids (oracle)."""
        return self.decode(self.sample_tokens(n, temperature, seed, mle, device, length, bars, final))

    def decode(self, tokens: torch.Tensor) -> list[str]:
        """Printable lines for sequences (N, T) of this run: words, note names or ids."""
        return format_samples(self.vocab, tokens)

    def export_midi(self, out: str | Path, n: int = 16, tempo: float = 120.0, program: int = 0,
                    seed: int = 0, mle: bool = False, device: Any = None,
                    tokens: torch.Tensor | None = None, length: int | None = None,
                    bars: int | None = None, final: bool = False) -> list[Path]:
        """One .mid per sample (``tokens``, or ``n`` fresh samples of ``length`` tokens or
        ``bars`` bars) and ``piano_roll.png`` in the folder ``out``; the MIDI paths."""
        check_midi_options(tempo, program)
        self._need_music("export-midi")
        if tokens is None:
            tokens = self.sample_tokens(n, 1.0, seed, mle, device, length, bars, final)
        outdir = Path(out)
        paths = export_samples(self.vocab, tokens, outdir, tempo=tempo, program=program)
        piano_roll_png(self.vocab, tokens, outdir / "piano_roll.png")
        return paths

    def export_audio(self, out: str | Path, n: int = 8, fmt: str = "wav", soundfont: str | Path | None = None,
                     program: int = 0, tempo: float = 120.0, seed: int = 0, mle: bool = False,
                     length: int | None = None, bars: int | None = None, device: Any = None,
                     tokens: torch.Tensor | None = None, final: bool = False) -> list[Path]:
        """:meth:`export_midi`, then each .mid rendered beside it as ``fmt`` (wav or flac)
        with FluidSynth and a General MIDI soundfont, or with sine waves where they are
        missing (a one-line notice; :mod:`seqgan.report.audio`); the audio paths."""
        self._need_music("export-audio")
        synth = choose_synth(fmt, soundfont)  # bad options fail before anything is written
        midis = self.export_midi(out, n, tempo, program, seed, mle, device, tokens=tokens, length=length,
                                 bars=bars, final=final)
        if synth.notice:
            self.log(synth.notice)
        return synth.render_all(midis)

    def _need_music(self, command: str) -> None:
        if self.kind != "music":
            raise UserError(f"{self.path} holds {KIND_WORDS[self.kind]}; {command} needs a music run")

    def plot(self, out: str | Path | None = None, compare: Sequence[str | Path] = ()) -> Path:
        """Learning curves of this run (and ``compare``'s) as PNG or SVG; the file's path
        (default ``RUN/learning-curves.png``)."""
        for other in compare:
            RunDir(other)  # a clear line for a path that is no run
        return plot_runs([self.path, *compare], out or self.path / "learning-curves.png")

    def animate(self, out: str | Path | None = None, fps: float = 2.0) -> Path:
        """The progress GIF (``seqgan animate``), a frame per snapshot; its path [RUN/progress.gif]."""
        return write_gif(self.dir, out or self.path / "progress.gif", fps)

    def report(self, out: str | Path | None = None, compare: Sequence[str | Path] = (), n: int | None = None,
               seed: int = 0, device: Any = None, **made: Any) -> Path:
        """The self-contained HTML report (``seqgan report``; :func:`seqgan.report.html.make_report`
        says what ``made`` may hold); its path [RUN/report.html]."""
        others = [Run(c, log=self.log) for c in compare]
        return make_report(self, out or self.path / "report.html", others, n, seed, device, **made)

    def encode_samples(self, path: str | Path) -> torch.Tensor:
        """A samples file (one sample a line, as ``sample --out`` writes) as tokens (N, T)."""
        rows = []
        for i, line in enumerate(read_sentences(path), 1):  # one-line errors: empty, binary, not UTF-8
            try:
                rows.append(self.vocab.encode(line.split()))
            except KeyError as e:
                raise UserError(f"{path}: sample {i}: token {e.args[0][:40]!r} is not in the run's "
                                f"vocabulary") from None
        if not rows:
            raise UserError(f"{path}: no samples in the file")
        T = max(len(r) for r in rows)
        pad = self.vocab.pad if self.vocab.pad is not None else 0
        return torch.tensor([r + [pad] * (T - len(r)) for r in rows])

    def default_metrics(self, has_references: bool = False) -> list[str]:
        """The default metrics of the run's kind that it can compute (says what it leaves out)."""
        names, note = metrics_for(self.dir, has_references)
        if note:
            self.log(f"note: {note}")
        return names

    def evaluate(self, metrics: Sequence[str] | str | None = None, n: int | None = None,
                 sample_size: int | None = None, references: str | Path | None = None,
                 compare: bool = False, mle: bool = False, seed: int = 0, device: Any = None,
                 final: bool = False, bleu_mode: str = "nltk") -> dict[str, Any]:
        """Measure the generator (``seqgan evaluate``): ``{metric: value}``, or with ``compare``
        ``{row: {metric: value}}`` for the training data and the MLE, selected (where the run keeps
        one) and final generators; ``final`` measures the final generator where the run would use
        its selected one; ``bleu_mode``: see :mod:`seqgan.metrics.bleu_modes`."""
        names = parse_metrics(metrics if isinstance(metrics, str) else ",".join(metrics)) if metrics \
            else self.default_metrics(references is not None)
        n = n if n is not None else self.config.train.eval_samples
        for flag, v in (("-n", n), ("--sample-size", sample_size)):
            if v is not None and v <= 0:
                raise UserError(f"{flag} must be > 0; got {v}")
        refs = bleu_references(bleu_mode, references, self.vocab, self.dir.meta.get("data_info") or {},
                               self.dir.data().get("test"), self.log, "bleu" in names)
        if references:
            if self.kind != "text":
                raise UserError(f"--references holds sentences; {self.path} holds {KIND_WORDS[self.kind]}")
            if "bleu" not in names:
                self.log("note: --references is used only by the bleu metric, which was not asked for")
        rows = evaluation_table(self.dir, names, n, seed, which_of(mle, final), device, refs,
                                compare, sample_size, warn=self.log)
        return rows if compare else next(iter(rows.values()))


def check_midi_options(tempo: float, program: int) -> None:
    """A UserError naming the option unless MIDI can store ``tempo`` (BPM) and ``program``
    is a General MIDI program in 0..127."""
    try:
        check_tempo(tempo)
    except UserError as e:
        raise UserError(f"--{e}") from None
    if not 0 <= program <= 127:
        raise UserError(f"--program must be in 0..127; got {program}")


