"""Discriminator training on the CPU: dropout masks, the compiled step, learning."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from seqgan.models.discriminator import DiscriminatorConfig
from seqgan.training.d_training import DiscriminatorTrainer
from seqgan.models.discriminator import Discriminator

SMALL = DiscriminatorConfig(emb_dim=8, filter_sizes=(1, 2, 4, 5, 9), num_filters=(3, 2, 4, 2, 3))


def test_dropout_mask_is_nn_dropouts_distribution():
    d = Discriminator(replace(SMALL, dropout=0.25), 30, 12).train()
    torch.manual_seed(0)
    keep = d.dropout_mask(20_000)  # (n, F)
    assert keep.shape == (20_000, d.n_features)
    assert keep.unique().tolist() == pytest.approx([0.0, 1 / 0.75])
    # 280,000 Bernoulli(0.25) draws: the zero fraction is within 5 standard errors of p
    assert (keep == 0).float().mean().item() == pytest.approx(0.25, abs=5 * (0.25 * 0.75 / 280_000) ** 0.5)
    assert d.eval().dropout_mask(4) is None
    assert Discriminator(replace(SMALL, dropout=0.0), 30, 12).train().dropout_mask(4) is None
    assert Discriminator(replace(SMALL, dropout=1.0), 30, 12).train().dropout_mask(4).abs().sum() == 0


def test_forward_applies_a_given_mask_only_while_training():
    d = Discriminator(SMALL, 30, 12)
    x = torch.randint(0, 30, (5, 12))
    keep = torch.zeros(5, d.n_features)
    keep[:, ::2] = 2.0
    d.train()
    f = d.features(x)
    tau = torch.sigmoid(d.highway_t(f))
    h = tau * torch.relu(d.highway_h(f)) + (1 - tau) * f
    assert torch.allclose(d(x, keep), d.out(h * keep), atol=1e-6)
    d.eval()
    assert torch.allclose(d(x, keep), d.out(h), atol=1e-6)


@pytest.mark.parametrize("impl", ["grouped", "fused"])
def test_compiled_step_traces_whole_and_equals_eager(impl):
    """The function the trainer compiles on GPUs traces into one graph (no breaks, so no
    extra kernels) and gives the eager loss, accuracy count and gradients. The backend here
    is AOTAutograd without code generation: the tracing is what the CPU can check."""
    torch.manual_seed(0)
    d = Discriminator(replace(SMALL, impl=impl), 30, 12).train()
    tr = DiscriminatorTrainer(d, 1e-3, 8)
    compiled = torch.compile(tr._forward_eager, backend="aot_eager", fullgraph=True, dynamic=False)
    x, y = torch.randint(0, 30, (8, 12)), torch.tensor([0, 1, 1, 0, 1, 0, 0, 1])
    w = torch.tensor([1.0] * 6 + [0.0] * 2)  # a padded last batch
    keep = d.dropout_mask(8)
    grads = []
    for fn in (compiled, tr._forward_eager):
        d.zero_grad(set_to_none=True)
        loss, correct = fn(x, y, w, keep)
        loss.backward()
        grads.append((loss.item(), correct.item(), [p.grad.clone() for p in d.parameters()]))
    (l1, c1, g1), (l2, c2, g2) = grads
    assert l1 == pytest.approx(l2, rel=1e-6) and c1 == c2
    for a, b in zip(g1, g2):
        assert torch.allclose(a, b, atol=1e-6)


def test_training_separates_real_from_fake_and_counts_accuracy():
    """Positives use tokens 0..14, negatives 15..29: a few epochs reach high accuracy,
    and the reported accuracy is the mean over every row of every epoch."""
    torch.manual_seed(0)
    d = Discriminator(SMALL, 30, 12)
    tr = DiscriminatorTrainer(d, 1e-2, 16)
    pos, neg = torch.randint(0, 15, (100, 12)), torch.randint(15, 30, (90, 12))
    first = tr.train_epochs(pos, neg, 1)
    later = tr.train_epochs(pos, neg, 3)
    assert later["d_loss"] < first["d_loss"]
    assert later["d_acc"] > 0.95
    p = d.prob_real(torch.cat([pos, neg]))
    assert (p[:100] > 0.5).float().mean() > 0.95 and (p[100:] < 0.5).float().mean() > 0.95
