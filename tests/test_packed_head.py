"""The discriminator's head with oneDNN-packed highway weights (seqgan/models/packed_head.py):
equal to the plain head to float rounding, used only where it pays, a snapshot of the
weights it was packed from."""
from __future__ import annotations

import pytest
import torch

import seqgan.models.packed_head as ph
from seqgan.models.discriminator import Discriminator, DiscriminatorConfig

T, V = 6, 20
# 550 features: above MIN_PACKED_FEATURES, small enough for a quick test
BIG = DiscriminatorConfig(emb_dim=8, filter_sizes=(1, 2, 3), num_filters=(200, 200, 150))
SMALL = DiscriminatorConfig(emb_dim=8, filter_sizes=(1, 2, 3), num_filters=(20, 20, 15))


def disc(cfg=BIG, seed=0):
    torch.manual_seed(seed)
    d = Discriminator(cfg, V, T).eval()
    with torch.no_grad():  # a trained-looking highway: gates and ReLUs on both sides
        d.highway_t.bias.normal_(0, 1)
        d.highway_h.bias.normal_(0, 0.5)
    return d


def packed(d):
    return ph.packed_head(d.highway_t, d.highway_h, d.out)


@pytest.mark.skipif(packed(disc()) is None, reason="this PyTorch build has no oneDNN linear")
@pytest.mark.parametrize("rows", [1, 7, 256, 300])
def test_packed_head_equals_the_plain_head(rows):
    d = disc()
    head = packed(d)
    x = torch.rand(rows, d.n_features) * 2  # pooled ReLU features are >= 0
    with torch.no_grad():
        want = d.head(x)
        got = head(x)
    assert got.shape == (rows, 2)
    assert torch.allclose(got, want, atol=1e-5, rtol=1e-5)
    # not a trivially equal head: the highway changes the logits
    with torch.no_grad():
        assert not torch.allclose(want, d.out(x), atol=1e-3)


@pytest.mark.skipif(packed(disc()) is None, reason="this PyTorch build has no oneDNN linear")
def test_rewards_path_packs_the_head_where_tables_pay_and_scores_as_plain():
    d = disc().train()  # scoring switches to eval
    seqs = torch.randint(0, V, (4, T))
    shared = d.prefix_windows(seqs, tables=True)
    assert isinstance(shared.head, ph.PackedHead)
    assert d.prefix_windows(seqs, tables=False).head is None
    for t in range(T + 1):
        comps = torch.randint(0, V, (12, T))
        comps[:, :t] = seqs[:, :t].repeat(3, 1)
        want = d.prob_real(comps)
        assert torch.allclose(d.prefix_verdicts(shared, comps, t), want, atol=1e-5), t
    assert d.training


@pytest.mark.skipif(packed(disc()) is None, reason="this PyTorch build has no oneDNN linear")
def test_packed_head_is_a_snapshot_of_the_weights():
    d = disc()
    head = packed(d)
    x = torch.rand(5, d.n_features)
    with torch.no_grad():
        before = head(x)
        for p in (d.highway_t.weight, d.highway_t.bias, d.highway_h.weight, d.highway_h.bias,
                  d.out.weight, d.out.bias):
            p.mul_(-2.0)
        assert torch.equal(head(x), before)
        assert torch.allclose(packed(d)(x), d.head(x), atol=1e-4)


def test_packed_head_declined_where_it_does_not_pay_or_cannot_run(monkeypatch):
    assert packed(disc(SMALL)) is None  # 55 features: addmm is faster there
    d = disc()
    assert packed(d.double()) is None
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
    assert packed(disc()) is None
    monkeypatch.undo()

    def broken(*args, **kwargs):
        raise RuntimeError("no oneDNN kernel for this CPU")
    monkeypatch.setattr(ph.PackedHead, "__init__", broken)
    assert packed(disc()) is None
    d = disc()  # and the rewards path falls back to the plain head
    assert d.prefix_windows(torch.randint(0, V, (2, T)), tables=True).head is None
