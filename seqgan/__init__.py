"""seqgan: sequence GANs (SeqGAN, ORGAN) for text and music.

Installed, `objectives/` is `seqgan.objectives` and `datasets/` is `seqgan.datasets`
(setuptools ``package-dir``). Run from a source checkout without installing, the
checkout root is added to this package's path so the same names resolve.
"""
from __future__ import annotations

from pathlib import Path as _Path

__version__ = "0.1.0"

_root = _Path(__file__).resolve().parent.parent
if (_root / "pyproject.toml").is_file() and (_root / "datasets" / "__init__.py").is_file():
    __path__.append(str(_root))  # type: ignore[name-defined]  # checkout: seqgan.datasets -> ./datasets
