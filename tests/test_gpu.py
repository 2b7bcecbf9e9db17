"""GPU-only checks (skipped without CUDA): the fast paths equal the plain ones."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from seqgan.models.discriminator import DiscriminatorConfig
from seqgan.models.generator import GeneratorConfig
from seqgan.training.d_training import DiscriminatorTrainer
from seqgan.models.discriminator import Discriminator
from seqgan.models.generator import Generator
from seqgan.training.rollout import RolloutPolicy

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("impl", ["fused", "grouped"])
def test_matmul_impls_equal_conv_on_cuda(impl):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    d = Discriminator(replace(DiscriminatorConfig(), impl="conv"), 5000, 20).cuda().eval()
    f = Discriminator(replace(DiscriminatorConfig(), impl=impl), 5000, 20).cuda().eval()
    f.load_state_dict(d.state_dict())
    x = torch.randint(0, 5000, (256, 20), device="cuda")
    assert torch.allclose(d(x), f(x), atol=1e-4)


@pytest.mark.parametrize("impl,compile", [("fused", False), ("grouped", True)])
def test_cuda_graph_training_equals_eager(impl, compile):
    """Same init, same shuffles, dropout off: the graph path ends with the same weights."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    cfg = replace(DiscriminatorConfig(), dropout=0.0, impl=impl)
    torch.manual_seed(0)
    a = Discriminator(replace(cfg, impl="conv"), 500, 20).cuda()
    b = Discriminator(cfg, 500, 20).cuda()
    b.load_state_dict(a.state_dict())
    init = [p.detach().clone() for p in a.parameters()]
    pos = torch.randint(0, 500, (1000, 20), device="cuda")
    neg = torch.randint(0, 500, (1000, 20), device="cuda")
    ta = DiscriminatorTrainer(a, 1e-4, 64, cuda_graph=False)
    tb = DiscriminatorTrainer(b, 1e-4, 64, cuda_graph=True, compile=compile, log=pytest.fail)
    torch.manual_seed(5)
    ma = ta.train_epochs(pos, neg, 2)
    torch.manual_seed(5)
    mb = tb.train_epochs(pos, neg, 2)
    # Adam turns float-rounding noise in tiny gradients (atomic adds in the embedding's
    # backward) into lr-sized steps, so compare the change from init, not bitwise weights
    for p0, pa, pb in zip(init, a.parameters(), b.parameters()):
        moved = (pa - p0).norm()
        assert (pa - pb).norm() <= 0.05 * moved + 1e-6, ((pa - pb).norm(), moved)
    assert ma["d_acc"] == pytest.approx(mb["d_acc"], abs=5e-3)
    assert ma["d_loss"] == pytest.approx(mb["d_loss"], rel=1e-3)


def test_compiled_graph_draws_fresh_dropout_each_replay():
    """Replays of the captured (compiled) step on one fixed batch with lr 0 give different
    losses only if each replay draws a new dropout mask."""
    d = Discriminator(DiscriminatorConfig(), 500, 20).cuda()
    tr = DiscriminatorTrainer(d, 0.0, 64, cuda_graph=True, compile=True, log=pytest.fail)
    data = torch.randint(0, 500, (64, 20), device="cuda")
    tr.train_epochs(data, data, 1)  # captures a graph of 2 batches
    tr._x.copy_(data.expand(2, 64, 20))
    tr._y.fill_(1)
    losses = []
    for _ in range(4):
        tr._i.zero_()
        tr._loss_sum.zero_()
        tr._graph.replay()
        losses.append(tr._loss_sum.item())
    assert len(set(losses)) == 4, losses
    d.eval()
    with torch.no_grad():
        assert d.loss(data, tr._y[0])[0].item() not in losses  # no dropout in eval mode


def test_rollout_on_cuda():
    g = Generator(GeneratorConfig()).cuda()
    seqs = g.sample(64)
    score = lambda t, _g: (t % 7 == 0).float().mean(1)  # noqa: E731
    q = RolloutPolicy(g).rewards(seqs, score, 16)
    assert q.shape == (64, 20) and q.is_cuda
    assert torch.equal(q[:, -1], score(seqs, 64))


def test_cuda_graph_follows_new_optimizer_and_learning_rate():
    """Coevolution resets D's optimizer (an adopted neighbour) and mutates its rate between
    epochs: the captured graph must step the current Adam at the current rate, like eager."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    cfg = replace(DiscriminatorConfig(), dropout=0.0, impl="conv")
    torch.manual_seed(0)
    a = Discriminator(cfg, 500, 20).cuda()
    b = Discriminator(cfg, 500, 20).cuda()
    b.load_state_dict(a.state_dict())
    pos = torch.randint(0, 500, (640, 20), device="cuda")
    neg = torch.randint(0, 500, (640, 20), device="cuda")
    ta = DiscriminatorTrainer(a, 1e-4, 64, cuda_graph=False)
    tb = DiscriminatorTrainer(b, 1e-4, 64, cuda_graph=True)
    for change in (None, "lr", "reset"):
        for t in (ta, tb):
            if change == "lr":
                for g in t.opt.param_groups:
                    g["lr"] = 0.0  # a graph still stepping at 1e-4 would move the weights
            elif change == "reset":
                t.reset_optimizer(3e-3)
        before = [p.detach().clone() for p in b.parameters()]
        torch.manual_seed(7)
        ta.train_epochs(pos, neg, 1)
        torch.manual_seed(7)
        tb.train_epochs(pos, neg, 1)
        if change == "lr":
            assert all(torch.equal(p0, p) for p0, p in zip(before, b.parameters()))
        for pa, pb in zip(a.parameters(), b.parameters()):
            assert torch.allclose(pa, pb, atol=1e-4, rtol=1e-3)
