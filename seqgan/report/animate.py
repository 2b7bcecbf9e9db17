"""The training-progress animation (``seqgan animate``): one GIF frame per snapshot.

A run keeps fixed-seed samples every K epochs (:mod:`seqgan.runs.snapshots`); here each
snapshot becomes a frame, in training order, so the same seeds can be watched as they
evolve — the DCGAN-style progress video, for sequences. A music frame is the piano rolls
of the snapshot's tokens, a panel per sample, drawn as
:func:`seqgan.datasets.midi.piano_roll_png` draws them (notes from
:func:`seqgan.datasets.music.decode_notes`) but in one figure whose axes are drawn once and
whose rolls are blitted over them frame after frame (a new figure per frame costs several
times more); a text (or oracle) frame is the decoded samples, one a line, in a monospaced font.
Each frame has a header strip naming the phase and epoch (``MLE epoch 4``, ``adversarial
epoch 30``) and its place (``5/19``), so no two frames are alike and the GIF holds exactly
one frame per snapshot. Frames are drawn with matplotlib (Agg) and joined with Pillow;
every frame has the size of the largest (smaller ones are padded white).
"""
from __future__ import annotations

import io
from pathlib import Path

from seqgan.errors import UserError
from seqgan.files import atomic_write_bytes
from seqgan.runs.rundir import RunDir
from seqgan.runs.snapshots import Snapshot, list_snapshots

HEADER = 30  # pixels of the title strip above each frame
MAX_FPS = 50.0
TEXT_WIDTH = 110  # characters of a text frame's line (longer ones end with "…")


def check_fps(fps: float) -> float:
    """``fps`` if it is a number in (0, 50] (GIF delays are whole hundredths of a second)."""
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 0 < fps <= MAX_FPS:
        raise UserError(f"--fps must be a number in (0, {MAX_FPS:g}]; got {fps}")
    return float(fps)


def snapshots_of(run: RunDir) -> list[Snapshot]:
    """The run's snapshots, or a UserError saying why it has none."""
    snaps = list_snapshots(run.path)
    if not snaps:
        raise UserError(f"{run.path} has no snapshots (no {run.path / 'snapshots'}/*.txt): runs made "
                        f"before snapshots existed, coevolution runs and runs trained with "
                        f"--snapshot-samples 0 have none; train it further to make some")
    return snaps


def _header(width: int, title: str, right: str):
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("RGB", (width, HEADER), "white")
    draw = ImageDraw.Draw(img)
    try:
        font = ImageFont.load_default(size=16)  # Pillow's own TrueType font (needs FreeType)
    except (TypeError, ValueError, OSError, ImportError):
        font = ImageFont.load_default()
    draw.text((8, 6), title, fill="black", font=font)
    w = draw.textlength(right, font=font)
    draw.text((width - w - 8, 6), right, fill="#666666", font=font)
    return img


