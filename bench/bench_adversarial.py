"""Speed of SeqGAN's adversarial training, measured side by side on one device.

(a) Rewards for one batch (B 64, T 20, V 5000, N 16 rollouts): our batched rollout vs a
    straightforward loop over rollouts and prefixes that recomputes every prefix (how
    existing tools do it), both scored by the same discriminator; and the batched rollout
    with prefix-shared discriminator scores (the CPU's default; off by default on GPUs).
    On the CPU bench/bench_cpu.py is the fuller comparison.
(b) Discriminator training epoch (10k real + 10k generated, batch 64), by implementation:
    Conv1d per bank (eager), one matmul over windows ("fused", eager and in a whole-step
    CUDA graph), a few grouped matmuls ("grouped"), each with and without torch.compile
    of the step before capture; the one-time compile-and-capture cost is reported too.
(c) One full adversarial epoch of SeqGAN's schedule (1 generator step with 16 rollouts,
    then 5 rounds x 3 epochs of D on fresh negatives) with our default path, against the
    straightforward epoch (loop rewards + eager Conv1d D) — the latter's D part is one
    measured eager epoch times 15, stated as such.

Usage: python bench/bench_adversarial.py [--device cuda] [--repeats 3] [--part all|rewards]
       [--out bench/results/adversarial.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from seqgan.models.discriminator import DiscriminatorConfig
from seqgan.models.generator import GeneratorConfig  # noqa: E402
from seqgan.training.d_training import DiscriminatorTrainer  # noqa: E402
from seqgan.models.discriminator import Discriminator  # noqa: E402
from seqgan.models.generator import Generator  # noqa: E402
from seqgan.training.rewards import DiscriminatorScorer, RewardFn  # noqa: E402
from seqgan.training.rollout import RolloutPolicy, reference_rewards  # noqa: E402


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def timeit(fn, dev, repeats):
    times = []
    for _ in range(repeats):
        sync(dev)
        t0 = time.perf_counter()
        fn()
        sync(dev)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def time_adversarial_epoch(G, policy, real, dcfg, dev, args, B, N):
    """Median time of one adversarial epoch of SeqGAN's schedule, and its parts' means."""
    V, T = G.cfg.vocab_size, G.cfg.seq_len
    d = Discriminator(dcfg, V, T).to(dev)
    tr = DiscriminatorTrainer(d, 1e-4, 64, cuda_graph=dcfg.cuda_graph, compile=dcfg.compile)
    opt = torch.optim.Adam(G.parameters(), lr=0.01)
    parts = {"g_step": [], "sample_negatives": [], "d_training": []}

    def lap(name, t0):
        sync(dev)
        t = time.perf_counter()
        parts[name].append(t - t0)
        return t

    def adversarial_epoch():
        sync(dev)
        t = time.perf_counter()
        y = G.sample(B)
        q = policy.rewards(y, lambda toks, _g: d.prob_real(toks), N)
        loss = -(G.log_probs(y) * q).sum() / B
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(G.parameters(), 5.0)
        opt.step()
        policy.update(G, 0.8)
        t = lap("g_step", t)
        for _ in range(5):
            with torch.no_grad():
                negs = G.sample(args.n_real)
            t = lap("sample_negatives", t)
            tr.train_epochs(real, negs, 3)
            t = lap("d_training", t)

    adversarial_epoch()  # warm-up (compile, capture)
    for v in parts.values():
        v.clear()
    t_epoch = timeit(adversarial_epoch, dev, args.repeats)
    return t_epoch, {k: sum(v) / args.repeats for k, v in parts.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n-real", type=int, default=10_000)
    ap.add_argument("--skip-loop-epoch", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "adversarial.json"))
    ap.add_argument("--part", choices=("all", "rewards"), default="all",
                    help="rewards: (a) only (about half a minute on a GPU)")
    args = ap.parse_args()
    from seqgan.training.state import resolve_device

    dev = resolve_device(args.device)  # enables TF32 on CUDA, as training does
    torch.manual_seed(0)
    B, T, V, N = 64, 20, 5000, 16
    G = Generator(GeneratorConfig(vocab_size=V, seq_len=T)).to(dev)
    real = G.sample(args.n_real)  # stand-in positives of the right shape
    policy = RolloutPolicy(G)
    seqs = G.sample(B)
    results: dict = {"device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
                     "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
                     "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                              capture_output=True, text=True).stdout.strip()}

    # (a) rewards
    D = Discriminator(DiscriminatorConfig(), V, T).to(dev)
    score = lambda toks, _g: D.prob_real(toks)  # noqa: E731
    policy.rewards(seqs, score, N)  # warm-up
    t_batched = timeit(lambda: policy.rewards(seqs, score, N), dev, args.repeats)
    D_conv = Discriminator(replace(DiscriminatorConfig(), impl="conv"), V, T).to(dev)
    D_conv.load_state_dict(D.state_dict())
    score_conv = lambda toks, _g: D_conv.prob_real(toks)  # noqa: E731
    t_loop = timeit(lambda: reference_rewards(policy.model, seqs, score_conv, N), dev,
                    max(1, args.repeats - 1))
    fn = RewardFn(DiscriminatorScorer(D), 1.0)  # offers prefix-shared scores
    shared = lambda: policy.rewards(seqs, fn, N, prefix_shared=True)  # noqa: E731
    torch.manual_seed(1)
    q_shared = shared()  # warm-up
    torch.manual_seed(1)
    q_plain = policy.rewards(seqs, score, N)
    t_shared = timeit(shared, dev, args.repeats)
    results["rewards_one_batch_s"] = {"batched": t_batched, "loop": t_loop,
                                      "speedup": t_loop / t_batched, "prefix_shared": t_shared,
                                      "max_abs_dq_shared_vs_batched": float((q_shared - q_plain).abs().max())}
    print(f"(a) rewards, one batch: batched {t_batched * 1e3:.1f} ms, loop {t_loop * 1e3:.1f} ms, "
          f"{t_loop / t_batched:.1f}x; batched with prefix-shared scores {t_shared * 1e3:.1f} ms "
          f"(same seed: max |dQ| {results['rewards_one_batch_s']['max_abs_dq_shared_vs_batched']:.1e})")

    if args.part == "rewards":
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.out}")
        return

    # (b) discriminator epochs
    neg = G.sample(args.n_real)
    d_times = {}
    setup_times = {}
    variants = [("conv, eager", "conv", False, False, 64), ("fused, eager", "fused", False, False, 64)]
    if dev.type == "cuda":
        variants += [("fused, CUDA graph", "fused", True, False, 64),
                     ("grouped, CUDA graph", "grouped", True, False, 64),
                     ("fused, compiled, CUDA graph", "fused", True, True, 64),
                     ("grouped, compiled, CUDA graph", "grouped", True, True, 64),
                     ("grouped, compiled, CUDA graph, batch 1024", "grouped", True, True, 1024)]
    for label, impl, graph, comp, bs in variants:
        d = Discriminator(replace(DiscriminatorConfig(), impl=impl), V, T).to(dev)
        tr = DiscriminatorTrainer(d, 1e-4, bs, cuda_graph=graph, compile=comp)
        sync(dev)
        t0 = time.perf_counter()
        tr.train_epochs(real, neg, 1)  # warm-up (and compile, capture)
        sync(dev)
        setup_times[label] = time.perf_counter() - t0
        d_times[label] = timeit(lambda: tr.train_epochs(real, neg, 1), dev, args.repeats)
        steps = -(-2 * args.n_real // bs)
        print(f"(b) D epoch, {label}, batch {bs}: {d_times[label] * 1e3:.1f} ms "
              f"({d_times[label] / steps * 1e3:.3f} ms/step; first epoch {setup_times[label]:.1f} s)")
    results["d_epoch_s"] = d_times
    results["d_first_epoch_s"] = setup_times

    # (c) adversarial epoch
    straightforward = t_loop + 15 * d_times["conv, eager"]
    setups = [("default", DiscriminatorConfig())]
    if dev.type == "cuda":
        setups.append(("grouped, compiled", replace(DiscriminatorConfig(), impl="grouped", compile=True)))
    results["adversarial_epoch_s"] = {"straightforward_estimate": straightforward,
                                      "note": "straightforward = measured loop rewards + 15 x one "
                                              "measured eager Conv1d D epoch at batch 64"}
    results["adversarial_epoch_parts_s"] = {}
    for label, dcfg in setups:
        t_epoch, parts = time_adversarial_epoch(G, policy, real, dcfg, dev, args, B, N)
        results["adversarial_epoch_s"][label] = t_epoch
        results["adversarial_epoch_parts_s"][label] = parts
        print(f"(c) adversarial epoch, D {label}: {t_epoch:.3f} s; straightforward "
              f"{straightforward:.2f} s (loop rewards + 15 eager conv D epochs); "
              f"{straightforward / t_epoch:.1f}x; parts: "
              + ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in parts.items()))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
