"""ORGAN objectives: pure, batched, non-differentiable rewards O(Y) in [0, 1].

An objective is a callable ``(tokens: LongTensor (B, T), vocab: Vocabulary) ->
FloatTensor (B,)`` with values in [0, 1], computed on the tokens' device. It is found by
:func:`get_objective` from

1. the built-in registry (``@register_objective("tonality")``; music objectives live in
   :mod:`seqgan.objectives.music`),
2. plug-ins: the entry-point group ``seqgan.objectives`` of installed packages,
3. ``module:function`` — imported only when the user allows it (given on the command
   line), never because a run directory says so.

An objective whose value depends on the rest of its batch (ORGAN's min-max rescaled
ones) sets ``fn.batch_relative = True`` and takes a keyword ``group_size``: the trainer
then scores the Monte Carlo completions as consecutive groups of that many rows, each
group one batch, so the reward does not depend on how scoring is chunked.

A plain per-sequence Python function ``f(ids: list[int], vocab) -> float`` becomes an
objective through :func:`per_sequence` (slower: it runs on the CPU, one sequence at a time).
"""
from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any, Callable

import torch

from seqgan.errors import UserError, one_line

Objective = Callable[[torch.Tensor, Any], torch.Tensor]
OBJECTIVES: dict[str, Objective] = {}
BUILTIN_MODULES = ("seqgan.objectives.music", "seqgan.objectives.text")
ENTRY_POINT_GROUP = "seqgan.objectives"


def register_objective(name: str) -> Callable[[Objective], Objective]:
    """Decorator: register a batched objective under ``name``."""

    def deco(fn: Objective) -> Objective:
        """Register ``fn`` under ``name``, set its ``objective_name`` and return it."""
        OBJECTIVES[name] = fn
        fn.objective_name = name  # type: ignore[attr-defined]
        return fn

    return deco


def _load_builtins() -> None:
    for mod in BUILTIN_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:  # the module exists but a dependency of it is missing
                raise


def _plugins() -> dict[str, Any]:
    try:
        return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    except Exception:  # broken metadata of some unrelated package
        return {}


def available_objectives() -> list[str]:
    """The sorted names of the built-in and plug-in objectives (not ``module:function``)."""
    _load_builtins()
    return sorted(set(OBJECTIVES) | set(_plugins()))


def get_objective(name: str, allow_import: bool = False) -> Objective:
    """The objective called ``name``; a clear error listing valid names if there is none.

    ``module:function`` is imported only with ``allow_import=True`` (the CLI sets it when
    the user typed the name on the command line).
    """
    if ":" in name:
        if not allow_import:
            raise UserError(f"objective {name!r} would import and run code from module "
                            f"{name.partition(':')[0]!r}; it is imported only when you name it "
                            f"yourself: pass --objective {name} (in Python: objective={name!r})")
        module, _, attr = name.partition(":")
        if not module or not attr:
            raise UserError(f"objective {name!r}: expected module:function, e.g. mypkg.objectives:syncopation")
        fn = getattr(_import_plugin(name, module), attr, None)
        if fn is None:
            raise UserError(f"objective {name!r}: module {module!r} has no {attr!r}")
        if not callable(fn):
            raise UserError(f"objective {name!r} is not callable")
        return fn
    _load_builtins()
    if name in OBJECTIVES:
        return OBJECTIVES[name]
    plugins = _plugins()
    if name in plugins:
        try:
            return plugins[name].load()
        except Exception as e:
            raise UserError(f"objective {name!r}: loading plug-in {plugins[name].value!r} failed: "
                            f"{type(e).__name__}: {one_line(e)}") from None
    raise UserError(f"unknown objective {name!r}; available: {', '.join(available_objectives())} "
                    f"(or module:function)")


def _import_plugin(name: str, module: str) -> Any:
    """Import a ``module:function`` objective's module; every failure is one line."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and e.name != module and not module.startswith(e.name + "."):
            raise UserError(f"objective {name!r}: module {module!r} needs {e.name!r}, which is not "
                            f"installed") from None
        raise UserError(f"objective {name!r}: cannot import module {module!r} (is it installed or "
                        f"on PYTHONPATH?)") from None
    except Exception as e:  # SyntaxError, an ImportError or any error raised at import time
        raise UserError(f"objective {name!r}: importing {module!r} failed: {type(e).__name__}: "
                        f"{one_line(e)}") from None


def per_sequence(fn: Callable[[list[int], Any], float]) -> Objective:
    """Adapt a per-sequence Python function into a batched objective (CPU, slower)."""

    def batched(tokens: torch.Tensor, vocab: Any) -> torch.Tensor:
        """``fn`` of each row of ``tokens`` (B, T) as a list of ids: float32 (B,) on their device."""
        vals = [float(fn(row, vocab)) for row in tokens.tolist()]
        return torch.tensor(vals, dtype=torch.float32, device=tokens.device)

    batched.__name__ = getattr(fn, "__name__", "objective")
    batched.__doc__ = fn.__doc__
    return batched


def check_objective_output(values: Any, batch: int, name: str) -> torch.Tensor:
    """Validate an objective's output: a finite (B,) tensor in [0, 1], else a clear error."""
    if not torch.is_tensor(values):
        raise UserError(f"objective {name!r} returned {type(values).__name__}, expected a tensor")
    if values.shape != (batch,):
        raise UserError(f"objective {name!r} returned shape {tuple(values.shape)}, expected ({batch},)")
    values = values.float()
    if not torch.isfinite(values).all():
        raise UserError(f"objective {name!r} returned NaN or infinite values")
    if (values < 0).any() or (values > 1).any():
        lo, hi = float(values.min()), float(values.max())
        raise UserError(f"objective {name!r} returned values outside [0, 1] (min {lo:.4g}, max {hi:.4g})")
    return values
