"""Generator, oracle and discriminator: shapes, determinism, golden references."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from seqgan.models.discriminator import DiscriminatorConfig
from seqgan.models.generator import GeneratorConfig
from seqgan.models.discriminator import Discriminator
from seqgan.errors import UserError
from seqgan.models.generator import Generator
from seqgan.models.oracle import Oracle


def small_gen(**kw):
    return Generator(GeneratorConfig(vocab_size=30, emb_dim=8, hidden_dim=12, seq_len=7, **kw))


def test_generator_shapes_and_sampling_determinism():
    g = small_gen()
    x = g.sample(5, generator=torch.Generator().manual_seed(3))
    assert x.shape == (5, 7) and x.dtype == torch.long
    assert ((x >= 0) & (x < 30)).all()
    y = g.sample(5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(x, y)
    assert g(x).shape == (5, 7, 30)
    lp = g.log_probs(x)
    assert lp.shape == (5, 7) and (lp <= 0).all()


def test_step_matches_fused_lstm_forward():
    g = small_gen()
    x = g.sample(4)
    logits = g(x)  # fused nn.LSTM
    h, c = g.init_state(4)
    inp = g.inputs_for(x)
    for t in range(7):
        h, c, lt = g.step(inp[:, t], h, c)
        assert torch.allclose(lt, logits[:, t], atol=1e-5)
    hs, cs = g.prefix_states(x)
    assert torch.allclose(hs[:, -1], h, atol=1e-6) and torch.allclose(cs[:, -1], c, atol=1e-6)


def test_sampling_follows_model_distribution():
    """Empirical first-token frequencies match softmax of the first logits."""
    g = small_gen()
    n = 40_000
    x = g.sample(n, generator=torch.Generator().manual_seed(0))
    h, c = g.init_state(1)
    _, _, logits = g.step(torch.tensor([0]), h, c)
    p = torch.softmax(logits, 1)[0]
    emp = torch.bincount(x[:, 0], minlength=30).float() / n
    assert (emp - p).abs().max() < 0.01


def float64_oracle_logprob(params: dict, seqs: np.ndarray) -> np.ndarray:
    """Independent re-implementation of the README's recurrence in float64 numpy."""
    P = {k: v.astype(np.float64) for k, v in params.items()}
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    n, T = seqs.shape
    H = P["Ui"].shape[0]
    h = np.zeros((n, H))
    c = np.zeros((n, H))
    x_tok = np.zeros(n, dtype=int)
    out = np.zeros((n, T))
    for t in range(T):
        x = P["embedding"][x_tok]
        i = sig(x @ P["Wi"] + h @ P["Ui"] + P["bi"])
        f = sig(x @ P["Wf"] + h @ P["Uf"] + P["bf"])
        o = sig(x @ P["Wog"] + h @ P["Uog"] + P["bog"])
        ct = np.tanh(x @ P["Wc"] + h @ P["Uc"] + P["bc"])
        c = f * c + i * ct
        h = o * np.tanh(c)
        logits = h @ P["Wo"] + P["bo"]
        m = logits.max(1, keepdims=True)
        logp = logits - m - np.log(np.exp(logits - m).sum(1, keepdims=True))
        out[:, t] = logp[np.arange(n), seqs[:, t]]
        x_tok = seqs[:, t]
    return out


def test_published_oracle_matches_float64_reference(shared_data):
    path = shared_data / "seqgan_oracle" / "params.npz"
    oracle = Oracle.from_npz(path)
    assert (oracle.vocab_size, oracle.emb_dim, oracle.hidden_dim) == (5000, 32, 32)
    seqs = oracle.sample(64, generator=torch.Generator().manual_seed(0))
    with np.load(path) as z:
        ref = float64_oracle_logprob({k: z[k] for k in z.files}, seqs.numpy())
    ours = oracle.log_prob(seqs).double().numpy()
    assert np.abs(ours - ref).max() < 1e-4


def test_random_oracle_matches_float64_reference():
    oracle = Oracle.random(40, 6, 5, seq_len=9, seed=7)
    seqs = oracle.sample(50, generator=torch.Generator().manual_seed(1))
    ref = float64_oracle_logprob({k: v.numpy() for k, v in oracle.params().items()}, seqs.numpy())
    assert np.abs(oracle.log_prob(seqs).double().numpy() - ref).max() < 1e-4
    assert oracle.nll(seqs) == pytest.approx(-ref.mean(), abs=1e-5)


def test_oracle_samples_score_far_below_untrained_generator():
    oracle = Oracle.random(50, 16, 16, seq_len=10, seed=0)
    own = oracle.nll(oracle.sample(2000, generator=torch.Generator().manual_seed(0)))
    g = Generator(GeneratorConfig(vocab_size=50, emb_dim=16, hidden_dim=16, seq_len=10))
    untrained = oracle.nll(g.sample(2000))
    assert own < untrained - 1.0


