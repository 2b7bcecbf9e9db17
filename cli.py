"""The ``seqgan`` command line: parse, call the library, print.

Every command takes a run directory (see ``seqgan.checkpoint``). User errors print one
line ``error: ...`` and exit with status 2; Ctrl-C exits 130 with the run saved at its
last completed epoch.
"""
from __future__ import annotations

import contextlib
import functools
import json
import sys
from pathlib import Path

import click

from seqgan.config import DISCRIMINATOR_IMPLS, MAX_LR
from seqgan.errors import UserError, one_line

DEFAULT_MAIN_DATA = "music21:essen"
KIND_WORDS = {"ids": "token ids (oracle data)", "text": "text", "music": "music"}
# data options that decide the sequence length T, by source
LENGTH_OPTIONS = {"text": ("max_len", "len_percentile"), **{src: ("window",) for src in (
    "music21", "abc", "music-folder", "music-file")}}
DEFAULT_MAIN_RUN = "runs/folk"


def friendly(fn):
    """Turn UserError / KeyboardInterrupt / OS errors into one line and an exit code."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
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


def _parse_kv(items: tuple[str, ...]) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--data-option {item!r}: expected KEY=VALUE")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _positive(name: str, value, allow_zero: bool = False):
    if value is not None and (value < 0 or (value == 0 and not allow_zero)):
        flag = f"-{name}" if len(name) == 1 else f"--{name}"
        raise UserError(f"{flag} must be {'>= 0' if allow_zero else '> 0'}; got {value}")
    return value


def _seed(seed):
    from seqgan.config import check_seed

    return seed if seed is None else check_seed(seed)


def _absolute(spec: str | None) -> str | None:
    """A data spec with its file or folder made absolute (recorded in a run, so that the run
    can be resumed from any working directory)."""
    if spec is None:
        return None
    from seqgan.datasets import resolve_spec

    source, arg = resolve_spec(spec)
    if not arg or source == "music21":
        return spec
    return f"oracle:{Path(arg).resolve()}" if source == "oracle" else str(Path(arg).resolve())


def _same_data(a: str, b: str) -> bool:
    """Two data specs name the same data (``x.txt`` and ``./x.txt`` do)."""
    if a == b:
        return True
    from seqgan.datasets import resolve_spec

    try:
        (sa, pa), (sb, pb) = resolve_spec(a), resolve_spec(b)
    except UserError:
        return False
    return sa == sb and bool(pa) and bool(pb) and Path(pa).resolve() == Path(pb).resolve()


def _trainer(run, device, allow_import=False):
    from seqgan.train import Trainer

    return Trainer(run, device=device, log=lambda m: click.echo(m, err=True),
                   allow_import=allow_import)


# ---------------------------------------------------------------------------------------
@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="seqgan", message="seqgan %(version)s")
def main():
    """Train sequence GANs (SeqGAN, ORGAN) on text and music.

    Start with `seqgan run` (the whole pipeline on Essen folk songs), or
    `seqgan pretrain --data oracle --out runs/mle` for SeqGAN's synthetic experiment.
    """


# ---------------------------------------------------------------------------------------
def pretrain_options(f):
    opts = [
        click.option("--preset", default=None, help="Named settings: seqgan-oracle, quick, text, "
                     "folk, organ-music, ... [default: chosen from the data]"),
        click.option("--epochs", type=int, default=None, help="MLE epochs in total [default: the "
                     "preset's; 120 in seqgan-oracle]; on an existing run, more continues MLE."),
        click.option("--seed", type=int, default=None, help="Random seed [default: 0]."),
        click.option("--device", default=None, help="cpu, cuda or cuda:N [default: cuda if available]."),
        click.option("--test", "test_file", default=None, help="Held-out file for NLL-test / BLEU references."),
        click.option("--seq-len", type=int, default=None, help="Sequence length T [default: from preset/data]."),
        click.option("--batch-size", type=int, default=None, help="Batch size [default: 64]."),
        click.option("--lr", type=float, default=None, help="MLE learning rate [default: 0.01]."),
        click.option("--eval-every", type=int, default=None, help="Evaluate every K epochs."),
        click.option("--data-option", "data_options", multiple=True, metavar="KEY=VALUE",
                     help="Source option, e.g. tokenizer=treebank, lowercase=true, max_vocab=5000, "
                          "max_len=40, len_percentile=99, max_tunes=500, window=32, transpose=none "
                          "(repeatable; see the README's data specs)."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def build_config(data: str, preset, epochs, seed, test_file, seq_len, batch_size, lr, eval_every,
                 data_options):
    from seqgan.config import get_preset, override
    from seqgan.datasets import resolve_spec
    from seqgan.presets import preset_for_source

    source, _ = resolve_spec(data)
    cfg = get_preset(preset or preset_for_source(source))
    _positive("epochs", epochs, allow_zero=True)
    _positive("seq-len", seq_len)
    if seq_len is not None and seq_len < 2:
        raise UserError(f"--seq-len must be at least 2; got {seq_len}")
    _positive("batch-size", batch_size)
    _positive("eval-every", eval_every)
    if lr is not None and not 0 < lr <= MAX_LR:
        raise UserError(f"--lr must be in (0, {MAX_LR:g}]; got {lr}")
    _seed(seed)
    if test_file is not None and not Path(test_file).is_file():
        raise UserError(f"--test {test_file!r}: no such file")
    if test_file is not None and source != "text":
        raise UserError(f"--test is for text data (one sentence a line); {source} data makes its "
                        f"own held-out set")
    try:
        preset_source = resolve_spec(cfg.data.spec)[0] if cfg.data.spec in ("oracle",) or \
            cfg.data.spec.startswith("music21:") else None
    except UserError:
        preset_source = None
    if preset_source != source:  # the preset's source options belong to another kind of data
        cfg.data.options = {}
    cfg.data = override(cfg.data, spec=_absolute(data), test_spec=_absolute(test_file), seq_len=seq_len)
    given = _parse_kv(data_options)
    cfg.data.options = {**cfg.data.options, **given}
    # options that set the length win over the preset's T (but never over --seq-len)
    length_opts = sorted(k for k in given if k in LENGTH_OPTIONS.get(source, ()))
    if length_opts and seq_len is not None:
        raise UserError(f"--seq-len and --data-option {length_opts[0]} both set the sequence length; "
                        f"give one of them")
    if length_opts:
        w = given.get("window")
        cfg.data.seq_len = w if source != "text" and isinstance(w, int) and not isinstance(w, bool) \
            else None  # text: T from max_len / len_percentile; a bad window fails in the loader
    cfg.train = override(cfg.train, mle_epochs=epochs, seed=seed, batch_size=batch_size,
                         mle_lr=lr, eval_every=eval_every)
    return cfg


def _check_resume_options(run, preset=None, epochs=None, seed=None, test_file=None, seq_len=None,
                          batch_size=None, lr=None, eval_every=None, data_options=()) -> None:
    """Options that only shape a new run must agree with the run being resumed.

    They are stored in its config.json when it is created; silently ignoring a different
    value would let a user believe it took effect.
    """
    cfg = run.config
    given = {"--preset": (preset, cfg.preset), "--seed": (seed, cfg.train.seed),
             "--seq-len": (seq_len, cfg.data.seq_len), "--batch-size": (batch_size, cfg.train.batch_size),
             "--lr": (lr, cfg.train.mle_lr)}
    if test_file is not None and not (cfg.data.test_spec and _same_data(test_file, cfg.data.test_spec)):
        given["--test"] = (test_file, cfg.data.test_spec)
    differ = [f"{k} {v!r} (the run has {old!r})" for k, (v, old) in given.items()
              if v is not None and v != old]
    for key, value in _parse_kv(data_options).items():  # null is a value here, not "not given"
        old = _option_in_effect(cfg, key)
        if value != old:
            differ.append(f"--data-option {key}={json.dumps(value)} (the run has {json.dumps(old)})")
    if differ:
        raise UserError(f"{run.path} is an existing run and these options only apply when a run is "
                        f"created: {'; '.join(differ)}; omit them to resume it, or choose a new --out")


def _option_in_effect(cfg, key: str):
    """The value a data option had when the run was made: given, from the preset, or the
    source's default (music's ``window`` is the run's sequence length)."""
    from seqgan.datasets import default_options, resolve_spec

    if key in cfg.data.options:
        return cfg.data.options[key]
    try:
        source = resolve_spec(cfg.data.spec)[0]
    except UserError:  # the source is gone; a run never re-reads it
        return None
    if key == "window" and key in LENGTH_OPTIONS.get(source, ()):
        return cfg.data.seq_len
    return default_options(source).get(key)


