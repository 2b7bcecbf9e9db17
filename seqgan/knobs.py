"""Config knobs declared once: a dataclass field with its help, range and command-line flag.

A knob is ``name: T = knob(default, "help", ...)`` on a config dataclass. Its metadata
drives everything else, so adding a knob touches one place:

- :func:`check` validates a config (nested dataclasses too) against the field types and
  the declared ranges, with one line naming the key (``config.train.rollout_num is 0,
  expected an integer >= 1``); a damaged config.json fails there, not deep in training;
- :func:`cli_knobs` lists the knobs a command exposes (``command="train"`` or
  ``"pretrain"``), from which the CLI generates its click options and the API checks its
  keyword arguments; a knob marked ``fixed`` only applies when a run is created, and
  giving another value when resuming is an error.

Ranges: ``lo``/``hi`` are inclusive bounds, ``lo_open`` makes the lower one exclusive
(learning rates: (0, 10]); ``choices`` a closed set of strings.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from typing import Any

from seqgan.errors import UserError

MAX_SEED = 2**63 - 1  # torch generators take 64-bit seeds
MAX_LR = 10.0  # Adam overflows far above this


@dataclass(frozen=True)
class Knob:
    """What a field declares beyond its type and default."""

    help: str
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    choices: tuple[str, ...] | None = None
    command: str | tuple[str, ...] | None = None  # the command(s) with this option: pretrain, train, ...
    flag: str | None = None  # the option's name without dashes [default: the field's, with -]
    fixed: bool = False  # applies only when a run is created
    negatable: bool = False  # a bool shown as --x/--no-x


def knob(default: Any = dataclasses.MISSING, help: str = "", *, factory: Any = None,
         **meta: Any) -> Any:
    """A dataclass field carrying a :class:`Knob` (see the module docstring)."""
    kw = {"default_factory": factory} if factory is not None else {"default": default}
    return dataclasses.field(metadata={"knob": Knob(help=help, **meta)}, **kw)


def knob_of(f: dataclasses.Field) -> Knob | None:
    """The :class:`Knob` of a dataclass field, or None for a field not declared with :func:`knob`."""
    return f.metadata.get("knob")


def range_words(k: Knob, integer: bool) -> str:
    """``>= 1``, ``in [0, 1]``, ``in (0, 10]``: the declared range in words."""
    lo = None if k.lo is None else (int(k.lo) if integer else k.lo)
    hi = None if k.hi is None else (int(k.hi) if integer else k.hi)
    if lo is not None and hi is not None:
        return f"in {'(' if k.lo_open else '['}{lo:g}, {hi:g}]" if not integer else f"in {lo}..{hi}"
    if lo is not None:
        return f"{'>' if k.lo_open else '>='} {lo:g}"
    return f"<= {hi:g}" if hi is not None else ""


def _type_ok(value: Any, hint: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if hint is str:
        return isinstance(value, str)
    if origin is tuple:
        return isinstance(value, tuple) and all(_type_ok(v, args[0]) for v in value)
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    return True


def _type_name(hint: Any) -> str:
    return hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")


def check_value(value: Any, k: Knob, key: str, hint: Any = None) -> Any:
    """``value`` if it is of type ``hint`` and inside the knob's range, else a UserError."""
    if hint is not None and not _type_ok(value, hint):
        raise UserError(f"{key} is {value!r}, expected {'a finite ' if hint is float else ''}"
                        f"{_type_name(hint)}")
    if value is None or isinstance(value, bool):
        return value
    if k.choices is not None and value not in k.choices:
        raise UserError(f"{key} is {value!r}; choose one of: {', '.join(k.choices)}")
    if isinstance(value, (int, float)):
        below = k.lo is not None and (value <= k.lo if k.lo_open else value < k.lo)
        above = k.hi is not None and value > k.hi
        if below or above:
            integer = isinstance(value, int) and not isinstance(k.lo, float)
            raise UserError(f"{key} is {value!r}, expected {'an integer' if integer else 'a value'} "
                            f"{range_words(k, integer)}")
    return value


def check(cfg: Any, where: str = "config") -> None:
    """Check every field of a (nested) config dataclass against its type and declared range;
    a class may add cross-field rules in a ``_check(where)`` method."""
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        v, key = getattr(cfg, f.name), f"{where}.{f.name}"
        if dataclasses.is_dataclass(v):
            check(v, key)
            continue
        k = knob_of(f) or Knob(help="")
        check_value(v, k, key, hints[f.name])
    extra = getattr(cfg, "_check", None)
    if extra is not None:
        extra(where)


def cli_knobs(cls: type, command: str, prefix: tuple[str, ...] = ()
              ) -> list[tuple[tuple[str, ...], dataclasses.Field, Knob, Any]]:
    """``[(path, field, knob, type hint)]`` of the knobs of ``cls`` (and its nested config
    dataclasses) that ``command`` exposes; ``path`` names the field from ``cls`` down."""
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            out += cli_knobs(hint, command, (*prefix, f.name))
            continue
        k = knob_of(f)
        if k is not None and command in ((k.command,) if isinstance(k.command, str) else k.command or ()):
            out.append(((*prefix, f.name), f, k, hint))
    return out


def flag_of(path: tuple[str, ...], k: Knob) -> str:
    """The knob's command-line flag without dashes: ``k.flag``, else the field's name with ``_`` as
    ``-`` and trailing ``_`` dropped (``lambda_`` -> ``lambda``)."""
    return k.flag or path[-1].rstrip("_").replace("_", "-")


def override(cfg: Any, **values: Any) -> Any:
    """A copy of a config dataclass with the non-None ``values`` replaced."""
    values = {k: v for k, v in values.items() if v is not None}
    return dataclasses.replace(cfg, **values) if values else cfg


def check_seed(seed: int, name: str = "--seed") -> int:
    """A seed every random stream accepts: an integer in 0..2**63-1."""
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        raise UserError(f"{name} must be an integer in 0..{MAX_SEED}; got {seed}")
    return seed
