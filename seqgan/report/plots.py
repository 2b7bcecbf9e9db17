"""Learning curves of a run's ``metrics.jsonl``: every metric against training time.

The x axis runs through the phases in order — MLE epochs, then discriminator rounds, then
adversarial (or baseline) epochs, then coevolution generations — each phase a shaded
band, so one axis shows a whole run; a metric gets one panel. A coevolution's per-cell
records are drawn as their mean over cells per generation. ``compare`` overlays other
runs (their phases placed the same way, so curves of runs with the same schedule line
up). Written with matplotlib's Agg backend (no display needed) as PNG or SVG.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Sequence

from seqgan.errors import UserError
from seqgan.runs.metrics_log import MetricsLog

PHASE_ORDER = ("mle", "d-pretrain", "adversarial", "coevolve")
PHASE_COLOURS = {"mle": "#dde8f5", "d-pretrain": "#f5eddd", "adversarial": "#e3f2df", "coevolve": "#efe0f2"}
FORMATS = (".png", ".svg")


def curves(records: Sequence[dict]) -> tuple[dict[str, list[tuple[float, float]]], dict[str, tuple[float, float]]]:
    """``({metric: [(x, value)]}, {phase: (x_start, x_end)})`` of a run's records: x is
    the epoch within its phase, offset by the lengths of the phases before it."""
    by_phase: dict[str, dict[int, dict[str, list[float]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for r in records:
        phase, epoch = r.get("phase"), r.get("epoch")
        if phase not in PHASE_ORDER or not isinstance(epoch, int):
            continue
        for k, v in (r.get("metrics") or {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v:
                by_phase[phase][epoch][k].append(float(v))
    out: dict[str, list[tuple[float, float]]] = defaultdict(list)
    spans, offset = {}, 0.0
    for phase in PHASE_ORDER:
        if phase not in by_phase:
            continue
        epochs = sorted(by_phase[phase])
        spans[phase] = (offset, offset + max(epochs[-1], 1))
        for e in epochs:
            for k, vs in by_phase[phase][e].items():
                out[k].append((offset + e, sum(vs) / len(vs)))
        offset = spans[phase][1]
    return dict(out), spans


def plot_runs(runs: Sequence[str | Path], out: str | Path, width: float = 11.0) -> Path:
    """Draw the learning curves of ``runs`` (the first one's phases shaded) into ``out``."""
    out = Path(out)
    if out.is_dir():
        raise UserError(f"--out {str(out)!r} is a folder; give a file name")
    if out.suffix.lower() not in FORMATS:
        raise UserError(f"--out {str(out)!r}: choose a .png or .svg file name")
    data = []
    for run in runs:
        recs = MetricsLog(Path(run) / "metrics.jsonl").read()
        if not recs:
            raise UserError(f"{run} has no metrics yet (metrics.jsonl is empty or missing)")
        data.append((Path(run).name, *curves(recs)))
    names = sorted({k for _, c, _ in data for k in c})
    if not names:
        raise UserError(f"{runs[0]}: its metrics.jsonl holds no numbers to plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 2 if len(names) > 1 else 1
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width, 2.6 * rows), squeeze=False)
    spans: dict[str, tuple[float, float]] = {}
    for _, _, sp in data:  # every run's phases; a phase spans as far as its longest run's
        for phase, (a, b) in sp.items():
            spans[phase] = (min(a, spans.get(phase, (a, b))[0]), max(b, spans.get(phase, (a, b))[1]))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, name in zip(axes.flat, names):
        for phase, (a, b) in spans.items():
            ax.axvspan(a, b, color=PHASE_COLOURS[phase], zorder=0, label=None)
        for i, (label, c, _) in enumerate(data):
            if name in c:
                xs, ys = zip(*c[name])
                ax.plot(xs, ys, marker="." if len(xs) < 40 else None, label=label,
                        color=colours[i % len(colours)])
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    handles = [plt.Rectangle((0, 0), 1, 1, color=PHASE_COLOURS[p]) for p in spans]
    labels = list(spans)
    if len(data) > 1:  # one legend for the phases and the runs
        handles += [plt.Line2D([], [], color=colours[i % len(colours)]) for i in range(len(data))]
        labels += [label for label, _, _ in data]
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=8, frameon=False)
    fig.supxlabel("epoch (MLE, then D rounds, then adversarial epochs / generations)", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / rows / 2.6))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{out.suffix}")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(out)
    return out