def _text_body(lines: list[str], rows: int):
    """The samples as an image: one line each, monospaced, ``rows`` lines high."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from PIL import Image

    fig = Figure(figsize=(10.0, 0.25 * rows + 0.2), dpi=100)
    canvas = FigureCanvasAgg(fig)
    step = 1.0 / (rows + 0.8)
    for i, line in enumerate(lines[:rows]):
        shown = line if len(line) <= TEXT_WIDTH else line[:TEXT_WIDTH - 1] + "…"
        fig.text(0.01, 1 - (i + 0.9) * step, f"{i:>2}  {shown}", family="monospace", fontsize=9, va="center",
                 parse_math=False)  # a "$" in a sample is text, not mathtext
    canvas.draw()
    return Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba()).convert("RGB")


class _RollGrid:
    """Piano rolls of one snapshot in a figure drawn once and updated per frame (the look of
    :func:`seqgan.datasets.midi.piano_roll_png`: time across, pitch up, onsets darker,
    dotted bar lines), so a frame costs one redraw instead of a new figure."""

    def __init__(self, vocab, rows: int, T: int, cols: int = 4, panel: tuple[float, float] = (3.2, 2.2)):
        import numpy as np
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator

        meta = getattr(vocab, "meta", {}) or {}
        self.vocab, self.np = vocab, np
        self.lo, self.hi = meta.get("pitch_range") or (48, 84)
        spb = int(meta.get("steps_per_bar") or 16)
        cols = max(1, min(cols, rows))
        nrows = -(-rows // cols)
        self.fig = Figure(figsize=(panel[0] * cols, panel[1] * nrows), dpi=100)
        self.canvas = FigureCanvasAgg(self.fig)
        self.images, self.over = [], []  # the rolls; what is drawn over them (bar lines, frame)
        for k in range(rows):
            ax = self.fig.add_subplot(nrows, cols, k + 1)
            self.images.append(ax.imshow(np.zeros((self.hi - self.lo + 1, T)), aspect="auto", origin="lower",
                                         cmap="Greys", vmin=0, vmax=1, interpolation="nearest",
                                         extent=(-0.5, T - 0.5, self.lo - 0.5, self.hi + 0.5), animated=True))
            self.over += [(ax, ax.axvline(b - 0.5, color="tab:blue", lw=0.5, ls=":")) for b in range(spb, T, spb)]
            self.over += [(ax, sp) for sp in ax.spines.values()]
            if rows > 1:
                ax.set_title(f"#{k}", fontsize=8)
            ax.tick_params(labelsize=6)
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        W, H = self.fig.get_size_inches()  # fixed margins in inches (tight_layout costs more than a frame)
        left, right, bottom, top = 0.32 / W, 1 - 0.06 / W, 0.22 / H, 1 - (0.24 if rows > 1 else 0.06) / H
        aw = (W * (right - left) - (cols - 1) * 0.36) / cols  # the width of an axes
        ah = (H * (top - bottom) - (nrows - 1) * 0.46) / nrows
        self.fig.subplots_adjust(left, bottom, right, top, wspace=0.36 / aw, hspace=0.46 / ah)
        self.canvas.draw()  # axes, ticks and titles once; frames are blitted over this background
        self.background = self.canvas.copy_from_bbox(self.fig.bbox)

    def draw(self, tokens):
        """The rolls of ``tokens`` (n, T) as a PIL RGB image."""
        from PIL import Image

        from seqgan.datasets.music import decode_notes

        for k, im in enumerate(self.images):
            img = self.np.zeros(im.get_array().shape)
            for start, length, p in (decode_notes(self.vocab, tokens[k]) if k < len(tokens) else ()):
                if self.lo <= p <= self.hi:
                    img[p - self.lo, start:start + length] = 0.6
                    img[p - self.lo, start] = 1.0
            im.set_data(img)
        self.canvas.restore_region(self.background)
        for im in self.images:
            im.axes.draw_artist(im)
        for ax, artist in self.over:
            ax.draw_artist(artist)
        return Image.frombuffer("RGBA", self.canvas.get_width_height(), self.canvas.buffer_rgba()).convert("RGB")


def roll_pngs(vocab, tokens) -> list[bytes]:
    """One piano-roll PNG per sequence of ``tokens`` (n, T) (for the report's tune cards),
    wider for longer tunes."""
    grid = _RollGrid(vocab, 1, tokens.shape[1], cols=1, panel=(min(9.0, max(3.2, tokens.shape[1] / 20)), 2.2))
    out = []
    for k in range(tokens.shape[0]):
        buf = io.BytesIO()
        grid.draw(tokens[k:k + 1]).save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


def _music_bodies(run: RunDir, snaps: list[Snapshot], rows: int) -> list:
    toks = []
    for snap in snaps:
        t = snap.tokens()
        if t is None:
            raise UserError(f"{snap.tokens_path}: missing (a music snapshot keeps its tokens there)")
        toks.append(t)
    grid = _RollGrid(run.vocab, rows, max(t.shape[1] for t in toks))
    return [grid.draw(t) for t in toks]


def frames(run: RunDir, snaps: list[Snapshot] | None = None) -> list:
    """One PIL RGB image per snapshot of ``run`` (all of one size), in training order."""
    from PIL import Image

    snaps = snaps if snaps is not None else snapshots_of(run)
    rows = min(16, max(len(s.lines()) for s in snaps) or 1)
    bodies = _music_bodies(run, snaps, rows) if run.vocab.kind == "music" else \
        [_text_body(snap.lines(), rows) for snap in snaps]
    out = []
    for k, (snap, body) in enumerate(zip(snaps, bodies), 1):
        img = Image.new("RGB", (body.width, body.height + HEADER), "white")
        img.paste(_header(body.width, snap.label, f"{run.path.name}  {k}/{len(snaps)}"), (0, 0))
        img.paste(body, (0, HEADER))
        out.append(img)
    w, h = max(i.width for i in out), max(i.height for i in out)
    for k, img in enumerate(out):
        if img.size != (w, h):
            padded = Image.new("RGB", (w, h), "white")
            padded.paste(img, (0, 0))
            out[k] = padded
    return out


def gif_bytes(run: RunDir, fps: float = 2.0) -> bytes:
    """The animation of ``run``'s snapshots as GIF bytes: one frame per snapshot at ``fps``
    frames a second (the last frame held three times as long), looping."""
    fps = check_fps(fps)
    imgs = frames(run)
    delay = max(20, round(1000 / fps))  # ms; browsers slow delays under 20 ms down
    buf = io.BytesIO()
    imgs[0].save(buf, format="GIF", save_all=True, append_images=imgs[1:], loop=0,
                 duration=[delay] * (len(imgs) - 1) + [3 * delay])
    return buf.getvalue()


def write_gif(run: RunDir, out: str | Path, fps: float = 2.0) -> Path:
    """Write :func:`gif_bytes` to ``out`` (a .gif file name) atomically; its path."""
    out = Path(out)
    if out.is_dir():
        raise UserError(f"--out {str(out)!r} is a folder; give a file name")
    if out.suffix.lower() != ".gif":
        raise UserError(f"--out {str(out)!r}: the animation is a GIF; give a .gif file name")
    data = gif_bytes(run, fps)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, data)
    return out
