"""A run's training, phase by phase, checkpointed after every epoch.

:class:`RunTrainer` drives a :class:`~seqgan.training.state.TrainingState` through the
phases of a run directory — MLE pretraining, discriminator pretraining, then adversarial
training (or a baseline) — with one loop (:meth:`RunTrainer._run_phase`) that every phase
shares: step, check the weights, count, record, checkpoint. Each completed epoch (MLE
epoch, D round, adversarial epoch) ends with a checkpoint (every ``checkpoint_every`` for
D rounds and adversarial epochs), so a run killed at any moment resumes from the last
one and — on the CPU with a fixed seed — ends with exactly the weights and metrics of an
uninterrupted run: weights, optimizers, G_β, RNG states and counters are restored, and
evaluation draws from its own seeded generator so it never perturbs training randomness.

Constructing a trainer reads the run; :meth:`RunTrainer.resume` is the first write
(recover a cut checkpoint swap, restore the latest checkpoint, or set the history of a
run that must start again aside). ``callbacks`` are called with every epoch's record
``{"phase", "epoch", "metrics"}``.

In a data-parallel job (``shard``: :mod:`seqgan.training.shard`) every rank runs the same
loop; rank 0 alone writes the run (checkpoints, metrics, snapshots, evaluation), the others
only read the checkpoint rank 0 resumed.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Any, Callable

import torch
from tqdm import tqdm

from seqgan.errors import UserError
from seqgan.files import atomic_save_tensors
from seqgan.runs.rundir import RunDir
from seqgan.runs.snapshots import Snapshotter
from seqgan.training.baselines import get_baseline
from seqgan.training.d_training import d_round
from seqgan.training.mle import mle_epoch
from seqgan.training.persist import restore_state, state_files
from seqgan.training.shard import Shard
from seqgan.training.selection import Selector
from seqgan.training.state import PHASE_WORDS, TrainingState, resolve_device

Callback = Callable[[dict[str, Any]], Any]


@dataclass
class _Phase:
    """How one phase steps, counts, records and checkpoints (the loop is shared)."""

    name: str  # the phase's name in state.json and metrics.jsonl
    counter: str  # its counter in state.json
    total: int
    step: Callable[[], dict[str, float]]
    record: Callable[[int], bool]  # log a metrics record after epoch e?
    evaluate: bool  # add NLL metrics to the record
    checkpoint_every: int
    desc: str
    postfix: Callable[[dict[str, float]], dict[str, str]]


def nothing_to_train(path: Any, st: dict[str, Any], tc: Any, epochs: int | None, changed: bool
                     ) -> dict[str, Any] | None:
    """What ``seqgan train --epochs epochs`` returns on the run at ``path`` (counters ``st``,
    train config ``tc``) when it already has the epochs asked for, else None; a UserError
    for a total below what it has."""
    if epochs is not None and epochs < st["adv_epoch"]:
        raise UserError(f"{path} has already trained {st['adv_epoch']} adversarial epochs; "
                        f"--epochs is the total, so pass at least {st['adv_epoch']}")
    if st["phase"] == "done" and st["adv_epoch"] >= tc.adv_epochs:
        return {**st, "already_trained": f"{path} is already trained: {st['adv_epoch']} adversarial "
                f"epochs; pass a larger --epochs to continue"
                + ("; the other options were not saved" if changed else "")}
    return None


class RunTrainer:
    """Train the run ``run`` (opened for writing) on ``device``; see the module docstring."""

    def __init__(self, run: RunDir, device: str | torch.device | None = None,
                 log: Callable[[str], Any] = print, progress: bool | None = None,
                 allow_import: bool = False, callbacks: tuple[Callback, ...] = (),
                 shard: Shard | None = None):
        self.run, self.cfg = run, run.config
        self.dev = resolve_device(device)
        self.log, self.progress, self.allow_import = log, progress, allow_import
        self.callbacks = tuple(callbacks)
        torch.manual_seed(self.cfg.train.seed)
        data = run.data()
        self.train_data = data["train"].to(self.dev)
        self.test_data = data.get("test")
        oracle = run.oracle()
        self.oracle = oracle.to(self.dev) if oracle is not None else None
        self.st = TrainingState.build(self.cfg, self.dev, log=log, shard=shard)
        self.writes = self.st.shard.writes  # False on the other ranks of a data-parallel job
        self.selector = Selector(run, self.train_data, log, allow_import,  # music metrics, --select
                                 has_test=self.test_data is not None and len(self.test_data) > 0)
        self.snapshots = Snapshotter(run.path, run.vocab, self.cfg)  # fixed-seed samples (own RNG)

    @property
    def tc(self):
        """The run's training config (``config.train``)."""
        return self.cfg.train

    @property
    def state(self) -> dict[str, Any]:
        """The counters: phase, mle_epoch, d_round, adv_epoch, seconds."""
        return self.st.counters

    # -- checkpoints ----------------------------------------------------------------------
    def resume(self) -> "RunTrainer":
        """Recover what a kill left half done and restore the latest checkpoint; a run with
        a history but no checkpoint starts again, its history moved aside (never deleted)."""
        run = self.run
        if not self.writes:  # another rank of a data-parallel job: what rank 0 resumed
            ck = run.checkpoints.load(warn=lambda m: None)
            if ck is not None:
                restore_state(self.st, *ck)
            return self
        run.checkpoints.recover()
        ck = run.checkpoints.load(warn=self.log)
        if ck is not None:
            counters, paths = ck
            restore_state(self.st, counters, paths)
            n = int(counters.get("metrics_lines", 0))
            lost = run.metrics.truncate(n)
            if lost:  # only damage can lose records that a checkpoint has seen
                self.log(f"warning: {run.metrics.path}: {lost} of the {n} records before this "
                         f"checkpoint are damaged or missing and were dropped")
                self.save()  # the same state, now counting the lines the repaired log really has
        else:
            moved = run.set_aside_history()
            if moved:
                self.log(f"warning: {run.path} has a training history but no checkpoint (checkpoint/ "
                         f"and checkpoint.prev/ are gone): training starts again from scratch; kept "
                         f"aside: {', '.join(moved)}")
        return self

    def save(self) -> None:
        """Checkpoint the state (counters, weights, optimizers, G_β, RNG) with the metrics log's
        line count."""
        if not self.writes:
            return
        self.run.checkpoints.save(dict(self.state), state_files(self.st), self.run.metrics.count())

    # -- evaluation -----------------------------------------------------------------------
    def _eval_generator(self) -> torch.Generator:
        g = torch.Generator(device=self.dev)
        step = self.state["mle_epoch"] * 100_003 + self.state["adv_epoch"]
        return g.manual_seed(self.tc.seed * 1_000_003 + step)

    def evaluate(self) -> dict[str, float]:
        """NLL-oracle of fresh samples (oracle data) and NLL-test (held-out data)."""
        out: dict[str, float] = {}
        if not self.writes:
            return out
        G = self.st.G
        G.eval()
        if self.oracle is not None:
            samples = G.sample(self.tc.eval_samples, generator=self._eval_generator())
            out["nll_oracle"] = self.oracle.nll(samples)
        if self.test_data is not None and len(self.test_data):
            out["nll_test"] = G.nll(self.test_data)
        out.update(self.selector.metrics(G, self._eval_generator()))  # music: style, objective
        G.train()
        return out

    def _record(self, phase: str, epoch: int, metrics: dict[str, float]) -> None:
        if not self.writes:
            return
        rec = {"phase": phase, "epoch": epoch, "seconds": round(self.state["seconds"], 3),
               # JSON has no NaN: a metric that could not be computed is null
               "metrics": {k: float(v) if math.isfinite(float(v)) else None for k, v in metrics.items()}}
        if phase == "adversarial":  # --select data-close, best-nll-test: keep the chosen epoch's G
            chosen = self.selector.update(epoch, rec["metrics"], self.run.metrics.read(), self.st.G)
            if chosen is not None:
                rec["selected"] = chosen
        self.run.metrics.append(rec)
        shown = "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()) or "(nothing to measure: no test set)"
        if self.progress is False:
            self.log(shown)
        else:
            tqdm.write(f"[{phase} {epoch}] {shown}")

    # -- the one loop ---------------------------------------------------------------------
    def _run_phase(self, ph: _Phase) -> None:
        c = self.state
        disable = None if self.progress is None else not self.progress
        with tqdm(total=ph.total, initial=c[ph.counter], desc=ph.desc, disable=disable, leave=False,
                  dynamic_ncols=True) as bar:
            while c[ph.counter] < ph.total:
                t0 = time.perf_counter()
                m = ph.step()
                self.st.check_finite()  # every epoch: --checkpoint-every K must not train on NaN
                c[ph.counter] += 1
                c["seconds"] += time.perf_counter() - t0
                e = c[ph.counter]
                if ph.record(e):
                    m = {**m, **(self.evaluate() if ph.evaluate else {})}
                    self._record(ph.name, e, m)
                for cb in self.callbacks:
                    cb({"phase": ph.name, "epoch": e, "metrics": dict(m)})
                if self.writes:
                    self.snapshots.take(ph.name, e, self.st.G, ph.total)  # before the checkpoint
                bar.set_postfix(ph.postfix(m))
                bar.update(1)
                if e % ph.checkpoint_every == 0:
                    self.save()

    # -- phases ---------------------------------------------------------------------------
    def set_mle_epochs(self, total: int) -> None:
        """Ask a resumed run for ``total`` MLE epochs in all (``seqgan pretrain --epochs``).

        More epochs continue MLE while nothing after it has been trained (the discriminator
        not yet pretrained); fewer than already trained, or more once later phases began,
        is an error rather than a silent no-op.
        """
        done, phase = self.state["mle_epoch"], self.state["phase"]
        if total == self.tc.mle_epochs and (phase == "mle" or total == done):
            return
        if total < done:
            raise UserError(f"{self.run.path} has already trained {done} MLE epochs; --epochs is the "
                            f"total, so pass at least {done}")
        untouched = phase == "d-pretrain" and self.state["d_round"] == 0
        if phase != "mle" and not untouched and total != done:
            raise UserError(f"{self.run.path} finished MLE pretraining after {done} epochs and has "
                            f"moved on to {PHASE_WORDS[phase]}; start a new run for more MLE epochs")
        self.cfg.train = replace(self.tc, mle_epochs=total)
        if self.writes:
            self.run.save_config()
        if total > done:
            self.state["phase"] = "mle"

    def pretrain_mle(self) -> None:
        """MLE pretraining to ``mle_epochs`` epochs (a no-op unless the phase is ``mle``); then
        writes generator-mle.safetensors, moves on to ``d-pretrain`` and checkpoints."""
        if self.state["phase"] != "mle":
            return
        total, every = self.tc.mle_epochs, self.tc.eval_every
        if self.state["mle_epoch"] == 0 and not self.run.metrics.read():
            self._record("mle", 0, self.evaluate())
        if self.state["mle_epoch"] == 0 and self.writes:
            self.snapshots.take("mle", 0, self.st.G, total)  # the untrained generator
        self._run_phase(_Phase(
            "mle", "mle_epoch", total, lambda: {"loss": mle_epoch(self.st, self.train_data)},
            record=lambda e: e % every == 0 or e == total, evaluate=True, checkpoint_every=1,
            desc="MLE", postfix=lambda m: {"loss": f"{m['loss']:.3f}"}))
        if self.writes:
            atomic_save_tensors(self.run.path / "generator-mle.safetensors", self.st.G.state_dict())
            self.run.record_checksum("generator-mle.safetensors")
        self.state["phase"] = "d-pretrain"
        self.save()

    def pretrain_discriminator(self) -> None:
        """``d_pretrain_steps`` rounds of D pretraining (none when the baseline needs no D;
        a no-op unless the phase is ``d-pretrain``); then moves on to ``adversarial``."""
        if self.state["phase"] != "d-pretrain":
            return
        tc = self.tc
        if get_baseline(tc.baseline).needs_d(tc):
            self.st.ensure_adversarial(need_d=True)
            total = tc.d_pretrain_steps
            self._run_phase(_Phase(
                "d-pretrain", "d_round", total,
                lambda: d_round(self.st.G, self.st.d_trainer, self.train_data, tc.d_pretrain_epochs,
                                tc.d_samples),
                record=lambda r: r == total or r % max(1, total // 5) == 0, evaluate=False,
                checkpoint_every=tc.checkpoint_every, desc="D pretrain",
                postfix=lambda m: {"d_acc": f"{m['d_acc']:.3f}"}))
        self.state["phase"] = "adversarial"
        self.save()

    def train_adversarial(self) -> None:
        """``adv_epochs`` epochs of the run's baseline (a no-op unless the phase is
        ``adversarial``); then the phase is ``done``."""
        if self.state["phase"] != "adversarial":
            return
        tc = self.tc
        baseline = get_baseline(tc.baseline)
        self.st.ensure_adversarial(need_d=baseline.needs_d(tc))
        reward_fn = baseline.reward(self.st, self.train_data, self.run.vocab, self.allow_import)
        total, every = tc.adv_epochs, tc.adv_eval_every
        self._run_phase(_Phase(
            "adversarial", "adv_epoch", total, lambda: baseline.epoch(self.st, self.train_data, reward_fn),
            record=lambda e: e % every == 0 or e == total, evaluate=True,
            checkpoint_every=tc.checkpoint_every, desc=f"adversarial ({tc.baseline})",
            postfix=lambda m: {k: f"{v:.3f}" for k, v in m.items()}))
        self.selector.summary(self.run.metrics.read())
        self.state["phase"] = "done"
        self.save()

    def train_all(self) -> None:
        """Every phase from where the run stands to ``adv_epochs`` adversarial epochs."""
        self.pretrain_mle()
        self.pretrain_discriminator()
        if self.state["phase"] == "done" and self.state["adv_epoch"] < self.tc.adv_epochs:
            self.state["phase"] = "adversarial"  # more epochs asked for: continue
        self.train_adversarial()
