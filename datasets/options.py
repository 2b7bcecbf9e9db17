"""Typed checks of a data source's options (``DataConfig.options``), shared by the sources.

Options arrive from ``--data-option KEY=VALUE`` with VALUE parsed as JSON (kept as a
string when that fails), so ``max_tunes=abc`` gives ``"abc"``, ``max_tunes=2.5`` gives
``2.5`` and ``lowercase=no`` gives ``"no"``. A source declares its defaults (a dict) and one
:class:`Opt` per option; :func:`check_options` merges the given options over the defaults,
refuses unknown names (listing the valid ones) and checks every value, raising one
:class:`~seqgan.errors.UserError` that names the option, says what it must be and shows
what it got::

    text option max_vocab must be an integer >= 1 or null, got 'abc'

Rules: an integer is a JSON integer (not ``true``, not ``2.5``); a number is an integer or
a float, finite (not ``true``); a boolean is only ``true`` or ``false``; ``null`` is
accepted only where the option says so. Checked values are returned unchanged.

Importing this module loads the ``seqgan.datasets`` package (which imports no torch);
the music parser's worker processes never import it.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from seqgan.errors import UserError

__all__ = ["Opt", "integer", "number", "boolean", "choice", "string", "int_pair", "either",
           "check_options"]


@dataclass(frozen=True)
class Opt:
    """How one option is checked: ``ok(value)`` and the words for what it must be."""

    ok: Callable[[Any], bool]
    expect: str  # completes "must be ...", e.g. "an integer >= 1"
    null: bool = False  # ``None`` (JSON null) is accepted too

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` passes: None only where ``null`` is allowed, else ``ok(value)``."""
        return (value is None and self.null) or (value is not None and self.ok(value))

    def wants(self) -> str:
        """What a value must be, in words (``... or null`` where null is accepted)."""
        return f"{self.expect} or null" if self.null else self.expect


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


def _bounds(lo: float | None, hi: float | None, lo_open: bool = False,
            hi_open: bool = False) -> str:
    if lo is not None and hi is not None:
        return f"in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{'>' if lo_open else '>='} {lo}"
    if hi is not None:
        return f"{'<' if hi_open else '<='} {hi}"
    return ""


def _within(v: float, lo: float | None, hi: float | None, lo_open: bool = False,
            hi_open: bool = False) -> bool:
    return ((lo is None or (v > lo if lo_open else v >= lo))
            and (hi is None or (v < hi if hi_open else v <= hi)))


def integer(lo: int | None = None, hi: int | None = None, null: bool = False) -> Opt:
    """A JSON integer in ``lo..hi`` (either bound may be left out)."""
    where = f"in {lo}..{hi}" if lo is not None and hi is not None else _bounds(lo, hi)
    return Opt(lambda v: _is_int(v) and _within(v, lo, hi), f"an integer {where}".rstrip(), null)


def number(lo: float | None = None, hi: float | None = None, lo_open: bool = False,
           hi_open: bool = False, null: bool = False) -> Opt:
    """A finite number (integer or float) between ``lo`` and ``hi``, each bound open or closed."""
    return Opt(lambda v: _is_number(v) and _within(v, lo, hi, lo_open, hi_open),
               f"a number {_bounds(lo, hi, lo_open, hi_open)}".rstrip(), null)


def boolean() -> Opt:
    """JSON ``true`` or ``false`` only (not ``"no"``, not ``1``)."""
    return Opt(lambda v: isinstance(v, bool), "true or false")


def choice(names: Sequence[str]) -> Opt:
    """One of the given names."""
    names = tuple(names)
    return Opt(lambda v: isinstance(v, str) and v in names, f"one of {', '.join(names)}")


def string(null: bool = False) -> Opt:
    """A non-empty string."""
    return Opt(lambda v: isinstance(v, str) and v != "", "a non-empty string", null)


def int_pair(lo: int, hi: int, min_span: int = 0, what: str = "integers",
             null: bool = False) -> Opt:
    """``[a, b]``: two integers in ``lo..hi`` with ``b - a >= min_span``."""
    def ok(v: Any) -> bool:
        """``[a, b]`` (list or tuple) of integers with ``lo <= a``, ``b <= hi`` and ``b - a >= min_span``."""
        return (isinstance(v, (list, tuple)) and len(v) == 2 and all(_is_int(x) for x in v)
                and lo <= v[0] and v[1] <= hi and v[1] - v[0] >= min_span)

    span = f" with hi - lo >= {min_span}" if min_span else " with lo <= hi"
    return Opt(ok, f"[lo, hi]: two {what} in {lo}..{hi}{span}", null)


def either(*alternatives: Opt, null: bool = False) -> Opt:
    """A value any of the alternatives accepts."""
    return Opt(lambda v: any(a.accepts(v) for a in alternatives),
               " or ".join(a.wants() for a in alternatives), null)


def _show(value: Any, limit: int = 80) -> str:
    """A value as the user typed it: strings quoted, the rest as JSON (``true``, ``[1]``);
    one longer than ``limit`` characters is cut, saying how long it was."""
    if isinstance(value, str):
        shown = repr(value)
    else:
        try:
            shown = json.dumps(value)
        except (TypeError, ValueError):
            shown = repr(value)
    return shown if len(shown) <= limit else f"{shown[:limit - 20]}... ({len(shown):,} characters)"


def check_options(what: str, given: Mapping[str, Any] | None, defaults: Mapping[str, Any],
                  spec: Mapping[str, Opt]) -> dict[str, Any]:
    """``defaults`` updated with ``given``, every value checked against ``spec``.

    ``what`` names the source in messages (``"text"``, ``"music"``). Raises
    :class:`UserError` for an unknown name (listing the valid ones) or a bad value (naming
    the option, what it must be and what it got).
    """
    assert set(spec) == set(defaults), "every option needs a default and a check"
    given = dict(given or {})
    unknown = sorted(set(given) - set(defaults), key=str)
    if unknown:
        raise UserError(f"unknown {what} data option(s) {', '.join(map(str, unknown))}; valid: "
                        f"{', '.join(defaults)} (an unknown option is an error, never ignored)")
    opts = {**defaults, **given}
    for name, value in given.items():
        if not spec[name].accepts(value):
            raise UserError(f"{what} option {name} must be {spec[name].wants()}, "
                            f"got {_show(value)}")
    return opts