@contextlib.contextmanager
def _removed_if_it_fails_before_a_checkpoint(run, new: bool):
    """A run created by this command that fails (or is interrupted) before its first
    checkpoint holds nothing worth resuming: remove it, so the command can be re-run with
    other options."""
    from seqgan.checkpoint import CKPT_PREV

    try:
        yield
    except BaseException:
        if new and not run.has_checkpoint() and not (run.path / CKPT_PREV).exists():
            import shutil

            shutil.rmtree(run.path, ignore_errors=True)
            click.echo(f"{run.path} had no checkpoint yet and was removed", err=True)
            if isinstance(sys.exc_info()[1], KeyboardInterrupt):
                click.echo("interrupted: nothing was kept", err=True)
                sys.exit(130)
        raise


def create_or_open(out: str, data: str | None, **kw):
    """Open RUN if it exists (checking it holds the same data), else load data and create it."""
    from seqgan.checkpoint import Run, create_run
    from seqgan.config import override
    from seqgan.datasets import load_corpus

    path = Path(out)
    if path.exists():
        run = Run(path)
        if data is not None and not _same_data(data, run.config.data.spec):
            raise UserError(f"{out} holds a run on data {run.config.data.spec!r}, not {data!r}; "
                            f"choose another --out or omit --data to resume it")
        _check_resume_options(run, **kw)
        if kw.get("eval_every") is not None and kw["eval_every"] != run.config.train.eval_every:
            _positive("eval-every", kw["eval_every"])
            run.config.train = override(run.config.train, eval_every=kw["eval_every"])
            run.save_config()
        click.echo(f"resuming {out}", err=True)
        return run
    if data is None:
        raise UserError("--data is required to create a new run (e.g. --data oracle)")
    cfg = build_config(data, **kw)
    corpus = load_corpus(data, cfg.data, cfg.data.seq_len or None, cfg.train.seed)
    cfg.generator = override(cfg.generator, vocab_size=len(corpus.vocab), seq_len=corpus.seq_len,
                             start_token=corpus.start_token)
    cfg.data = override(cfg.data, seq_len=corpus.seq_len)
    info = ", ".join(f"{k} {v}" for k, v in corpus.info.items()
                     if isinstance(v, (int, float, str)) and not isinstance(v, bool)
                     and not any(w in k for w in ("cache", "seconds", "file", "examples", "source")))
    click.echo(f"data: {len(corpus.train)} training sequences of length {corpus.seq_len}, "
               f"vocabulary {len(corpus.vocab)}" + (f" ({info})" if info else ""), err=True)
    return create_run(path, cfg, corpus)


