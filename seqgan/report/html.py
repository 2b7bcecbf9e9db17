"""``seqgan report``: one self-contained HTML page about a run.

Everything the page shows is inside the file — images as ``data:image/png;base64,...``,
the animation as ``data:image/gif``, audio as ``data:audio/wav;base64,...`` — and it names
no network resource at all (no fonts, scripts or styles from elsewhere), so it can be
mailed, archived or opened offline, and opening it never contacts anyone. Sections:

- the run: data, kind, preset, training counters;
- metrics: the rows of ``seqgan evaluate --compare`` (training data, MLE, selected where
  the run keeps one, and final generator; the metrics of the run's kind it can compute),
  plus the generator of each ``compare`` run;
- music: a piano roll and an audio player per tune (audio from ``Run.export_audio``,
  embedded as mono WAV of at most 22.05 kHz by :func:`compact_wav`); text and oracle
  runs: samples;
- the training-progress animation (:mod:`seqgan.report.animate`), when the run has
  snapshots;
- learning curves (:func:`seqgan.report.plots.plot_runs`, other runs overlaid);
- the resolved configuration, the seeds, and the versions the run was made with and the
  report was made with.

Tunes and samples come from the generator a reader uses by default (``Run.sample_tokens``)
with the sampling seed ``seed``: the same tunes ``export-midi`` / ``export-audio`` give
for that seed. :func:`make_report` gathers what the page needs (through a
:class:`ReportSource`, i.e. a :class:`seqgan.run.Run`), :func:`build_report` writes the
page, :func:`publish` is what ``seqgan run`` leaves in a run: audio, animation, report.
"""
from __future__ import annotations

import base64
import datetime
import html
import io
import json
import math
import tempfile
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

from seqgan.datasets import format_samples
from seqgan.errors import UserError
from seqgan.files import atomic_write_bytes
from seqgan.knobs import check_seed
from seqgan.report.animate import gif_bytes, roll_pngs, write_gif
from seqgan.report.plots import plot_runs
from seqgan.runs.rundir import RunDir, versions
from seqgan.runs.snapshots import list_snapshots, snapshot_interval, snapshot_seed

AUDIO_TYPES = {"wav": "audio/wav", "flac": "audio/flac"}
EVAL_SAMPLES = 1000  # samples per metrics row (at most the run's eval_samples), as `seqgan run`
MAX_SHOWN = 64  # tunes or samples a report embeds at most

STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d232a;background:#f6f7f9}
main{max-width:1180px;margin:0 auto;padding:24px 28px 48px}
h1{font-size:26px;margin:8px 0 2px}h2{font-size:19px;margin:30px 0 10px;border-bottom:1px solid #d6dbe1;padding-bottom:4px}
.sub{color:#5b6673}nav a{margin-right:14px;color:#2457a6;text-decoration:none}
table{border-collapse:collapse;background:#fff;font-variant-numeric:tabular-nums}
th,td{border:1px solid #d6dbe1;padding:4px 10px;text-align:right}th:first-child,td:first-child{text-align:left}
thead th{background:#eef1f5}img{max-width:100%;height:auto;background:#fff;border:1px solid #d6dbe1}
.tunes{display:grid;grid-template-columns:repeat(auto-fill,minmax(270px,1fr));gap:14px}
figure{margin:0;background:#fff;border:1px solid #d6dbe1;border-radius:6px;padding:8px}
figure img{border:0}figcaption{font-size:12px;color:#5b6673;word-break:break-word}
audio{width:100%;margin-top:4px}ol.samples{background:#fff;border:1px solid #d6dbe1;padding:10px 10px 10px 44px;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:13px}
pre{background:#fff;border:1px solid #d6dbe1;padding:10px;overflow:auto;font-size:12px;max-height:420px}
.note{color:#5b6673;font-size:13px}
"""


def data_uri(mime: str, data: bytes) -> str:
    """``data:MIME;base64,...`` of ``data``."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _num(v: Any) -> str:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return "n/a"
    return f"{v:.4f}"


def metrics_table(rows: dict[str, dict[str, Any]]) -> str:
    """Rows {label: {metric: value}} as an HTML table (a column per metric, first-seen order;
    values to 4 decimals, ``n/a`` for a missing or non-finite one)."""
    cols: list[str] = []
    for r in rows.values():
        cols += [c for c in r if c not in cols]
    head = "".join(f"<th>{_e(c)}</th>" for c in cols)
    body = "".join(f"<tr><td>{_e(label)}</td>" + "".join(f"<td>{_num(r.get(c))}</td>" for c in cols)
                   + "</tr>" for label, r in rows.items())
    return f"<table><thead><tr><th></th>{head}</tr></thead><tbody>{body}</tbody></table>"


def key_values(pairs: Sequence[tuple[str, Any]]) -> str:
    """A two-column HTML table of ``(key, value)`` pairs."""
    return "<table>" + "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in pairs) + "</table>"


def _tunes(run: RunDir, tokens, audio: Sequence[tuple[str, bytes]] | None) -> str:
    """A card per tune: its piano roll and, where ``audio`` has it, an audio player."""
    names = format_samples(run.vocab, tokens)
    cards = []
    for k, png in enumerate(roll_pngs(run.vocab, tokens)):
        player = ""
        if audio is not None and k < len(audio):
            fmt, data = audio[k]
            player = f'<audio controls preload="metadata" src="{data_uri(AUDIO_TYPES[fmt], data)}"></audio>'
        cards.append(f'<figure><img alt="piano roll of tune {k}" src="{data_uri("image/png", png)}">'
                     f"{player}<figcaption>#{k}: {_e(names[k])}</figcaption></figure>")
    return '<div class="tunes">' + "".join(cards) + "</div>"


def _audio_note(audio: Sequence[tuple[str, bytes]] | None) -> str:
    if not audio:
        return "no audio"
    return "the audio as mono WAV of at most 22.05 kHz (smaller than export-audio's files)" \
        if audio[0][0] == "wav" else f"the audio as {audio[0][0].upper()}"


def _progress(run: RunDir, animation: bytes | None) -> str:
    snaps = list_snapshots(run.path)
    if not snaps:
        return ('<p class="note">This run has no snapshots (made before snapshots existed, a '
                'coevolution run, or trained with --snapshot-samples 0).</p>')
    gif = animation if animation is not None else gif_bytes(run)
    tc = run.config.train
    return (f'<img alt="training progress: the same seeds at {len(snaps)} snapshots" '
            f'src="{data_uri("image/gif", gif)}"><p class="note">{len(snaps)} snapshots of '
            f"{len(snaps[0].lines())} samples, every {snapshot_interval(tc)} epochs of each phase, all drawn "
            f"with seed {snapshot_seed(tc.seed)}: the same seeds, so frames compare.</p>")


def build_report(run: RunDir, rows: dict[str, dict[str, Any]], tokens, seed: int = 0,
                 compare: Sequence[RunDir] = (), audio: Sequence[tuple[str, bytes]] | None = None,
                 animation: bytes | None = None, warn: Callable[[str], Any] = print) -> str:
    """The report's HTML (see the module docstring): ``rows`` the metrics rows, ``tokens``
    (n, T) the tunes or samples shown (drawn with sampling seed ``seed``), ``audio`` one
    ``(format, bytes)`` per tune in tune order, ``animation`` GIF bytes (else made from
    the run's snapshots)."""
    cfg, name, n = run.config, run.path.name, tokens.shape[0]
    ck = run.checkpoints.load(warn=warn)
    counters = ck[0] if ck else {}
    if run.vocab.kind == "music":
        parts = [("samples", "Tunes", _tunes(run, tokens, audio) + f'<p class="note">{n} tunes of the '
                  f"generator, sampling seed {seed}; {_e(_audio_note(audio))}.</p>")]
    else:
        items = "".join(f"<li>{_e(s)}</li>" for s in format_samples(run.vocab, tokens))
        parts = [("samples", "Samples", f'<ol class="samples" start="0">{items}</ol><p class="note">'
                  f"{n} samples of the generator, sampling seed {seed}.</p>")]
    parts.append(("progress", "Training progress", _progress(run, animation)))
    with tempfile.TemporaryDirectory(prefix="seqgan-report-") as tmp:
        try:
            curves = plot_runs([run.path, *[c.path for c in compare]], Path(tmp) / "curves.png")
            parts.append(("curves", "Learning curves",
                          f'<img alt="learning curves" src="{data_uri("image/png", curves.read_bytes())}">'))
        except UserError as e:
            parts.append(("curves", "Learning curves", f'<p class="note">{_e(e)}</p>'))
    made = run.meta.get("versions", {})
    now = versions()
    parts.append(("config", "Configuration",
                  f"<pre>{_e(json.dumps(cfg.to_dict(), indent=2, sort_keys=True))}</pre>"))
    parts.append(("versions", "Seed and versions", key_values(
        [("run seed", cfg.train.seed), ("sampling seed (tunes, samples, metrics)", seed),
         ("snapshot seed", snapshot_seed(cfg.train.seed))]
        + [(f"{k} (run made with)", v) for k, v in made.items()]
        + [(f"{k} (report made with)", v) for k, v in now.items()])))
    ran = [(k, counters[k]) for k in ("phase", "mle_epoch", "d_round", "adv_epoch") if k in counters]
    if "seconds" in counters:
        ran.append(("training seconds", f"{counters['seconds']:.1f}"))
    head = (f"<h1>{_e(name)}</h1><p class=\"sub\">{_e(run.vocab.kind)} run on {_e(cfg.data.spec)}, "
            f"preset {_e(cfg.preset)}, seed {_e(cfg.train.seed)}; "
            + ", ".join(f"{_e(k)} {_e(v)}" for k, v in ran) + "</p>")
    nav = "<nav>" + "".join(f'<a href="#{k}">{_e(t)}</a>' for k, t in
                            [("metrics", "Metrics")] + [(k, t) for k, t, _ in parts]) + "</nav>"
    table = (f"{metrics_table(rows)}<p class=\"note\">Rows as <code>seqgan evaluate --compare</code> "
             f"gives them; generators scored on fresh samples (sampling seed {seed}).</p>")
    body = "".join(f'<section id="{k}"><h2>{_e(t)}</h2>{h}</section>'
                   for k, t, h in [("metrics", "Metrics", table), *parts])
    stamp = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>seqgan report: {_e(name)}</title><link rel="icon" href="data:,">'
            f"<style>{STYLE}</style></head><body><main>{head}{nav}{body}"
            f'<p class="note">Made by seqgan {_e(now["seqgan"])} on {_e(stamp)}; this file is '
            f"self-contained (no network resources).</p></main></body></html>\n")


class ReportSource(Protocol):
    """What a report needs of an opened run (a :class:`seqgan.run.Run`): its directory, its
    sampler, its evaluation and its audio export (passed in, so this layer imports no API)."""

    dir: RunDir
    kind: str
    log: Callable[[str], Any]

    def sample_tokens(self, n: int, temperature: float = 1.0, seed: int = 0, mle: bool = False,
                      device: Any = None, length: int | None = None, bars: int | None = None) -> Any:
        """``n`` sequences (n, L) of the run's generator, sampling seed ``seed``."""

    def default_metrics(self) -> list[str]:
        """The metrics of the run's kind that it can compute."""

    def evaluate(self, metrics: Sequence[str], n: int, compare: bool = False, seed: int = 0,
                 device: Any = None) -> dict[str, Any]:
        """``{metric: value}``, or with ``compare`` ``{row: {metric: value}}``."""

    def export_audio(self, out: str | Path, n: int = 8, tokens: Any = None) -> list[Path]:
        """One audio file per tune of ``tokens`` (n, T), in tune order."""


def metric_rows(run: ReportSource, compare: Sequence[ReportSource] = (), seed: int = 0,
                device: Any = None) -> dict[str, dict[str, Any]]:
    """``seqgan evaluate --compare``'s rows of ``run`` (as ``seqgan run`` computes them: at
    most 1000 samples a row), then the generator of each ``compare`` run."""
    def n_of(r: ReportSource) -> int:
        """Samples per row: the run's eval_samples, at most EVAL_SAMPLES."""
        return min(r.dir.config.train.eval_samples, EVAL_SAMPLES)

    rows = run.evaluate(run.default_metrics(), n_of(run), compare=True, seed=seed, device=device)
    for other in compare:
        rows[f"{other.dir.path.name}: generator"] = other.evaluate(other.default_metrics(), n_of(other),
                                                                   seed=seed, device=device)
    return rows


def check_report_path(out: str | Path) -> Path:
    """``out`` as a Path if it names an .html file (not a folder), else a one-line UserError."""
    out = Path(out)
    if out.is_dir():
        raise UserError(f"--out {str(out)!r} is a folder; give a file name")
    if out.suffix.lower() not in (".html", ".htm"):
        raise UserError(f"--out {str(out)!r}: the report is an HTML file; give a .html file name")
    return out


def make_report(run: ReportSource, out: str | Path, compare: Sequence[ReportSource] = (),
                n: int | None = None, seed: int = 0, device: Any = None,
                rows: dict[str, dict[str, Any]] | None = None, tokens: Any = None,
                audio: Sequence[str | Path] | None = None, animation: str | Path | None = None,
                length: int | None = None, bars: int | None = None) -> Path:
    """Write the report of ``run`` to ``out`` (an .html file name) atomically; its path.

    Shown: ``tokens`` (n, L), else ``n`` tunes (music, default 8) or samples (default 20)
    of ``length`` tokens or ``bars`` bars [the training length] drawn with sampling seed
    ``seed``. What is not given is made here: ``rows`` (:func:`metric_rows`), ``audio``
    (the tunes' audio files, in tune order; from ``run.export_audio``), ``animation`` (a
    GIF file; else drawn from the snapshots).
    """
    out = check_report_path(out)
    n = n if n is not None else len(tokens) if tokens is not None else 8 if run.kind == "music" else 20
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SHOWN:
        raise UserError(f"-n must be an integer in 1..{MAX_SHOWN} (the report embeds every sample); got {n}")
    check_seed(seed)
    if rows is None:
        rows = metric_rows(run, compare, seed, device)
    tokens = tokens[:n] if tokens is not None else run.sample_tokens(n, 1.0, seed, device=device, length=length,
                                                                      bars=bars)
    with tempfile.TemporaryDirectory(prefix="seqgan-audio-") as tmp:
        if run.kind == "music" and audio is None:
            audio = run.export_audio(tmp, n=n, tokens=tokens)
        sounds = [(Path(p).suffix.lstrip(".").lower(), Path(p).read_bytes()) for p in list(audio or ())[:n]]
    sounds = [("wav", compact_wav(data)) if fmt == "wav" else (fmt, data) for fmt, data in sounds]
    gif = Path(animation).read_bytes() if animation is not None else None
    page = build_report(run.dir, rows, tokens, seed, [c.dir for c in compare], sounds, gif, run.log)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, page.encode("utf-8"))
    return out


def publish(run: ReportSource, rows: dict[str, dict[str, Any]] | None = None, tokens: Any = None,
            device: Any = None) -> dict[str, Any]:
    """What ``seqgan run`` leaves in a run after its metrics ``rows``: the WAV files of 8
    tunes (the first of ``tokens``, else 8 drawn with seed 0) in ``RUN/audio/`` (music),
    the progress animation ``RUN/progress.gif`` (when the run has snapshots) and
    ``RUN/report.html`` built from them; ``{"audio": [paths], "animation": path | None,
    "report": path}``."""
    path, music = run.dir.path, run.kind == "music"
    shown = (tokens if tokens is not None else run.sample_tokens(8 if music else 20, 1.0, 0, device=device))
    shown = shown[:8] if music else shown
    wavs = run.export_audio(path / "audio", len(shown), tokens=shown) if music else []
    gif = write_gif(run.dir, path / "progress.gif") if list_snapshots(path) else None
    report = make_report(run, path / "report.html", seed=0, device=device, rows=rows, tokens=shown,
                         audio=wavs, animation=gif)
    return {"audio": wavs, "animation": gif, "report": report}


def compact_wav(data: bytes, max_rate: int = 22050) -> bytes:
    """A 16-bit PCM WAV file as a smaller one to embed: mono (channels averaged) and, above
    ``max_rate``, at half its rate or less (means of 2 or more neighbouring frames, a
    simple low-pass); anything else (another sample width, a WAV the standard library
    cannot read) is returned unchanged."""
    import wave

    import numpy as np

    try:
        with wave.open(io.BytesIO(data)) as f:
            ch, width, rate, frames = f.getnchannels(), f.getsampwidth(), f.getframerate(), f.readframes(f.getnframes())
    except (wave.Error, EOFError):
        return data
    if width != 2:
        return data
    x = np.frombuffer(frames, dtype="<i2").reshape(-1, ch).astype(np.float64).mean(axis=1)
    k = max(1, -(-rate // max_rate))  # frames averaged into one
    x = x[: len(x) // k * k].reshape(-1, k).mean(axis=1)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate // k)
        f.writeframes(np.round(x).astype("<i2").tobytes())
    return buf.getvalue()
