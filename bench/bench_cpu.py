"""CPU speed of SeqGAN's rewards and discriminator, side by side in one run on one thread.

Parts (``--part``, comma-separated; the default runs all four):

- ``rewards``: rewards for one batch (B 64, T 20, V 5000, N 16 rollouts, SeqGAN's D): the
  loop over rollouts and prefixes that recomputes every prefix and scores B rows at a
  time with a Conv1d D (``reference_rewards``, how existing tools do it); the lockstep
  layout (every completion stepped together, then scored 32,768 rows at a time with the
  Conv1d D: the batched path before blocking); the blocked path with plain scoring; the
  blocked path with prefix-shared scoring by window products; the same with token tables
  and the packed head (the CPU default: each window's response looked up per token and
  tap, the highway through oneDNN on weights packed once a call). Each: seconds, speed-up
  over the loop, and the time of the floor (its multiply-adds at the measured SGEMM
  rate, the generator's 70 GFLOP included, softmax and sampling not) as a fraction.
- ``blocks``: the CPU default by rows per block (``CPU_BLOCK_ROWS``).
- ``d``: every discriminator implementation: one training step at batch 64 as
  ``DiscriminatorTrainer`` runs it (forward, backward, Adam), the same with PyTorch's
  fused Adam, forward + backward alone, and scoring 4,096 sequences; GFLOP/s count the
  plain computation's multiply-adds (a step = 3 × forward, 13.5 M a sequence for SeqGAN's
  D) and are given as % of the SGEMM rate measured in the same run.
- ``populations``: one training step (MLE + D minibatch + policy gradient with given
  rewards) of K = 1, 4, 9 members as one stacked model against K separate members, at the
  ``quick`` and ``seqgan`` sizes (``bench/bench_population.py``'s steps; median of
  ``--repeats``, default 3, wall clock); the ratio of a stacked step to one member's.

Times are the best of ``--repeats`` runs (per part by default: 2 for the fast reward paths,
1 for the loop's ~15 s), wall clock and the process's CPU time, both recorded; rates and
ratios use ``--clock`` (wall; on a shared machine ``cpu`` is the steadier estimate, the
SGEMM rate then in CPU time too). ``--quick`` runs small sizes (B 16, N 4, scoring 256)
as a smoke check. About 5 minutes in full on a quiet core.

Usage: python bench/bench_cpu.py [--quick] [--part rewards,blocks,d,populations] [--repeats N]
       [--clock wall|cpu] [--out bench/results/cpu.json]
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from seqgan.models.discriminator import Discriminator, DiscriminatorConfig  # noqa: E402
from seqgan.models.generator import Generator, GeneratorConfig  # noqa: E402
from seqgan.training.d_training import DiscriminatorTrainer  # noqa: E402
from seqgan.training.rewards import DiscriminatorScorer, RewardFn  # noqa: E402
from seqgan.training.rollout import CPU_BLOCK_ROWS, RolloutPolicy, reference_rewards  # noqa: E402


CLOCK = "wall"  # which of the two times the printed rates and ratios use (--clock)


class WindowProductScorer(DiscriminatorScorer):
    """Prefix-shared scoring that multiplies every new window (no token tables)."""

    def prefix_windows(self, seqs, completions=0):
        return self.D.prefix_windows(seqs, completions, tables=False)


def best_of(fn, repeats: int, seed: int = 1):
    """(best wall and CPU seconds of ``repeats`` calls, each after ``torch.manual_seed(seed)``;
    the first call's result)."""
    wall, cpu, first = [], [], None
    for i in range(repeats):
        torch.manual_seed(seed)
        w, c = time.perf_counter(), time.process_time()
        res = fn()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
        first = res if i == 0 else first
    times = {"wall": min(wall), "cpu": min(cpu)}
    return {**times, "s": times[CLOCK]}, first


def best(fn, repeats: int) -> dict[str, float]:
    """Best wall and CPU seconds of ``repeats`` calls."""
    return best_of(fn, repeats)[0]


def cpu_name() -> str:
    """The CPU's model name (Linux), else what ``platform`` knows."""
    info = Path("/proc/cpuinfo")
    lines = info.read_text().splitlines() if info.exists() else []
    return next((x.split(":", 1)[1].strip() for x in lines if x.startswith("model name")),
                platform.machine())


def sgemm_rate() -> float:
    """Single-thread SGEMM GFLOP/s: the best of n = 1024 and 2048, three calls each."""
    rates = []
    for n in (1024, 2048):
        a, b = torch.randn(n, n), torch.randn(n, n)
        a @ b
        t = best(lambda: a @ b, 3)["s"]
        rates.append(2 * n**3 / t / 1e9)
    return max(rates)


def d_macs(d: Discriminator, T: int, windows_from: int = 0) -> dict[str, float]:
    """Forward multiply-adds of one sequence: the banks (windows at p >= windows_from
    only, as prefix sharing computes them) and the highway and output layers."""
    E, F = d.cfg.emb_dim, d.n_features
    banks = sum(n * k * E * (T - k + 1 - max(0, windows_from - k + 1))
                for k, n in zip(d.filter_sizes, d.num_filters))
    return {"banks": banks, "head": 2 * F * F + 2 * F}


def impl_bank_macs(d: Discriminator, impl: str, T: int) -> float:
    """Multiply-adds an implementation's banks perform per sequence on the CPU (padding
    included)."""
    if impl in ("conv", "grouped"):  # on the CPU grouped is one product per width
        return d_macs(d, T)["banks"]
    return sum(d.cfg.emb_dim * kmax * (T - kmin + 1) * (s1 - s0) for s0, s1, kmin, kmax in d.whole)


def rollout_setup(args):
    """(B, N, T, V, G, its rollout policy, a batch Y (B, T) of G) for the reward parts."""
    B, N = (16, 4) if args.quick else (64, 16)
    T, V = 20, 5000
    torch.manual_seed(0)
    G = Generator(GeneratorConfig(vocab_size=V, seq_len=T))
    return B, N, T, V, G, RolloutPolicy(G), G.sample(B)


def part_rewards(args, out: dict, rate: float) -> None:
    B, N, T, V, G, policy, seqs = rollout_setup(args)
    D = Discriminator(DiscriminatorConfig(), V, T)  # auto: grouped on the CPU
    D_conv = Discriminator(replace(DiscriminatorConfig(), impl="conv"), V, T)
    D_conv.load_state_dict(D.state_dict())
    fn = RewardFn(DiscriminatorScorer(D), 1.0)
    fn_conv = RewardFn(DiscriminatorScorer(D_conv), 1.0)
    fn_products = RewardFn(WindowProductScorer(D), 1.0)
    M = (T - 1) * N * B
    H = G.cfg.hidden_dim
    g_macs = N * B * T * (T - 1) // 2 * (G.cfg.emb_dim * 4 * H + H * 4 * H + H * V)
    plain = sum(d_macs(D, T).values()) * M
    shared = sum(sum(d_macs(D, T, t).values()) * N * B for t in range(1, T))
    floor = {"plain": 2 * (plain + g_macs) / rate / 1e9, "shared": 2 * (shared + g_macs) / rate / 1e9}
    print(f"rewards for one batch: B {B}, T {T}, V {V}, N {N}: {M:,} completions; floor at "
          f"{rate:.0f} GFLOP/s: plain {floor['plain']:.2f} s ({2 * (plain + g_macs) / 1e9:.0f} GFLOP), "
          f"prefix-shared {floor['shared']:.2f} s ({2 * (shared + g_macs) / 1e9:.0f} GFLOP)")
    reps = args.repeats or (2 if not args.quick else 1)
    runs = [
        ("loop (reference_rewards, Conv1d D, B rows a call)", "plain",
         lambda: reference_rewards(policy.model, seqs, lambda x, _g: D_conv.prob_real(x), N),
         args.repeats or 1),
        ("lockstep, then scored 32,768 rows a call (Conv1d D)", "plain",
         lambda: policy.rewards(seqs, fn_conv, N, block=0, prefix_shared=False), reps),
        (f"blocked ({CPU_BLOCK_ROWS} rows), plain scoring", "plain",
         lambda: policy.rewards(seqs, fn, N, prefix_shared=False), reps),
        (f"blocked ({CPU_BLOCK_ROWS} rows), prefix-shared, window products", "shared",
         lambda: policy.rewards(seqs, fn_products, N), reps),
        (f"blocked ({CPU_BLOCK_ROWS} rows), prefix-shared, token tables, packed head (CPU default)", "shared",
         lambda: policy.rewards(seqs, fn, N), reps),
    ]
    rows, qs = [], []
    for label, kind, f, r in runs:
        t, q = best_of(f, r)
        qs.append(q)
        rows.append({"path": label, **t, "floor_s": floor[kind]})
    loop = rows[0]
    for row in rows:
        row["speedup_vs_loop"] = loop["s"] / row["s"]
        row["times_floor"] = row["s"] / row["floor_s"]
        print(f"  {row['path']:58s} {row['s']:7.2f} s (wall {row['wall']:6.2f}, CPU {row['cpu']:6.2f})  "
              f"{row['speedup_vs_loop']:5.2f}x the loop  {row['times_floor']:4.2f}x its floor")
    same = (qs[2] - qs[1]).abs().max().item()
    shared_diff = (qs[3] - qs[2]).abs().max().item()
    tables_diff = (qs[4] - qs[2]).abs().max().item()
    print(f"  same seed: blocked vs lockstep max |dQ| {same:.1e} (Conv1d vs grouped D); "
          f"prefix-shared vs plain max |dQ| {shared_diff:.1e}, with token tables {tables_diff:.1e}")
    out["rewards"] = {"B": B, "T": T, "V": V, "N": N, "sgemm_gflops": rate, "rows": rows,
                      "max_abs_dq_blocked_vs_lockstep": same, "max_abs_dq_shared_vs_plain": shared_diff,
                      "max_abs_dq_tables_vs_plain": tables_diff}


def part_blocks(args, out: dict, rate: float) -> None:
    B, N, T, V, G, policy, seqs = rollout_setup(args)
    fn = RewardFn(DiscriminatorScorer(Discriminator(DiscriminatorConfig(), V, T)), 1.0)
    res = {}
    for rows in (64, 128, 256, 512, 1024):
        if rows > N * B:
            continue
        res[rows] = best(lambda: policy.rewards(seqs, fn, N, block=rows), args.repeats or 1)
        print(f"  blocked + prefix-shared, {rows:4d} rows a block: {res[rows]['s']:6.2f} s "
              f"(wall {res[rows]['wall']:.2f}, CPU {res[rows]['cpu']:.2f})")
    out["blocks"] = {str(k): v for k, v in res.items()}


def part_d(args, out: dict, rate: float) -> None:
    T, V, bs = 20, 5000, 64
    n_score = 256 if args.quick else 4096
    steps = 2 if args.quick else 8
    torch.manual_seed(0)
    x = torch.randint(0, V, (bs, T))
    y = torch.randint(0, 2, (bs,))
    w = torch.ones(bs)
    seqs = torch.randint(0, V, (n_score, T))
    ref = Discriminator(DiscriminatorConfig(), V, T)
    fwd = sum(d_macs(ref, T).values())
    step_flop = 2 * 3 * fwd * bs
    print(f"discriminator: plain forward {fwd / 1e6:.1f} M multiply-adds a sequence (banks "
          f"{d_macs(ref, T)['banks'] / 1e6:.1f} M); a training step at batch {bs} = 3 x forward = "
          f"{step_flop / 1e9:.2f} GFLOP; SGEMM {rate:.0f} GFLOP/s")
    res = {}
    for impl in ("conv", "grouped", "fused"):
        d = Discriminator(replace(DiscriminatorConfig(), impl=impl), V, T)
        d.load_state_dict(ref.state_dict())
        tr = DiscriminatorTrainer(d, 1e-4, bs)
        fused = torch.optim.Adam(d.parameters(), lr=1e-4, fused=True)

        def step(opt=None):
            (opt or tr.opt).zero_grad(set_to_none=True)
            if opt is None:
                tr._step(x, y, w)
            else:
                loss, _ = tr._forward(x, y, w, d.dropout_mask(bs))
                loss.backward()
                opt.step()

        def fwd_bwd():
            d.zero_grad(set_to_none=True)
            tr._forward(x, y, w, d.dropout_mask(bs))[0].backward()

        d.train()
        for _ in range(2):
            step()
            step(fused)
        r = {"step": best(step, steps), "step_fused_adam": best(lambda: step(fused), steps),
             "forward_backward": best(fwd_bwd, steps),
             "score": best(lambda: d.prob_real(seqs), 1),
             "bank_macs_per_seq": impl_bank_macs(d, impl, T)}
        for k in ("step", "step_fused_adam", "forward_backward"):
            r[k]["gflops"] = step_flop / r[k]["s"] / 1e9
            r[k]["pct_sgemm"] = 100 * r[k]["gflops"] / rate
        r["score"]["gflops"] = 2 * fwd * n_score / r["score"]["s"] / 1e9
        r["score"]["pct_sgemm"] = 100 * r["score"]["gflops"] / rate
        res[impl] = r
        print(f"  {impl:8s} (banks {r['bank_macs_per_seq'] / 1e6:4.1f} M MACs/seq): "
              + "; ".join(f"{k.replace('_', ' ')} {r[k]['s'] * 1e3:7.1f} ms "
                          f"({r[k]['gflops']:5.1f} GFLOP/s, {r[k]['pct_sgemm']:3.0f} %)"
                          for k in ("step", "step_fused_adam", "forward_backward", "score")))
    out["d"] = {"batch": bs, "score_rows": n_score, "step_gflop": step_flop / 1e9, "sgemm_gflops": rate,
                "impls": res}


def part_populations(args, out: dict, rate: float) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_population import SIZES, separate, stacked, timed
    dev = torch.device("cpu")
    reps = args.repeats or 3
    rows = []
    print(f"populations, one step (MLE + D + PG) per member, median of {reps}, wall clock:")
    for size in ("quick",) if args.quick else ("quick", "seqgan"):
        gc, dc, B = SIZES[size]
        one = None
        for K in (1, 4, 9):
            torch.manual_seed(0)
            ms = {kind: 1e3 * sum(timed(fn, dev, reps) for fn in steps.values())
                  for kind, steps in (("separate", separate(gc, dc, B, K, dev)),
                                      ("stacked", stacked(gc, dc, B, K, dev)))}
            one = one or ms["separate"]
            row = {"size": size, "K": K, "separate_ms": ms["separate"], "stacked_ms": ms["stacked"],
                   "stacked_vs_one_member": ms["stacked"] / one,
                   "separate_vs_stacked": ms["separate"] / ms["stacked"]}
            rows.append(row)
            print(f"  {size:6s} K={K}: separate {ms['separate']:8.1f} ms, stacked {ms['stacked']:8.1f} ms "
                  f"= {row['stacked_vs_one_member']:5.2f}x one member, {row['separate_vs_stacked']:4.2f}x "
                  f"faster than separate", flush=True)
    out["populations"] = rows


PARTS = {"rewards": part_rewards, "blocks": part_blocks, "d": part_d, "populations": part_populations}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", default="rewards,blocks,d,populations", help=f"comma-separated: {', '.join(PARTS)}")
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke check")
    ap.add_argument("--repeats", type=int, default=0, help="best of this many (default: per part)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="rates and ratios from wall-clock or process CPU time (cpu: steadier on a "
                         "shared machine; both are recorded)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "cpu.json"))
    args = ap.parse_args()
    parts = [p.strip() for p in args.part.split(",") if p.strip()]
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        ap.error(f"unknown part {unknown[0]!r}; choose from {', '.join(PARTS)}")
    torch.set_num_threads(args.threads)
    global CLOCK
    CLOCK = args.clock
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    out: dict = {"device": cpu_name(), "threads": args.threads,
                 "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"), "commit": commit,
                 "quick": args.quick, "clock": args.clock}
    rate = sgemm_rate()
    print(f"{out['device']}, torch {torch.__version__}, {args.threads} thread(s), commit {commit}, "
          f"{args.clock} clock; SGEMM {rate:.0f} GFLOP/s")
    for p in parts:
        PARTS[p](args, out, rate)
    rate_end = sgemm_rate()
    out["sgemm_gflops"] = {"start": rate, "end": rate_end}
    print(f"SGEMM at the end: {rate_end:.0f} GFLOP/s (at the start {rate:.0f}: a large gap means "
          f"a busy machine)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