@main.command()
@click.option("--data", default=None, help="Data spec: oracle, oracle:PATH.npz, music21:essen, "
              "a MIDI/MusicXML folder, FILE.abc or FILE.txt (required for a new run).")
@click.option("--out", required=True, help="Run directory (created, or resumed if it exists).")
@pretrain_options
@friendly
def pretrain(data, out, preset, epochs, seed, device, test_file, seq_len, batch_size, lr,
             eval_every, data_options):
    """MLE pretraining of the generator (creates or resumes RUN)."""
    from seqgan.train import resolve_device

    resolve_device(device)  # a bad --device fails before a run directory is created
    _positive("epochs", epochs, allow_zero=True)
    resumed = Path(out).exists()
    run = create_or_open(out, data, preset=preset, epochs=epochs, seed=seed, test_file=test_file,
                         seq_len=seq_len, batch_size=batch_size, lr=lr, eval_every=eval_every,
                         data_options=data_options)
    with _removed_if_it_fails_before_a_checkpoint(run, new=not resumed):
        trainer = _trainer(run, device)
        if resumed and epochs is not None:
            trainer.set_mle_epochs(epochs)
        trainer.pretrain_mle()
    click.echo(f"pretrained {out}: {trainer.state['mle_epoch']} MLE epochs "
               f"({trainer.state['seconds']:.1f} s)")