def test_oracle_npz_errors(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        Oracle.from_npz(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip at all")
    with pytest.raises(UserError, match="not a readable .npz"):
        Oracle.from_npz(bad)
    np.savez(tmp_path / "partial.npz", embedding=np.zeros((5, 3), np.float32))
    with pytest.raises(UserError, match="lack"):
        Oracle.from_npz(tmp_path / "partial.npz")


@pytest.mark.parametrize("impl", ["fused", "grouped"])
@pytest.mark.parametrize("T", [20, 7])
def test_matmul_discriminators_equal_conv(T, impl):
    cfg = DiscriminatorConfig(emb_dim=16, num_filters=tuple(n // 10 for n in DiscriminatorConfig().num_filters))
    d_conv = Discriminator(replace(cfg, impl="conv"), 40, T).eval()
    d_mm = Discriminator(replace(cfg, impl=impl), 40, T).eval()
    d_mm.load_state_dict(d_conv.state_dict())
    x = torch.randint(0, 40, (9, T))
    assert torch.allclose(d_conv.features(x), d_mm.features(x), atol=1e-5)
    assert torch.allclose(d_conv(x), d_mm(x), atol=1e-5)
    assert d_conv.filter_sizes == tuple(k for k in cfg.filter_sizes if k <= T)


def test_grouped_gradients_equal_conv_and_leave_padding_at_zero():
    cfg = DiscriminatorConfig(emb_dim=8, filter_sizes=(1, 2, 4, 5, 9), num_filters=(3, 2, 4, 2, 3),
                              dropout=0.0)
    a = Discriminator(replace(cfg, impl="conv"), 30, 12)
    b = Discriminator(replace(cfg, impl="grouped"), 30, 12)
    b.load_state_dict(a.state_dict())
    x, y = torch.randint(0, 30, (6, 12)), torch.tensor([0, 1, 1, 0, 1, 0])
    a.loss(x, y)[0].backward()
    b.loss(x, y)[0].backward()
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        assert torch.allclose(pa.grad, pb.grad, atol=1e-5), name
    # weights outside each filter's width get no gradient, so Adam keeps them at zero
    assert (b.bank_weight.grad * (1 - b.bank_mask)).abs().max() == 0


def test_group_banks_seqgan_split_and_optimality():
    from itertools import combinations

    from seqgan.models.discriminator import group_banks

    d = DiscriminatorConfig()
    assert group_banks(d.filter_sizes, d.num_filters, 20, 64) == [(0, 5), (5, 10), (10, 12)]
    widths, counts, T, E, ov = (2, 7, 3, 11, 5, 1), (5, 9, 2, 4, 6, 8), 12, 4, 300

    def cost(runs):
        return sum(ov + E * max(widths[i:j]) * (T - min(widths[i:j]) + 1) * sum(counts[i:j])
                   for i, j in runs)

    brute = min(cost(list(zip((0, *cuts), (*cuts, 6)))) for r in range(6)
                for cuts in combinations(range(1, 6), r))
    got = group_banks(widths, counts, T, E, overhead=ov)
    assert got[0][0] == 0 and got[-1][1] == 6 and all(a[1] == b[0] for a, b in zip(got, got[1:]))
    assert cost(got) == brute


def test_discriminator_matches_per_bank_conv2d_definition():
    """The max-over-time features equal SeqGAN's Conv2d(1, n, (k, E)) formulation."""
    cfg = DiscriminatorConfig(emb_dim=6, filter_sizes=(1, 3, 5), num_filters=(2, 3, 4))
    d = Discriminator(cfg, 11, 8)
    x = torch.randint(0, 11, (4, 8))
    img = d.embedding(x).unsqueeze(1)  # (B, 1, T, E)
    feats = []
    start = 0
    for k, n in zip((1, 3, 5), (2, 3, 4)):
        w = d.bank_weight[start:start + n, :k].unsqueeze(1)  # (n, 1, k, E)
        z = torch.relu(torch.nn.functional.conv2d(img, w, d.bank_bias[start:start + n]))  # (B, n, T-k+1, 1)
        start += n
        feats.append(z.amax(dim=(2, 3)))
    assert torch.allclose(d.features(x), torch.cat(feats, 1), atol=1e-6)


def test_discriminator_loss_includes_l2_of_output_layer():
    cfg = DiscriminatorConfig(emb_dim=4, filter_sizes=(1, 2), num_filters=(3, 3), dropout=0.0, l2_reg=0.2)
    d = Discriminator(cfg, 10, 5).eval()
    x, y = torch.randint(0, 10, (6, 5)), torch.tensor([0, 1, 0, 1, 1, 0])
    loss, logits = d.loss(x, y)
    ce = torch.nn.functional.cross_entropy(logits, y)
    l2 = 0.5 * (d.out.weight.pow(2).sum() + d.out.bias.pow(2).sum())
    assert loss.item() == pytest.approx((ce + 0.2 * l2).item(), rel=1e-6)
    p = d.prob_real(x)
    assert torch.allclose(p, torch.softmax(logits, 1)[:, 1])
