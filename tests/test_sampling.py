"""inverse_cdf (chunk sums with a rounding bound) gives the serial cumsum's tokens, row for
row, on flat, sharp, degenerate and NaN distributions and on thresholds placed exactly on
CDF values; and it decides almost every row itself."""
from __future__ import annotations

import pytest
import torch

import seqgan.models.sampling as sampling
from seqgan.models.sampling import inverse_cdf, serial_inverse_cdf


def thresholds(p: torch.Tensor, gen: torch.Generator) -> list[torch.Tensor]:
    """Uniforms (M, 1): random, 0, the largest float32 below 1, and ones that put u·total
    exactly on a CDF value (a tie for searchsorted)."""
    M, V = p.shape
    cdf = p.cumsum(-1)
    on_cdf = cdf.gather(1, torch.randint(V, (M, 1), generator=gen)) / cdf[:, -1:]
    return [torch.rand(M, 1, generator=gen), torch.zeros(M, 1), torch.full((M, 1), 1 - 2.0 ** -24), on_cdf]


@pytest.mark.parametrize("V", [1024, 4096, 5000])
@pytest.mark.parametrize("scale", [0.0, 0.1, 1.0, 5.0, 30.0, 200.0])
def test_the_serial_cumsums_tokens_row_for_row(V, scale):
    gen = torch.Generator().manual_seed(V + int(scale * 10))
    logits = torch.randn(192, V, generator=gen) * scale
    logits[0, 7] = 1e4  # one certain token: p is 1 there and 0 elsewhere
    logits[1, -1] = 1e4  # ... at the last index (the tail chunk when V is not a multiple of 128)
    p = torch.softmax(logits, -1)
    p[2] = float("nan")  # goes the serial way
    for u in thresholds(p, gen):
        assert torch.equal(inverse_cdf(p, u), serial_inverse_cdf(p, u))


def test_small_vocabularies_and_empty_batches_take_the_serial_path(monkeypatch):
    seen = []
    real = sampling.serial_inverse_cdf
    monkeypatch.setattr(sampling, "serial_inverse_cdf", lambda p, u: seen.append(p.shape) or real(p, u))
    p = torch.softmax(torch.randn(5, 50), -1)
    inverse_cdf(p, torch.rand(5, 1))
    inverse_cdf(torch.empty(0, 5000), torch.empty(0, 1))
    assert seen == [(5, 50), (0, 5000)]


def test_almost_every_row_is_decided_without_the_serial_sum(monkeypatch):
    """A trained generator's rows span 50 nats (probabilities down to 1e-23): chunk sums
    decide them; only rows within the rounding bound of a tie would fall back."""
    fallback = []
    real = sampling.serial_inverse_cdf
    monkeypatch.setattr(sampling, "serial_inverse_cdf", lambda p, u: fallback.append(len(p)) or real(p, u))
    gen = torch.Generator().manual_seed(0)
    p = torch.softmax(torch.randn(4096, 5000, generator=gen) * 8, -1)
    u = torch.rand(4096, 1, generator=gen)
    fallback.clear()
    got = inverse_cdf(p, u)
    assert sum(fallback) <= 4  # of 4,096
    assert torch.equal(got, real(p, u))
