"""A :class:`~seqgan.training.state.TrainingState` as checkpoint files, and back.

Files (safetensors): ``generator``, ``optim-g-mle``, ``rng`` always; ``discriminator`` and
``optim-d`` once D exists; ``rollout`` and ``optim-g-adv`` once adversarial training began.
Counters go to ``state.json`` (see :mod:`seqgan.runs.checkpoints`).
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from seqgan.errors import UserError, one_line
from seqgan.files import load_tensors
from seqgan.runs.checkpoints import PHASES, Files, load_optimizer, optimizer_tensors, restore_rng, \
    rng_tensors
from seqgan.training.state import TrainingState


def load_weights(model: nn.Module, tensors: dict[str, torch.Tensor], path: Path | str,
                 what: str = "this run's model") -> nn.Module:
    """``model.load_state_dict(tensors)`` with a one-line UserError naming ``path`` on a
    mismatch (the one place weights are loaded into a model)."""
    try:
        model.load_state_dict(tensors)
    except RuntimeError as e:
        raise UserError(f"{path}: does not fit {what} ({one_line(e)})") from None
    return model


def state_files(st: TrainingState) -> Files:
    """The files of a checkpoint of ``st`` ({name: (tensors, metadata)})."""
    files: Files = {
        "generator": (st.G.state_dict(), None),
        "optim-g-mle": optimizer_tensors(st.opt_mle),
        "rng": (rng_tensors(), None),
    }
    if st.D is not None:
        files["discriminator"] = (st.D.state_dict(), None)
        files["optim-d"] = optimizer_tensors(st.d_trainer.opt)
    if st.rollout is not None:
        files["rollout"] = (st.rollout.model.state_dict(), None)
        files["optim-g-adv"] = optimizer_tensors(st.opt_adv)
    return files


def restore_state(st: TrainingState, counters: dict, paths: dict[str, Path]) -> None:
    """Load a checkpoint's files and counters into ``st`` (creating D / G_β as needed)."""
    st.counters.update({k: counters[k] for k in st.counters if k in counters})
    if st.counters["phase"] not in PHASES:
        raise UserError(f"{paths['generator'].parent}/state.json: unknown phase {st.counters['phase']!r}")
    load_weights(st.G, load_tensors(paths["generator"]), paths["generator"], "this run's generator")
    load_optimizer(st.opt_mle, paths["optim-g-mle"])
    if "discriminator" in paths:
        st.ensure_adversarial(need_d=True)
        load_weights(st.D, load_tensors(paths["discriminator"]), paths["discriminator"], "this run's discriminator")
        load_optimizer(st.d_trainer.opt, paths["optim-d"])
    if "rollout" in paths:
        st.ensure_adversarial(need_d=False)
        load_weights(st.rollout.model, load_tensors(paths["rollout"]), paths["rollout"], "this run's generator")
        load_optimizer(st.opt_adv, paths["optim-g-adv"])
    restore_rng(load_tensors(paths["rng"]))
