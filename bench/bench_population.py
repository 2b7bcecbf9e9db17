"""Populations as one batched model: one training step of K members stacked
(seqgan.models.stacked) against K separate members run one after the other, side by side
in one run.

A "step" is one of each, per member: an MLE step (batch B, teacher forcing, clip, Adam), a
discriminator step (one minibatch of B labelled rows, dropout, Adam) and a policy-gradient step with given rewards (sample B sequences, REINFORCE with
random action values, clip, Adam; the Monte Carlo rollout is left out). Sizes: ``seqgan``
(V 5000, T 20, E 32, H 32, batch 64, SeqGAN's D: 12 banks, 1,720 filters, E 64) and
``quick`` (the ``quick`` preset: V 50, T 8, E = H = 16, batch 32, D of 4 × 8 filters).
For each size, K = 1, 4, 9 members (a 3×3 population), and on the CPU each
``--threads`` setting. The ratio column is the step's time over one separate member's
(K = 1) at the same size and threads; the goal for K = 9 is ≤ 4× on a CPU, ≤ 2× on a GPU.

``--what generation`` instead times one whole coevolution generation of a 3×3 population
of ``quick``-sized cells (oracle data, the ``quick`` preset, Mustangs' defaults: 256
fitness samples, random losses), the default path (one cell after another) against
``--batched-cells`` (seqgan.evolve.batched: every cell at once as stacked models), both
from the same population, alternating, median of ``--repeats`` generations after one
warm-up each; it also prints whether the two made the same discrete decisions and their
largest weight difference.

Usage::

    python bench/bench_population.py                      # CPU: 1 and 2 threads
    PYTHONPATH=. python bench/bench_population.py --device cuda
    python bench/bench_population.py --what generation --threads 1
    PYTHONPATH=. python bench/bench_population.py --what generation --device cuda   # < 1 minute

Only torch and seqgan (models, evolve, the oracle's data) are imported, no
music21/nltk/pretty_midi. Prints a Markdown table; record it in bench/RESULTS.md with the
machine, date and commit.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from seqgan.models.discriminator import Discriminator, DiscriminatorConfig
from seqgan.models.generator import Generator, GeneratorConfig
from seqgan.models.stacked import StackedGenerator, mle_update, pg_update
from seqgan.models.stacked_optim import StackedAdam
from seqgan.models.stacked_d import StackedDiscriminator

SIZES = {
    "seqgan": (GeneratorConfig(), DiscriminatorConfig(), 64),
    "quick": (GeneratorConfig(vocab_size=50, emb_dim=16, hidden_dim=16, seq_len=8),
              DiscriminatorConfig(emb_dim=16, filter_sizes=(1, 2, 3, 4), num_filters=(8, 8, 8, 8)), 32),
}
CLIP = 5.0


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, dev: torch.device, repeats: int) -> float:
    """Median seconds of ``fn()`` over ``repeats`` runs after one warm-up."""
    fn()
    sync(dev)
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(dev)
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def separate(gc, dc, B, K, dev):
    """K separate members: {step name: callable doing that step for every member}."""
    gs = [Generator(gc).to(dev) for _ in range(K)]
    ds = [Discriminator(dc, gc.vocab_size, gc.seq_len).to(dev) for _ in range(K)]
    fused = dev.type == "cuda" or None
    g_opts = [torch.optim.Adam(g.parameters(), lr=0.01, fused=fused) for g in gs]
    d_opts = [torch.optim.Adam(d.parameters(), lr=1e-4, fused=fused) for d in ds]
    data = torch.randint(gc.vocab_size, (K, B, gc.seq_len), device=dev)
    labels = torch.randint(2, (B,), device=dev)
    q = torch.rand(K, B, gc.seq_len, device=dev)

    def mle():
        for k, (g, opt) in enumerate(zip(gs, g_opts)):
            logits = g(data[k])
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), data[k].reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(g.parameters(), CLIP)
            opt.step()

    def d_step():
        for k, (d, opt) in enumerate(zip(ds, d_opts)):
            d.train()
            loss, _ = d.loss(data[k], labels, None, d.dropout_mask(B))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    def pg():
        for k, (g, opt) in enumerate(zip(gs, g_opts)):
            seqs = g.sample(B)
            loss = -(g.log_probs(seqs) * q[k]).sum() / B
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(g.parameters(), CLIP)
            opt.step()

    return {"mle": mle, "d": d_step, "pg": pg}


def stacked(gc, dc, B, K, dev):
    """K members stacked: {step name: callable doing that step for all of them at once}."""
    S = StackedGenerator.from_generators([Generator(gc).to(dev) for _ in range(K)])
    SD = StackedDiscriminator.from_discriminators([Discriminator(dc, gc.vocab_size, gc.seq_len).to(dev)
                                                   for _ in range(K)])
    g_opt, d_opt = StackedAdam(S.parameters(), 0.01), StackedAdam(SD.parameters(), 1e-4)
    gens = [torch.Generator(device=dev).manual_seed(k) for k in range(K)]
    data = torch.randint(gc.vocab_size, (K, B, gc.seq_len), device=dev)
    labels = torch.randint(2, (K, B), device=dev)
    q = torch.rand(K, B, gc.seq_len, device=dev)

    def d_step():
        SD.train()
        loss, _ = SD.loss(data, labels, None, SD.dropout_masks(B, gens))
        d_opt.zero_grad()
        loss.sum().backward()
        d_opt.step()

    def pg():
        S.eval()
        pg_update(S, g_opt, S.sample(B, gens), q, CLIP)

    return {"mle": lambda: mle_update(S, g_opt, data, CLIP), "d": d_step, "pg": pg}


def generation(dev: torch.device, threads: list[int], repeats: int, grid: str = "3x3") -> None:
    """One coevolution generation, default path against ``--batched-cells`` (module docstring)."""
    from seqgan.datasets import load_corpus
    from seqgan.evolve.population import Population
    from seqgan.runs.evolve_config import EvolveConfig
    from seqgan.runs.presets import get_preset

    cfg = get_preset("quick")
    corpus = load_corpus("oracle", cfg.data, cfg.data.seq_len, 0)
    cfg.generator.vocab_size = len(corpus.vocab)
    print("| grid | threads | default (ms) | batched (ms) | default / batched | same decisions | max weight diff |")
    print("|---|---|---|---|---|---|---|")
    for n in threads:
        torch.set_num_threads(n)
        pops, times, recs = {}, {False: [], True: []}, {False: [], True: []}
        for batched in (False, True):
            ecfg = EvolveConfig(grid=grid, d_pretrain=1, batched_cells=batched)
            pop = Population(cfg, ecfg, dev, 7, corpus.train.to(dev), corpus.test[:256].to(dev),
                             corpus.oracle.to(dev), corpus.vocab)
            pop.populate(None)
            recs[batched] += pop.step()  # warm-up
            pops[batched] = pop
        for _ in range(repeats):
            for batched, pop in pops.items():
                sync(dev)
                t0 = time.perf_counter()
                recs[batched] += pop.step()
                sync(dev)
                times[batched].append(time.perf_counter() - t0)
        keys = ("g_losses", "selected", "replaced")
        same = all(a[k] == b[k] for a, b in zip(recs[False], recs[True]) for k in keys)
        diff = max(float((va - vb).abs().max()) for ca, cb in zip(pops[False].cells.values(), pops[True].cells.values())
                   for m in ("G", "D") for va, vb in zip(getattr(ca.st, m).state_dict().values(),
                                                         getattr(cb.st, m).state_dict().values()))
        a, b = (statistics.median(times[x]) * 1e3 for x in (False, True))
        print(f"| {grid} | {n} | {a:.0f} | {b:.0f} | {a / b:.2f}× | {'yes' if same else 'no'} | {diff:.1e} |",
              flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--what", choices=("step", "generation"), default="step",
                    help="step: K members' training step, stacked vs separate; generation: one 3x3 "
                         "coevolution generation, default vs --batched-cells")
    ap.add_argument("--threads", default="1,2", help="CPU intra-op threads to try (comma-separated)")
    ap.add_argument("--members", default="1,4,9")
    ap.add_argument("--sizes", default="quick,seqgan")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    dev = torch.device(args.device)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    threads = [int(x) for x in args.threads.split(",")] if dev.type == "cpu" else [torch.get_num_threads()]
    if args.what == "generation":
        name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
        print(f"device {name}, torch {torch.__version__}; one generation, median of {args.repeats}")
        generation(dev, threads, args.repeats)
        return
    members = [int(x) for x in args.members.split(",")]
    goal = 4.0 if dev.type == "cpu" else 2.0
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
    print(f"device {name}, torch {torch.__version__}; times in ms, median of {args.repeats}")
    print("| size | threads | K | MLE sep | MLE stack | D sep | D stack | PG sep | PG stack | "
          "step sep | step stack | stack / one member | sep / stack |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    verdicts = []
    for size in args.sizes.split(","):
        gc, dc, B = SIZES[size]
        for n in threads:
            torch.set_num_threads(n)
            one = None
            for K in members:
                torch.manual_seed(0)
                t = {}
                for kind, steps in (("sep", separate(gc, dc, B, K, dev)), ("stack", stacked(gc, dc, B, K, dev))):
                    for step, fn in steps.items():
                        t[step, kind] = timed(fn, dev, args.repeats) * 1e3
                sep = sum(t[s, "sep"] for s in ("mle", "d", "pg"))
                st = sum(t[s, "stack"] for s in ("mle", "d", "pg"))
                if one is None:  # the first K (1 by default): "one member"
                    one = sep
                cells = " | ".join(f"{t[s, k]:.1f}" for s in ("mle", "d", "pg") for k in ("sep", "stack"))
                print(f"| {size} | {n} | {K} | {cells} | {sep:.1f} | {st:.1f} | {st / one:.2f}× | "
                      f"{sep / st:.2f}× |", flush=True)
                if K == 9:
                    verdicts.append(f"{size}, {n} thread(s): 3×3 stacked step = {st / one:.2f}× one member "
                                    f"(goal ≤ {goal:g}×: {'met' if st / one <= goal else 'not met'})")
    for v in verdicts:
        print(v)


if __name__ == "__main__":
    main()
