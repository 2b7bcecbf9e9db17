"""Training: MLE pretraining, discriminator pretraining and the adversarial loop.

Phases run in order and each completed epoch (MLE epoch, discriminator round,
adversarial epoch) ends with a checkpoint, so a run killed at any moment resumes from the
last completed epoch and — on the CPU with a fixed seed — ends with exactly the weights
and metrics of an uninterrupted run (weights, both generator optimizers, D and its
optimizer, the rollout policy, RNG state and counters are all restored; evaluation draws
from its own seeded generator so it never perturbs training randomness).

Adversarial epoch (SeqGAN, Algorithm 1), ``baseline="seqgan"``::

    repeat g_steps:  Y ~ G (B, T);  Q = rollout rewards (B, T);  REINFORCE step
    G_β ← ρ·G_β + (1-ρ)·G
    repeat d_steps:  fresh negatives ~ G;  k_epochs of D on positives + negatives

REINFORCE: ``loss = -(1/B) Σ_b Σ_t log G(y_t | Y[:t-1]) · Q_t``, Adam (lr 0.01), clip 5.
Baselines of SeqGAN's Table 1 replace the adversarial epoch: ``mle`` (one more MLE epoch),
``ss`` (scheduled sampling, Bengio et al. 2015: each input token is the model's own sample
with probability p rising linearly from 0 to ``ss_max_prob``, drawn per token and step)
and ``pg-bleu`` (policy gradient with BLEU against the training data as the reward).
"""
from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Any, Callable

import torch
import torch.nn.functional as F
from tqdm import tqdm

from seqgan.checkpoint import (PHASES, Run, atomic_save_tensors, load_optimizer, load_tensors,
                               optimizer_tensors, restore_rng, rng_tensors)
from seqgan.d_training import DiscriminatorTrainer
from seqgan.discriminator import Discriminator
from seqgan.errors import TrainingError, UserError, one_line
from seqgan.generator import Generator, sample_logits
from seqgan.rewards import RewardFn, check_rewards, subtract_baseline
from seqgan.rollout import RolloutPolicy

BASELINES = ("seqgan", "mle", "ss", "pg-bleu")
PHASE_WORDS = {"mle": "MLE pretraining", "d-pretrain": "discriminator pretraining",
               "adversarial": "adversarial training", "done": "adversarial training"}


def resolve_device(device: str | None) -> torch.device:
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise UserError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from None
    if dev.type not in ("cpu", "cuda"):
        raise UserError(f"unsupported device {device!r}; use cpu, cuda or cuda:N")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but no CUDA GPU is available; use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise UserError(f"--device {device}: there are only {torch.cuda.device_count()} CUDA GPU(s)")
    if dev.type == "cuda":  # TF32 matmuls and convolutions: ~3x faster fp32 products on GPUs
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return dev


def content_lengths(tokens: torch.Tensor, eos: int | None) -> torch.Tensor:
    """Tokens before the first EOS per row (T when there is none), (M,)."""
    M, T = tokens.shape
    if eos is None:
        return torch.full((M,), T, dtype=torch.long, device=tokens.device)
    is_eos = tokens == eos
    first = torch.where(is_eos.any(1), is_eos.float().argmax(1), torch.full_like(tokens[:, 0], T))
    return first.long()


