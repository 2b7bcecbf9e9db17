"""Shared fixtures: seeded torch, the shared data folder, tiny runs."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# Tiny models: one thread avoids OpenMP oversubscription (2-core CI; subprocesses too)
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(1234)
    yield


@pytest.fixture
def shared_data() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared data folder {SHARED} not present")
    return SHARED


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def train_quick_run(run: Path) -> Path:
    """A tiny oracle run: 1 MLE epoch, 1 discriminator round, 1 adversarial epoch."""
    from click.testing import CliRunner

    from seqgan.cli import main

    for args in (["pretrain", "--data", "oracle", "--preset", "quick", "--out", run, "--epochs", "1",
                  "--device", "cpu"],
                 ["train", run, "--epochs", "1", "--d-pretrain-steps", "1", "--device", "cpu"]):
        r = CliRunner().invoke(main, [str(a) for a in args])
        assert r.exit_code == 0, r.output
    return run


@pytest.fixture(scope="session")
def quick_run_factory():
    return train_quick_run


@pytest.fixture
def server(tmp_path):
    """A fork server for the CLI (see tests/forkserver.py), closed after the test."""
    from forkserver import Server

    s = Server(tmp_path)
    yield s
    s.close()