# ---------------------------------------------------------------------------------------
def apply_train_options(run, **kw) -> bool:
    """Check the options of ``seqgan train`` and apply them to ``run.config`` in memory.

    Returns whether the configuration changed; the caller saves it only once training can
    start (a refused option or a failed start leaves config.json as it was).
    """
    from seqgan.config import override
    from seqgan.rewards import validate_lambda
    from seqgan.train import BASELINES

    for name in ("epochs", "rollout_num", "g_steps", "d_steps", "k_epochs", "d_batch_size",
                 "eval_every", "d_pretrain_steps", "checkpoint_every", "d_samples"):
        _positive(name.replace("_", "-"), kw.get(name), allow_zero=name in ("epochs", "d_steps",
                                                                            "d_pretrain_steps"))
    if kw.get("lambda_") is not None:
        validate_lambda(kw["lambda_"])
    if kw.get("update_rate") is not None and not 0.0 <= kw["update_rate"] <= 1.0:
        raise UserError(f"--update-rate must be in [0, 1]; got {kw['update_rate']}")
    if kw.get("baseline") is not None and kw["baseline"] not in BASELINES:
        raise UserError(f"unknown --baseline {kw['baseline']!r}; choose one of: {', '.join(BASELINES)}")
    tc = override(run.config.train, adv_epochs=kw.get("epochs"), rollout_num=kw.get("rollout_num"),
                  update_rate=kw.get("update_rate"), lambda_=kw.get("lambda_"),
                  objective=kw.get("objective"), g_steps=kw.get("g_steps"), d_steps=kw.get("d_steps"),
                  k_epochs=kw.get("k_epochs"), baseline=kw.get("baseline"),
                  adv_eval_every=kw.get("eval_every"), d_pretrain_steps=kw.get("d_pretrain_steps"),
                  duplicate_penalty=kw.get("duplicate_penalty"),
                  reward_baseline=kw.get("reward_baseline"),
                  checkpoint_every=kw.get("checkpoint_every"), d_samples=kw.get("d_samples"))
    uses_objective = tc.lambda_ < 1 and tc.baseline == "seqgan"
    if uses_objective and not tc.objective:
        raise UserError("λ < 1 needs an objective: pass --objective NAME")
    if uses_objective or kw.get("objective") is not None:  # one typed is checked even at λ = 1
        from seqgan.objectives import get_objective
        from seqgan.rewards import RewardFn

        fn = get_objective(tc.objective, allow_import=kw.get("objective") == tc.objective)
        # try it on real sequences now, not after minutes of discriminator pretraining
        probe = run.data()["train"][:64].long()
        RewardFn(None, 0.0, fn, tc.objective, run.vocab).objective_values(probe, len(probe))
    before = run.config.to_dict()
    run.config.train = tc
    run.config.discriminator = override(run.config.discriminator, batch_size=kw.get("d_batch_size"),
                                        impl=kw.get("d_impl"), compile=kw.get("d_compile"))
    return run.config.to_dict() != before


def _already_trained(trainer, run_dir, changed: bool) -> bool:
    """Say so when RUN has all the adversarial epochs asked for (then nothing is saved)."""
    st, tc = trainer.state, trainer.tc
    if st["phase"] != "done" or st["adv_epoch"] < tc.adv_epochs:
        return False
    click.echo(f"{run_dir} is already trained: {st['adv_epoch']} adversarial epochs; pass a larger "
               f"--epochs to continue" + ("; the other options were not saved" if changed else ""))
    return True


