"""seqgan: sequence GANs (SeqGAN, ORGAN) for text and music.

The Python API (:mod:`seqgan.api`)::

    import seqgan
    run = seqgan.create_run("runs/demo", data="oracle", preset="quick")
    run.pretrain(); run.train(epochs=5); print(run.sample(3))

``create_run``, ``open_run``, ``Run`` and ``UserError`` are loaded on first use, so that
``import seqgan`` (and ``seqgan --help``) stays cheap. Installed, `objectives/` is
`seqgan.objectives` and `datasets/` is `seqgan.datasets` (setuptools ``package-dir``). Run
from a source checkout without installing, the checkout root is added to this package's
path so the same names resolve.
"""
from __future__ import annotations

from pathlib import Path as _Path

from seqgan.errors import UserError
from seqgan.version import __version__

__all__ = ["create_run", "open_run", "Run", "UserError", "__version__"]

_root = _Path(__file__).resolve().parent.parent
if (_root / "pyproject.toml").is_file() and (_root / "datasets" / "__init__.py").is_file():
    __path__.append(str(_root))  # type: ignore[name-defined]  # checkout: seqgan.datasets -> ./datasets


def __getattr__(name: str):
    """The API's names, imported on first use (PEP 562): torch loads only when needed."""
    if name in ("create_run", "open_run", "Run"):
        from seqgan import api

        return getattr(api, name)
    raise AttributeError(f"module 'seqgan' has no attribute {name!r}")