class Trainer:
    def __init__(self, run: Run, device: str | None = None,
                 log: Callable[[str], Any] = print, progress: bool | None = None,
                 allow_import: bool = False):
        self.run, self.cfg = run, run.config
        self.dev = resolve_device(device)
        self.log, self.progress = log, progress
        self.allow_import = allow_import
        torch.manual_seed(self.cfg.train.seed)
        data = run.data()
        self.train_data = data["train"].to(self.dev)
        self.test_data = data.get("test")
        oracle = run.oracle()
        self.oracle = oracle.to(self.dev) if oracle is not None else None
        self.G = Generator(self.cfg.generator).to(self.dev)
        self.opt_mle = torch.optim.Adam(self.G.parameters(), lr=self.cfg.train.mle_lr)
        self.opt_adv: torch.optim.Adam | None = None
        self.D: Discriminator | None = None
        self.d_trainer: DiscriminatorTrainer | None = None
        self.rollout: RolloutPolicy | None = None
        self.state: dict[str, Any] = {"phase": "mle", "mle_epoch": 0, "d_round": 0,
                                      "adv_epoch": 0, "seconds": 0.0}
        self._bleu_ref = None
        run.recover()  # a kill may have cut a checkpoint swap or a write short
        ck = run.load_checkpoint(warn=log)
        if ck is not None:
            self._restore(*ck)
        else:  # killed before the first checkpoint: start afresh, metrics included
            if run.read_metrics() or (run.path / "generator-mle.safetensors").exists():
                log(f"warning: {run.path} has a training history but no checkpoint (checkpoint/ and "
                    f"checkpoint.prev/ are gone): training starts again from scratch and its "
                    f"metrics log is cleared")
            run.truncate_metrics(0)

    # -- building blocks ----------------------------------------------------------------
    @property
    def tc(self):
        return self.cfg.train

    def _ensure_adversarial_parts(self, need_d: bool) -> None:
        if need_d and self.D is None:
            dc = self.cfg.discriminator
            self.D = Discriminator(dc, self.cfg.generator.vocab_size, self.cfg.generator.seq_len).to(self.dev)
            self.d_trainer = DiscriminatorTrainer(self.D, dc.lr, dc.batch_size, dc.cuda_graph,
                                                  dc.compile, log=self.log)
        if self.opt_adv is None:
            self.opt_adv = torch.optim.Adam(self.G.parameters(), lr=self.tc.adv_lr)
        if self.rollout is None:
            self.rollout = RolloutPolicy(self.G)

    def _needs_d(self) -> bool:
        return self.tc.baseline == "seqgan" and self.tc.lambda_ > 0

    # -- checkpoint ---------------------------------------------------------------------
    def _restore(self, state: dict, paths: dict) -> None:
        self.state.update({k: state[k] for k in self.state if k in state})
        if self.state["phase"] not in PHASES:
            raise UserError(f"{self.run.path}/checkpoint/state.json: unknown phase {self.state['phase']!r}")
        try:
            self.G.load_state_dict(load_tensors(paths["generator"]))
        except RuntimeError as e:
            raise UserError(f"{paths['generator']}: does not fit this run's generator "
                            f"({one_line(e)})") from None
        load_optimizer(self.opt_mle, paths["optim-g-mle"])
        if "discriminator" in paths:
            self._ensure_adversarial_parts(need_d=True)
            try:
                self.D.load_state_dict(load_tensors(paths["discriminator"]))
            except RuntimeError as e:
                raise UserError(f"{paths['discriminator']}: does not fit ({one_line(e)})") from None
            load_optimizer(self.d_trainer.opt, paths["optim-d"])
        if "rollout" in paths:
            self._ensure_adversarial_parts(need_d=False)
            try:
                self.rollout.model.load_state_dict(load_tensors(paths["rollout"]))
            except RuntimeError as e:
                raise UserError(f"{paths['rollout']}: does not fit ({one_line(e)})") from None
            load_optimizer(self.opt_adv, paths["optim-g-adv"])
        restore_rng(load_tensors(paths["rng"]))
        n = int(state.get("metrics_lines", 0))
        lost = self.run.truncate_metrics(n)
        if lost:  # only damage can lose records that a checkpoint has seen
            self.log(f"warning: {self.run.path / 'metrics.jsonl'}: {lost} of the {n} records before "
                     f"this checkpoint are damaged or missing and were dropped")
            self.save()  # the same state, now counting the lines the repaired log really has

    def _check_finite(self) -> None:
        for name, model in (("generator", self.G), ("discriminator", self.D)):
            if model is not None and not torch.stack([torch.isfinite(p).all() for p in model.parameters()]).all():
                raise TrainingError(f"the {name}'s weights became NaN or infinite; training stopped "
                                    f"and the last good checkpoint is kept (try a lower learning rate)")

    def save(self) -> None:
        self._check_finite()
        files: dict[str, tuple[dict, dict | None]] = {
            "generator": (self.G.state_dict(), None),
            "optim-g-mle": optimizer_tensors(self.opt_mle),
            "rng": (rng_tensors(), None),
        }
        if self.D is not None:
            files["discriminator"] = (self.D.state_dict(), None)
            files["optim-d"] = optimizer_tensors(self.d_trainer.opt)
        if self.rollout is not None:
            files["rollout"] = (self.rollout.model.state_dict(), None)
            files["optim-g-adv"] = optimizer_tensors(self.opt_adv)
        self.run.save_checkpoint(dict(self.state), files)

    # -- evaluation ---------------------------------------------------------------------
    def _eval_generator(self) -> torch.Generator:
        g = torch.Generator(device=self.dev)
        step = self.state["mle_epoch"] * 100_003 + self.state["adv_epoch"]
        return g.manual_seed(self.tc.seed * 1_000_003 + step)

    def evaluate(self) -> dict[str, float]:
        out: dict[str, float] = {}
        self.G.eval()
        if self.oracle is not None:
            samples = self.G.sample(self.tc.eval_samples, generator=self._eval_generator())
            out["nll_oracle"] = self.oracle.nll(samples)
        if self.test_data is not None and len(self.test_data):
            out["nll_test"] = self.G.nll(self.test_data)
        self.G.train()
        return out

    def _record(self, phase: str, epoch: int, metrics: dict[str, float]) -> None:
        rec = {"phase": phase, "epoch": epoch, "seconds": round(self.state["seconds"], 3),
               # JSON has no NaN: a metric that could not be computed is null
               "metrics": {k: float(v) if math.isfinite(float(v)) else None for k, v in metrics.items()}}
        self.run.log_metrics(rec)
        shown = "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()) or "(nothing to measure: no test set)"
        if self.progress is False:
            self.log(shown)
        else:
            tqdm.write(f"[{phase} {epoch}] {shown}")

    # -- MLE ----------------------------------------------------------------------------
    def _ss_logits(self, batch: torch.Tensor, p: float) -> torch.Tensor:
        """Scheduled sampling forward: each input is the model's sample with prob. p."""
        B, T = batch.shape
        h, c = self.G.init_state(B)
        x = torch.full((B,), self.cfg.generator.start_token, dtype=torch.long, device=self.dev)
        logits_all = []
        for t in range(T):
            h, c, logits = self.G.step(x, h, c)
            logits_all.append(logits)
            with torch.no_grad():
                own = sample_logits(logits)
                use_own = torch.rand(B, device=self.dev) < p
            x = torch.where(use_own, own, batch[:, t])
        return torch.stack(logits_all, 1)  # (B, T, V)

    def mle_epoch(self, opt: torch.optim.Optimizer, ss_prob: float = 0.0) -> float:
        self.G.train()
        data, bs = self.train_data, self.tc.batch_size
        perm = torch.randperm(len(data), device=self.dev)
        loss_sum = torch.zeros((), device=self.dev)
        nb = 0
        for i in range(0, len(data), bs):
            batch = data[perm[i:i + bs]]  # (B, T)
            logits = self._ss_logits(batch, ss_prob) if ss_prob > 0 else self.G(batch)  # (B, T, V)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.G.parameters(), self.tc.grad_clip)
            opt.step()
            loss_sum += loss.detach()
            nb += 1
        mean = float(loss_sum) / max(nb, 1)
        if not math.isfinite(mean):
            raise TrainingError("the MLE loss became NaN or infinite; training stopped at the last "
                                "good checkpoint (a new run with a lower --lr may help)")
        return mean

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
        self.run.save_config()
        if total > done:
            self.state["phase"] = "mle"

    def pretrain_mle(self) -> None:
        if self.state["phase"] != "mle":
            return
        total = self.tc.mle_epochs
        with self._bar(total, self.state["mle_epoch"], "MLE") as bar:
            if self.state["mle_epoch"] == 0 and not self.run.read_metrics():
                self._record("mle", 0, self.evaluate())
            while self.state["mle_epoch"] < total:
                t0 = time.perf_counter()
                loss = self.mle_epoch(self.opt_mle)
                self.state["mle_epoch"] += 1
                self.state["seconds"] += time.perf_counter() - t0
                e = self.state["mle_epoch"]
                if e % self.tc.eval_every == 0 or e == total:
                    self._record("mle", e, {"loss": loss, **self.evaluate()})
                bar.set_postfix(loss=f"{loss:.3f}")
                bar.update(1)
                self.save()
        atomic_save_tensors(self.run.path / "generator-mle.safetensors", self.G.state_dict())
        self.run.record_checksum("generator-mle.safetensors")
        self.state["phase"] = "d-pretrain"
        self.save()

    # -- discriminator --------------------------------------------------------------------
    def _d_round(self, epochs: int) -> dict[str, float]:
        """Fresh negatives from G, as many as positives; ``d_samples`` caps both."""
        pos = self.train_data
        if self.tc.d_samples and self.tc.d_samples < len(pos):
            pos = pos[torch.randperm(len(pos), device=self.dev)[:self.tc.d_samples]]
        self.G.eval()
        neg = self.G.sample(len(pos))
        self.G.train()
        return self.d_trainer.train_epochs(pos, neg, epochs)

    def pretrain_discriminator(self) -> None:
        if self.state["phase"] != "d-pretrain":
            return
        if self._needs_d():
            self._ensure_adversarial_parts(need_d=True)
            total = self.tc.d_pretrain_steps
            with self._bar(total, self.state["d_round"], "D pretrain") as bar:
                while self.state["d_round"] < total:
                    t0 = time.perf_counter()
                    m = self._d_round(self.tc.d_pretrain_epochs)
                    self._check_finite()  # every round: --checkpoint-every K must not train on NaN
                    self.state["d_round"] += 1
                    self.state["seconds"] += time.perf_counter() - t0
                    r = self.state["d_round"]
                    if r == total or r % max(1, total // 5) == 0:
                        self._record("d-pretrain", r, m)
                    bar.set_postfix(d_acc=f"{m['d_acc']:.3f}")
                    bar.update(1)
                    if r % self.tc.checkpoint_every == 0:
                        self.save()
        self.state["phase"] = "adversarial"
        self.save()

    # -- adversarial ----------------------------------------------------------------------
    def reward_fn(self) -> RewardFn:
        from seqgan.objectives import get_objective

        tc = self.tc
        objective = None
        if tc.lambda_ < 1:
            if not tc.objective:
                raise UserError("λ < 1 needs an objective: pass --objective NAME")
            objective = get_objective(tc.objective, allow_import=self.allow_import)
        scorer = None
        if tc.baseline == "pg-bleu":
            scorer = self._bleu_scorer()
        elif tc.lambda_ > 0:
            scorer = lambda toks: self.D.prob_real(toks, chunk=tc.rollout_chunk)  # noqa: E731
        return RewardFn(scorer, tc.lambda_ if tc.baseline == "seqgan" else 1.0, objective,
                        tc.objective or "", self.run.vocab, tc.duplicate_penalty)

    def _bleu_scorer(self):
        from seqgan.bleu import BleuReference

        vocab = self.run.vocab
        if self._bleu_ref is None:
            refs = [vocab.strip(row) for row in self.train_data.tolist()]
            self._bleu_ref = BleuReference(refs, max_n=self.tc.pg_bleu_n)
        eos = vocab.eos

        def score(tokens: torch.Tensor) -> torch.Tensor:
            return self._bleu_ref.score_tensor(tokens, content_lengths(tokens, eos),
                                               self.tc.pg_bleu_n).float().to(tokens.device)

        return score

    def pg_step(self, reward_fn: RewardFn) -> torch.Tensor:
        """One REINFORCE step; returns the mean reward (device scalar)."""
        tc, B = self.tc, self.tc.batch_size
        self.G.eval()
        seqs = self.G.sample(B)  # (B, T)
        self.G.train()
        q = self.rollout.rewards(seqs, reward_fn, tc.rollout_num, tc.rollout_chunk)  # (B, T)
        check_rewards(q)
        mean_reward = q.mean()
        if tc.reward_baseline:
            q = subtract_baseline(q)
        loss = -(self.G.log_probs(seqs) * q).sum() / B
        self.opt_adv.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.G.parameters(), tc.grad_clip)
        self.opt_adv.step()
        return mean_reward

    def adversarial_epoch(self, reward_fn: RewardFn | None) -> dict[str, float]:
        tc = self.tc
        e = self.state["adv_epoch"]
        if tc.baseline == "mle":
            return {"loss": self.mle_epoch(self.opt_mle)}
        if tc.baseline == "ss":
            p = tc.ss_max_prob * (e + 1) / max(tc.adv_epochs, 1)
            return {"loss": self.mle_epoch(self.opt_mle, ss_prob=p), "ss_prob": p}
        rewards = [self.pg_step(reward_fn) for _ in range(tc.g_steps)]
        self.rollout.update(self.G, tc.update_rate)
        out = {"reward": float(torch.stack(rewards).mean())}
        if self.D is not None and tc.baseline == "seqgan":
            for _ in range(tc.d_steps):
                out.update(self._d_round(tc.k_epochs))
        return out

    def train_adversarial(self) -> None:
        if self.state["phase"] != "adversarial":
            return
        tc = self.tc
        if tc.baseline not in BASELINES:
            raise UserError(f"unknown baseline {tc.baseline!r}; choose one of: {', '.join(BASELINES)}")
        self._ensure_adversarial_parts(need_d=self._needs_d())
        reward_fn = self.reward_fn() if tc.baseline in ("seqgan", "pg-bleu") else None
        total = tc.adv_epochs
        with self._bar(total, self.state["adv_epoch"], f"adversarial ({tc.baseline})") as bar:
            while self.state["adv_epoch"] < total:
                t0 = time.perf_counter()
                m = self.adversarial_epoch(reward_fn)
                self._check_finite()  # every epoch: --checkpoint-every K must not train on NaN
                self.state["adv_epoch"] += 1
                self.state["seconds"] += time.perf_counter() - t0
                e = self.state["adv_epoch"]
                if e % tc.adv_eval_every == 0 or e == total:
                    self._record("adversarial", e, {**m, **self.evaluate()})
                bar.set_postfix({k: f"{v:.3f}" for k, v in m.items()})
                bar.update(1)
                if e % tc.checkpoint_every == 0:
                    self.save()
        self.state["phase"] = "done"
        self.save()

    def train_all(self) -> None:
        self.pretrain_mle()
        self.pretrain_discriminator()
        if self.state["phase"] == "done" and self.state["adv_epoch"] < self.tc.adv_epochs:
            self.state["phase"] = "adversarial"  # more epochs asked for: continue
        self.train_adversarial()

    def _bar(self, total: int, initial: int, desc: str):
        disable = None if self.progress is None else not self.progress
        return tqdm(total=total, initial=initial, desc=desc, disable=disable, leave=False,
                    dynamic_ncols=True)