def train_options(f):
    opts = [
        click.option("--epochs", type=int, default=None, help="Adversarial epochs in total "
                     "[default: the run's preset; 200 in seqgan-oracle]."),
        click.option("--rollout-num", type=int, default=None, help="Monte Carlo rollouts N [16]."),
        click.option("--update-rate", type=float, default=None, help="Rollout policy delay ρ [0.8]; 0 = "
                     "what SeqGAN's code actually did."),
        click.option("--lambda", "lambda_", type=float, default=None,
                     help="Reward weight λ in [0, 1]: 1 = SeqGAN, 0 = objective only [1.0]."),
        click.option("--objective", default=None, help="ORGAN objective: tonality, melodicity, "
                     "ratio_of_steps, a plug-in name or module:function."),
        click.option("--g-steps", type=int, default=None, help="Generator steps per epoch [1]."),
        click.option("--d-steps", type=int, default=None, help="Discriminator rounds per epoch [5]."),
        click.option("--k-epochs", type=int, default=None, help="Epochs per discriminator round [3]."),
        click.option("--d-pretrain-steps", type=int, default=None, help="Discriminator pretraining rounds [50]."),
        click.option("--d-samples", type=int, default=None, help="Positives per discriminator round "
                     "(a random subset) [all, as SeqGAN]."),
        click.option("--d-batch-size", type=int, default=None, help="Discriminator batch [64]; larger is "
                     "faster but departs from SeqGAN."),
        click.option("--d-impl", type=click.Choice(DISCRIMINATOR_IMPLS), default=None,
                     help="How D's filter banks are computed: auto (fused on GPUs, conv on CPUs), "
                     "fused (one matmul), grouped (a few matmuls, fewer FLOPs), conv (Conv1d per "
                     "bank). Same weights and results either way."),
        click.option("--d-compile/--no-d-compile", default=None,
                     help="On GPUs, torch.compile D's training step before capturing it "
                     "(one-time compile of about a minute) [off]."),
        click.option("--baseline", default=None, help="seqgan (adversarial), mle, ss (scheduled "
                     "sampling) or pg-bleu."),
        click.option("--duplicate-penalty/--no-duplicate-penalty", default=None,
                     help="ORGAN's penalty on repeated sequences in the objective."),
        click.option("--reward-baseline/--no-reward-baseline", default=None,
                     help="Subtract the batch-mean reward (variance reduction)."),
        click.option("--eval-every", type=int, default=None, help="Evaluate every K adversarial epochs."),
        click.option("--checkpoint-every", type=int, default=None,
                     help="Checkpoint every K adversarial epochs / D rounds [1]."),
        click.option("--device", default=None, help="cpu, cuda or cuda:N."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


@main.command()
@click.argument("run_dir", metavar="RUN")
@train_options
@friendly
def train(run_dir, device, **kw):
    """Adversarial training of a pretrained RUN (resumes where it stopped)."""
    from seqgan.checkpoint import Run

    from seqgan.train import resolve_device

    resolve_device(device)
    run = Run(run_dir)
    changed = apply_train_options(run, **kw)
    trainer = _trainer(run, device, allow_import=kw.get("objective") is not None)
    done = trainer.state["adv_epoch"]
    if kw.get("epochs") is not None and kw["epochs"] < done:
        raise UserError(f"{run.path} has already trained {done} adversarial epochs; --epochs is "
                        f"the total, so pass at least {done}")
    if _already_trained(trainer, run_dir, changed):
        return
    if changed:
        run.save_config()
    trainer.train_all()
    last = run.read_metrics()[-1]["metrics"] if run.read_metrics() else {}
    shown = ", ".join(f"{k} {v:.4f}" if v is not None else f"{k} n/a" for k, v in last.items())
    click.echo(f"trained {run_dir}: {trainer.state['adv_epoch']} adversarial epochs "
               f"({trainer.state['seconds']:.1f} s of training in all phases){': ' + shown if shown else ''}")


# ---------------------------------------------------------------------------------------
def load_generator(run, which: str, device):
    from seqgan.generator import Generator
    from seqgan.train import resolve_device

    dev = resolve_device(device)
    g = Generator(run.config.generator)
    if which == "mle":
        path = run.path / "generator-mle.safetensors"
        if not path.is_file():
            raise UserError(f"{run.path} has no MLE generator yet; run `seqgan pretrain --out {run.path}`")
        tensors = run.load_run_tensors(path.name)
    else:
        got = run.read_checkpoint_tensors("generator", warn=lambda m: click.echo(m, err=True))
        if got is None:
            raise UserError(f"{run.path} has no trained generator yet; run `seqgan pretrain --out {run.path}`")
        tensors, path = got
    try:
        g.load_state_dict(tensors)
    except RuntimeError as e:
        raise UserError(f"{path}: does not fit this run's generator ({one_line(e)})") from None
    return g.to(dev).eval()


def sample_from(g, n: int, temperature: float, seed: int):
    """``n`` sequences (n, T) from a loaded generator with a seeded sampling stream."""
    import torch

    if n <= 0:
        raise UserError(f"-n must be > 0; got {n}")
    if not 0 < temperature < float("inf"):
        raise UserError(f"--temperature must be a finite number > 0; got {temperature}")
    rng = torch.Generator(device=g.device).manual_seed(seed)
    return g.sample(n, temperature=temperature, generator=rng)


def draw_samples(run, n: int, temperature: float, seed: int, which: str, device):
    return sample_from(load_generator(run, which, device), n, temperature, seed)


@main.command()
@click.argument("run_dir", metavar="RUN")
@click.option("-n", "n", type=int, default=10, show_default=True, help="Number of samples.")
@click.option("--temperature", type=float, default=1.0, show_default=True,
              help="Softmax temperature: below 1 more likely tokens, above 1 more varied ones.")
@click.option("--seed", type=int, default=0, show_default=True, help="Sampling seed (same seed, same samples).")
@click.option("--out", default=None, help="Write the samples to FILE instead of printing them.")
@click.option("--mle", is_flag=True, help="Sample the generator as MLE pretraining left it.")
@click.option("--device", default=None, help="cpu, cuda or cuda:N [default: cuda if available].")
@friendly
def sample(run_dir, n, temperature, seed, out, mle, device):
    """Sample sequences from RUN's generator: decoded text, note names, or token ids."""
    from seqgan.checkpoint import Run, atomic_write_bytes
    from seqgan.datasets import format_samples

    _seed(seed)
    run = Run(run_dir)
    lines = format_samples(run.vocab, draw_samples(run, n, temperature, seed,
                                                   "mle" if mle else "latest", device).cpu())
    text = "\n".join(lines) + "\n"
    if out:
        atomic_write_bytes(out, text.encode("utf-8"))
        click.echo(f"wrote {len(lines)} samples to {out}", err=True)
    else:
        click.echo(text, nl=False)


# ---------------------------------------------------------------------------------------
def _find_run_for(path: Path):
    from seqgan.checkpoint import Run

    for parent in [path.parent, *path.parents]:
        if (parent / "vocab.json").is_file() and (parent / "config.json").is_file():
            return Run(parent)
    raise UserError(f"{path}: cannot find the run it came from; pass --run RUN")


@main.command("export-midi")
@click.argument("source", metavar="RUN|SAMPLES_FILE")
@click.option("--out", required=True, help="Folder for the .mid files and piano-roll PNG.")
@click.option("-n", "n", type=int, default=16, show_default=True, help="Samples to draw from a RUN.")
@click.option("--tempo", type=float, default=120.0, show_default=True, help="Beats per minute.")
@click.option("--program", type=int, default=0, show_default=True, help="General MIDI program (0 = piano).")
@click.option("--run", "run_dir", default=None, help="The run a SAMPLES_FILE came from (its vocabulary).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--mle", is_flag=True, help="Export the MLE generator's samples.")
@click.option("--device", default=None)
@friendly
def export_midi(source, out, n, tempo, program, run_dir, seed, mle, device):
    """Write one .mid per sample and a piano-roll PNG of them."""
    import torch

    from seqgan.checkpoint import Run

    from seqgan.datasets.midi import check_tempo

    try:
        check_tempo(tempo)
    except UserError as e:
        raise UserError(f"--{e}") from None
    if not 0 <= program <= 127:
        raise UserError(f"--program must be in 0..127; got {program}")
    _seed(seed)
    src = Path(source)
    if src.is_dir():
        run = Run(src)
        tokens = draw_samples(run, n, 1.0, seed, "mle" if mle else "latest", device).cpu()
    elif src.is_file():
        run = Run(run_dir) if run_dir else _find_run_for(src)
        from seqgan.datasets.text import read_sentences

        rows = []
        for i, line in enumerate(read_sentences(src), 1):  # one-line errors: empty, binary, not UTF-8
            try:
                rows.append(run.vocab.encode(line.split()))
            except KeyError as e:
                raise UserError(f"{src}: sample {i}: token {e.args[0][:40]!r} is not in the run's "
                                f"vocabulary") from None
        if not rows:
            raise UserError(f"{src}: no samples in the file")
        T = max(len(r) for r in rows)
        pad = run.vocab.pad if run.vocab.pad is not None else 0
        tokens = torch.tensor([r + [pad] * (T - len(r)) for r in rows])
    else:
        raise UserError(f"{source}: no such run or samples file")
    if run.vocab.kind != "music":
        raise UserError(f"{run.path} holds {KIND_WORDS[run.vocab.kind]}; export-midi needs a music run")
    from seqgan.datasets.midi import export_samples, piano_roll_png

    outdir = Path(out)
    paths = export_samples(run.vocab, tokens, outdir, tempo=tempo, program=program)  # makes the folder
    png = outdir / "piano_roll.png"
    piano_roll_png(run.vocab, tokens, png)
    click.echo(f"wrote {len(paths)} MIDI files and {png} to {outdir}")


# ---------------------------------------------------------------------------------------
def evaluation_table(run, names, n, seed, which, device, references=None, compare=False,
                     sample_size=None):
    """Rows {label: metrics} for the generator(s) of RUN (and the data, with compare)."""
    from seqgan.metrics import EvalContext, compute

    data = run.data()
    rows = {}
    gens = ([("MLE generator", "mle"), ("final generator", "latest")] if compare
            else [("MLE generator" if which == "mle" else "generator", which)])
    if compare:
        ref = data["train"]
        if sample_size:
            ref = ref[torch_randperm(len(ref), seed)[:sample_size]]
        elif len(ref) > n:
            ref = ref[torch_randperm(len(ref), seed)[:n]]
        ctx = EvalContext(ref, run.vocab, None, run.oracle(), data["train"], data.get("test"), references)
        rows["training data"] = compute([m for m in names if m not in ("nll-test", "nll-oracle")], ctx)
    for label, w in gens:
        g = load_generator(run, w, device)
        samples = sample_from(g, n, 1.0, seed).cpu()
        if sample_size:
            samples = samples[:sample_size]
        oracle = run.oracle()
        ctx = EvalContext(samples, run.vocab, g, oracle.to(g.device) if oracle is not None else None,
                          data["train"], data.get("test"), references)
        rows[label] = compute(names, ctx)
    return rows


def _default_metrics(run, has_references: bool) -> list[str]:
    """The default metrics of RUN's kind that it can compute; says which it leaves out."""
    from seqgan.metrics import default_metrics

    test = run.data().get("test")
    names, note = default_metrics(run.vocab.kind, test is not None and len(test) > 0, has_references)
    if note:
        click.echo(f"note: {note}", err=True)
    return names


def torch_randperm(n: int, seed: int):
    import torch

    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))


