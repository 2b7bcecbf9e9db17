"""From a command's options to a run's configuration: creating, resuming, training.

The options a command (or an API call) takes are the knobs of :class:`RunConfig` that
declare that command (:func:`seqgan.knobs.cli_knobs`), plus ``preset``, the data spec and
its ``--data-option``s. Here they are checked against their declared ranges and applied:

- :func:`creation_config` resolves a new run's config (preset chosen from the data, data
  paths made absolute so the run resumes from any folder, length options winning over
  the preset's T);
- :func:`check_resume` refuses options that only apply when a run is created (``fixed``
  knobs, the preset, data options) when they differ from the run's: silently ignoring
  them would let a user believe they took effect;
- :func:`train_config` applies ``seqgan train``'s options to a run's config in memory.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from seqgan.datasets import default_options, resolve_spec
from seqgan.errors import UserError
from seqgan.knobs import check_seed, check_value, cli_knobs, flag_of, override
from seqgan.runs.config import RunConfig, check_relations
from seqgan.runs.presets import get_preset, preset_for_source

# data options that decide the sequence length T, by source
LENGTH_OPTIONS = {"text": ("max_len", "len_percentile"), **{src: ("window",) for src in (
    "music21", "abc", "music-folder", "music-file")}}


def knobs_of(command: str) -> dict[str, tuple[tuple[str, ...], Any, Any]]:
    """``{python name: (path in RunConfig, Knob, type hint)}`` of a command's knobs; the
    Python name is the flag with ``-`` as ``_`` (``lambda`` is ``lambda_``)."""
    out = {}
    for path, _f, k, hint in cli_knobs(RunConfig, command):
        name = flag_of(path, k).replace("-", "_")
        out["lambda_" if name == "lambda" else name] = (path, k, hint)
    return out


def check_options(command: str, values: dict[str, Any]) -> dict[str, Any]:
    """The given (non-None) options of ``command``, each checked against its knob; an
    unknown name is an error listing the valid ones."""
    knobs = knobs_of(command)
    out = {}
    for name, v in values.items():
        if v is None:
            continue
        if name not in knobs:
            raise UserError(f"unknown option {name!r} for {command}; valid: {', '.join(sorted(knobs))}")
        path, k, hint = knobs[name]
        if path[-1] == "seed":
            check_seed(v)
        flag = "--" + flag_of(path, k)
        try:
            check_value(v, k, flag, hint)
        except UserError as e:
            raise UserError(str(e).replace(f"{flag} is {v!r}, expected", f"{flag} must be") +
                            f"; got {v}") from None
        out[name] = v
    return out


def apply(cfg: RunConfig, command: str, values: dict[str, Any]) -> RunConfig:
    """``cfg`` with the checked options of ``command`` set (in place; returned)."""
    knobs = knobs_of(command)
    for name, v in check_options(command, values).items():
        path = knobs[name][0]
        owner = cfg
        for part in path[:-2] if len(path) > 1 else ():
            owner = getattr(owner, part)
        if len(path) == 1:
            setattr(cfg, path[0], v)
        else:
            setattr(owner, path[-2], override(getattr(owner, path[-2]), **{path[-1]: v}))
    check_relations(cfg)
    return cfg


def parse_data_options(items: tuple[str, ...] | dict[str, Any] | None) -> dict[str, Any]:
    """``KEY=VALUE`` strings (VALUE read as JSON when it parses, else kept as the string, so
    that the option's check refuses it by name) or a dict, as a dict."""
    if items is None:
        return {}
    if isinstance(items, dict):
        return dict(items)
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--data-option {item!r}: expected KEY=VALUE")
        try:
            out[key] = json.loads(value)
        except (ValueError, RecursionError):  # not JSON; also too many digits, too deep
            out[key] = value
    return out


def absolute_spec(spec: str | None) -> str | None:
    """A data spec with its file or folder made absolute (recorded in a run, so that the run
    can be resumed from any working directory)."""
    if spec is None:
        return None
    source, arg = resolve_spec(spec)
    if not arg or source == "music21":
        return spec
    return f"oracle:{Path(arg).resolve()}" if source == "oracle" else str(Path(arg).resolve())


def same_data(a: str, b: str) -> bool:
    """Two data specs name the same data (``x.txt`` and ``./x.txt`` do)."""
    if a == b:
        return True
    try:
        (sa, pa), (sb, pb) = resolve_spec(a), resolve_spec(b)
    except UserError:
        return False
    return sa == sb and bool(pa) and bool(pb) and Path(pa).resolve() == Path(pb).resolve()


def creation_config(data: str, preset: str | None = None, data_options: Any = None,
                    **values: Any) -> RunConfig:
    """The configuration of a new run on ``data`` (``values``: pretrain's knobs)."""
    source, _ = resolve_spec(data)
    cfg = get_preset(preset or preset_for_source(source))
    values = check_options("pretrain", values)
    test, seq_len = values.pop("test", None), values.get("seq_len")
    if test is not None and not Path(test).is_file():
        raise UserError(f"--test {test!r}: no such file")
    if test is not None and source != "text":
        raise UserError(f"--test is for text data (one sentence a line); {source} data makes its "
                        f"own held-out set")
    try:
        preset_source = resolve_spec(cfg.data.spec)[0] if cfg.data.spec in ("oracle",) or \
            cfg.data.spec.startswith("music21:") else None
    except UserError:
        preset_source = None
    if preset_source != source:  # the preset's source options belong to another kind of data
        cfg.data.options = {}
    apply(cfg, "pretrain", values)
    cfg.data = override(cfg.data, spec=absolute_spec(data), test_spec=absolute_spec(test))
    given = parse_data_options(data_options)
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
    return cfg


def option_in_effect(cfg: RunConfig, key: str) -> Any:
    """The value a data option had when the run was made: given, from the preset, or the
    source's default (music's ``window`` is the run's sequence length)."""
    if key in cfg.data.options:
        return cfg.data.options[key]
    try:
        source = resolve_spec(cfg.data.spec)[0]
    except UserError:  # the source is gone; a run never re-reads it
        return None
    if key == "window" and key in LENGTH_OPTIONS.get(source, ()):
        return cfg.data.seq_len
    return default_options(source).get(key)


def check_resume(path: Path, cfg: RunConfig, preset: str | None = None, data_options: Any = None,
                 **values: Any) -> None:
    """Options that only shape a new run (``fixed`` knobs, the preset, data options) must
    agree with the run being resumed."""
    knobs = knobs_of("pretrain")
    given = {"--preset": (preset, cfg.preset)}
    for name, v in check_options("pretrain", values).items():
        p, k, _ = knobs[name]
        if not k.fixed:
            continue
        old = cfg
        for part in p:
            old = getattr(old, part)
        if name == "test" and old and same_data(v, old):
            continue
        given["--" + flag_of(p, k)] = (v, old)
    differ = [f"{k} {v!r} (the run has {old!r})" for k, (v, old) in given.items()
              if v is not None and v != old]
    for key, value in parse_data_options(data_options).items():  # null is a value, not "not given"
        old = option_in_effect(cfg, key)
        if value != old:
            differ.append(f"--data-option {key}={json.dumps(value)} (the run has {json.dumps(old)})")
    if differ:
        raise UserError(f"{path} is an existing run and these options only apply when a run is "
                        f"created: {'; '.join(differ)}; omit them to resume it, or choose a new --out")