def format_table(rows: dict[str, dict[str, float]]) -> str:
    cols = []
    for r in rows.values():
        cols += [c for c in r if c not in cols]
    width = max([len(k) for k in rows] + [6])
    head = " " * width + "  " + "  ".join(f"{c:>12}" for c in cols)
    lines = [head]
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
@click.option("--references", default=None, help="Reference file for BLEU (one sentence a line).")
@click.option("--compare", is_flag=True, help="Rows for the training data, the MLE and the final generator.")
@click.option("--mle", is_flag=True, help="Evaluate the MLE generator instead of the latest.")
@click.option("--seed", type=int, default=0, show_default=True, help="Sampling seed of the evaluated samples.")
@click.option("--json", "json_out", default=None, help="Also write the results as JSON to FILE.")
@click.option("--device", default=None, help="cpu, cuda or cuda:N [default: cuda if available].")
@friendly
def evaluate(run_dir, metric_spec, n, sample_size, references, compare, mle, seed, json_out, device):
    """Measure RUN's generator: NLL-oracle, NLL-test, BLEU, self-BLEU, music metrics."""
    from seqgan.checkpoint import Run, atomic_write_json
    from seqgan.metrics import parse_metrics

    _seed(seed)
    if json_out and Path(json_out).is_dir():
        raise UserError(f"--json {json_out!r} is a folder; give a file name")
    run = Run(run_dir)
    if metric_spec:
        names = parse_metrics(metric_spec)
    else:
        names = _default_metrics(run, references is not None)
    n = n if n is not None else run.config.train.eval_samples
    _positive("n", n)
    _positive("sample-size", sample_size)
    refs = None
    if references:
        from seqgan.datasets.text import read_sentences, tokenize

        refs = [tokenize(s, run.vocab.meta) for s in read_sentences(references)]
    if references and run.vocab.kind != "text":
        raise UserError(f"--references holds sentences; {run_dir} holds {KIND_WORDS[run.vocab.kind]}")
    if references and "bleu" not in names:
        click.echo("note: --references is used only by the bleu metric, which was not asked for", err=True)
    rows = evaluation_table(run, names, n, seed, "mle" if mle else "latest", device, refs, compare,
                            sample_size)
    cfg = run.config
    scored = f"{min(n, sample_size)} of {n}" if sample_size else f"{n}"
    click.echo(f"run {run_dir}: data {cfg.data.spec}, preset {cfg.preset}, seed {cfg.train.seed}, "
               f"seqgan {run.meta.get('versions', {}).get('seqgan')}, "
               f"torch {run.meta.get('versions', {}).get('torch')}, {scored} samples scored "
               f"(sampling seed {seed})")
    click.echo(format_table(rows))
    if json_out:
        atomic_write_json(json_out, {"run": str(run_dir), "rows": rows, "samples": n, "seed": seed,
                                     "config": cfg.to_dict(), "versions": run.meta.get("versions")})
    return rows


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
    """The whole pipeline: pretrain, adversarial training, samples, MIDI and a metrics table."""
    from seqgan.checkpoint import Run, atomic_write_bytes
    from seqgan.datasets import format_samples
    from seqgan.rewards import validate_lambda
    from seqgan.train import resolve_device

    data_given = data
    data = data or DEFAULT_MAIN_DATA
    out = out or DEFAULT_MAIN_RUN
    _seed(seed)
    if preset is None and data == DEFAULT_MAIN_DATA and not Path(out).exists():
        preset = "folk"
    resolve_device(device)  # bad options fail before a run directory is created
    if lambda_ is not None:
        validate_lambda(lambda_)
    if objective is not None:
        from seqgan.objectives import get_objective

        get_objective(objective, allow_import=True)
    new = not Path(out).exists()
    run = create_or_open(out, data if new else data_given, preset=preset, epochs=None,
                         seed=seed, test_file=None, seq_len=None, batch_size=None, lr=None,
                         eval_every=None, data_options=())
    with _removed_if_it_fails_before_a_checkpoint(run, new=new):
        changed = apply_train_options(run, objective=objective, lambda_=lambda_)
        trainer = _trainer(run, device, allow_import=objective is not None)
        if not _already_trained(trainer, out, changed):
            if changed:
                run.save_config()
            trainer.train_all()
    del trainer
    run = Run(out)
    samples = draw_samples(run, 16, 1.0, 0, "latest", device).cpu()
    lines = format_samples(run.vocab, samples)
    atomic_write_bytes(run.path / "samples" / "samples.txt", ("\n".join(lines) + "\n").encode())
    if run.vocab.kind == "music":
        from seqgan.datasets.midi import export_samples, piano_roll_png

        paths = export_samples(run.vocab, samples, run.path / "samples")
        piano_roll_png(run.vocab, samples, run.path / "samples" / "piano_roll.png")
        click.echo(f"wrote {len(paths)} MIDI files and a piano roll to {run.path / 'samples'}")
    else:
        click.echo("\n".join(lines[:5]))
    names = _default_metrics(run, False)
    rows = evaluation_table(run, names, min(run.config.train.eval_samples, 1000), 0, "latest", device,
                            compare=True)
    click.echo(format_table(rows))
    from seqgan.checkpoint import atomic_write_json

    atomic_write_json(run.path / "results.json", rows)


if __name__ == "__main__":
    main()
