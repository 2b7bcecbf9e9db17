"""Prefix-shared discriminator scores, the CPU's window-matrix filter banks and the blocked
rollout: each equal to the plain computation (float tolerance, or token for token)."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from seqgan.models.disc_windows import BankWindows, TokenTables, windows, width_groups
from seqgan.models.discriminator import Discriminator, DiscriminatorConfig
from seqgan.models.generator import Generator, GeneratorConfig
from seqgan.training.rewards import DiscriminatorScorer, RewardFn
from seqgan.training import rollout
from seqgan.training.rollout import RolloutPolicy

T = 9
# every width from 1 to T, one of them twice in a row (one matrix product for both)
CFG = DiscriminatorConfig(emb_dim=6, filter_sizes=(1, 2, 2, 3, 4, 5, 6, 7, 8, 9),
                          num_filters=(3, 2, 4, 3, 2, 3, 2, 2, 3, 2))


def completions_of(seqs: torch.Tensor, t: int, n: int, V: int) -> torch.Tensor:
    """n random completions of each row's prefix seqs[:, :t], rows ordered (n, b)."""
    out = torch.randint(0, V, (n * seqs.shape[0], seqs.shape[1]))
    out[:, :t] = seqs[:, :t].repeat(n, 1)
    return out


def test_width_groups_merge_equal_neighbours_only():
    assert width_groups((1, 2, 2, 3, 2), (3, 2, 4, 1, 5)) == [(0, 3, 1), (3, 9, 2), (9, 10, 3), (10, 15, 2)]


@pytest.mark.parametrize("tables", [False, True])
@pytest.mark.parametrize("loss", ["bce", "wgan"])
def test_prefix_shared_scores_equal_plain_for_every_width_and_t(loss, tables):
    torch.manual_seed(0)
    d = Discriminator(replace(CFG, loss=loss), 13, T).train()  # scoring switches to eval
    seqs = torch.randint(0, 13, (4, T))
    shared = d.prefix_windows(seqs, tables=tables)
    assert (shared.tables is not None) == tables
    critic = loss == "wgan"
    for t in range(T + 1):
        comps = completions_of(seqs, t, 3, 13)
        with torch.no_grad():
            d.eval()
            want = d.features(comps)
            d.train()
        assert torch.allclose(shared.features(comps, t), want, atol=1e-5), t
        plain = d.critic(comps) if critic else d.prob_real(comps)
        assert torch.allclose(d.prefix_verdicts(shared, comps, t, critic), plain, atol=1e-5), t
    assert d.training


def test_token_tables_give_each_window_its_product():
    """Table row v·k + j is token v's response at tap j: summed over a window's taps it
    equals the window's product with the bank, at every start position and width."""
    torch.manual_seed(0)
    d = Discriminator(CFG, 13, T)
    tokens = torch.randint(0, 13, (5, T))
    with torch.no_grad():
        tabs = TokenTables(d.embedding.weight, d.bank_weight, d.width_runs)
        e = d.embedding(tokens)
        for i, (s0, s1, k) in enumerate(d.width_runs):
            w = d.bank_weight[s0:s1, :k].reshape(s1 - s0, -1)
            for start in range(T - k + 1):
                want = windows(e, k, start) @ w.t()
                assert torch.allclose(tabs.responses(i, tokens, start), want, atol=1e-5), (k, start)
    assert tabs.tables[1].shape == (13 * 2, 6)  # the run of two width-2 banks: 2 + 4 filters


def test_token_tables_reuse_a_freed_buffer_never_a_live_one():
    """Freed tables leave their buffer for the next tables of the same size; tables alive
    at the same time never share memory; reused memory holds the new weights' tables."""
    import gc
    torch.manual_seed(0)
    d = Discriminator(CFG, 13, T)
    with torch.no_grad():
        first = TokenTables(d.embedding.weight, d.bank_weight, d.width_runs)
        second = TokenTables(d.embedding.weight, d.bank_weight, d.width_runs)
        ptr = second.tables[0].data_ptr()
        assert ptr != first.tables[0].data_ptr()
        del second
        gc.collect()
        d.bank_weight.mul_(-3.0)
        third = TokenTables(d.embedding.weight, d.bank_weight, d.width_runs)
        assert third.tables[0].data_ptr() == ptr
        assert third.tables[0].data_ptr() != first.tables[0].data_ptr()
        s0, s1, k = d.width_runs[-1]
        e = d.embedding.weight
        want = torch.einsum("ve,fje->vjf", e, d.bank_weight[s0:s1, :k]).reshape(13 * k, s1 - s0)
        assert torch.allclose(third.tables[-1], want, atol=1e-5)
        assert not torch.allclose(first.tables[-1], want, atol=1e-3)


def test_token_tables_are_built_where_they_pay(monkeypatch):
    """CPU only, when completions · T · E reach TABLES_PAY_AT · V, and never past the size
    cap; built from D's weights at the time of the call."""
    import seqgan.models.discriminator as dmod
    d = Discriminator(CFG, 13, T)
    seqs = torch.randint(0, 13, (4, T))
    enough = -(-dmod.TABLES_PAY_AT * 13 // (T * 6))  # T 9, E 6
    assert not d.tables_pay(enough - 1) and d.tables_pay(enough)
    assert d.prefix_windows(seqs, completions=enough).tables is not None
    assert d.prefix_windows(seqs, completions=enough - 1).tables is None
    monkeypatch.setattr(dmod, "MAX_TABLE_FLOATS", 13 * 115)  # V · Σ k·n of CFG's banks
    assert d.tables_pay(10**6)
    monkeypatch.setattr(dmod, "MAX_TABLE_FLOATS", 13 * 115 - 1)
    assert not d.tables_pay(10**6)
    monkeypatch.undo()
    comps = completions_of(seqs, 3, 2, 13)
    before = d.prefix_windows(seqs, tables=True).features(comps, 3)
    with torch.no_grad():
        d.bank_weight.mul_(2.0)  # a trained D: tables from the new weights
    after = d.prefix_windows(seqs, tables=True).features(comps, 3)
    assert not torch.allclose(before, after)
    with torch.no_grad():
        d.eval()
        assert torch.allclose(after, d.features(comps), atol=1e-5)


def test_prefix_features_refuse_rows_that_are_not_whole_groups():
    d = Discriminator(CFG, 13, T)
    shared = d.prefix_windows(torch.randint(0, 13, (4, T)))
    with pytest.raises(ValueError, match="do not fit"):
        shared.features(torch.randint(0, 13, (6, T)), 2)


def test_bank_windows_gradients_match_finite_differences():
    torch.manual_seed(0)
    E, widths, counts = 3, (1, 2, 2, 4), (2, 1, 2, 2)
    groups = width_groups(widths, counts)
    F, K = sum(counts), max(widths)
    mask = torch.zeros(F, K, 1, dtype=torch.double)
    for s0, s1, k in groups:
        mask[s0:s1, :k] = 1
    e = torch.randn(3, 6, E, dtype=torch.double, requires_grad=True)
    w = torch.randn(F, K, E, dtype=torch.double, requires_grad=True)
    b = torch.randn(F, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda e, w, b: BankWindows.apply(e, w * mask, b, groups), (e, w, b))
    BankWindows.apply(e, w, b, groups).sum().backward()
    assert (w.grad * (1 - mask)).abs().max() == 0  # taps past a filter's width get nothing


def gen(V=30, seed=0):
    torch.manual_seed(seed)
    return Generator(GeneratorConfig(vocab_size=V, emb_dim=8, hidden_dim=12, seq_len=T))


@pytest.mark.parametrize("score_rows", [1, 1024])
@pytest.mark.parametrize("B,block", [(6, 6), (6, 12), (6, 30), (9, 18), (9, 45)])
def test_blocked_rollout_makes_the_lockstep_completions(B, block, score_rows, monkeypatch):
    """Same seed: the blocked path makes token for token the lockstep path's completions
    (so the same rewards for any reward) and leaves the random stream where it does; its
    first step from each prefix is taken once for the N rollouts (on 12 rows for B = 6);
    blocks of one prefix length are scored together up to ``CPU_SCORE_ROWS`` rows."""
    monkeypatch.setattr(rollout, "CPU_SCORE_ROWS", score_rows)
    g = gen()
    policy = RolloutPolicy(g)
    seqs = g.sample(B)
    N = 5
    seen = []

    def recorder(tokens, group_size):
        seen.append(tokens.clone())
        return tokens.float().mul(torch.arange(1.0, T + 1)).sum(1)

    torch.manual_seed(1)
    want = policy.completions(seqs, N)
    after = torch.rand(1)
    torch.manual_seed(1)
    q_lock = policy.rewards(seqs, recorder, N, block=0)
    seen.clear()
    torch.manual_seed(1)
    q_block = policy.rewards(seqs, recorder, N, block=block)
    assert torch.equal(torch.rand(1), after)
    assert torch.equal(torch.cat(seen[:-1]), want)  # the last call scores seqs themselves
    sizes = [len(x) for x in seen[:-1]]  # whole groups of B, never under 8 rows
    assert all(m % B == 0 and m >= 8 for m in sizes)
    if score_rows == 1:  # each block alone
        assert len(sizes) >= (T - 1) * (1 + (block < N * B))
    else:  # all N·B completions of a prefix length in one call
        assert sizes == [N * B] * (T - 1)
    assert torch.equal(q_block, q_lock)


@pytest.mark.parametrize("tables", [False, True])
@pytest.mark.parametrize("lambda_,penalty", [(1.0, False), (0.5, True)])
@pytest.mark.parametrize("loss", ["bce", "wgan"])
def test_prefix_shared_rewards_equal_plain_rewards(lambda_, penalty, loss, tables, monkeypatch):
    """Every path, with and without token tables (the rollout asks for them where they pay)."""
    import seqgan.models.discriminator as dmod
    monkeypatch.setattr(dmod, "TABLES_PAY_AT", 0 if tables else 10**9)
    built = []
    monkeypatch.setattr(dmod.Discriminator, "_token_tables",
                        lambda self, f=dmod.Discriminator._token_tables: built.append(1) or f(self))
    g = gen()
    policy = RolloutPolicy(g)
    seqs = g.sample(4)
    torch.manual_seed(2)
    d = Discriminator(replace(CFG, loss=loss), 30, T)
    fn = RewardFn(DiscriminatorScorer(d, chunk=8), lambda_, objective=lambda x, v: (x % 2).float().mean(1),
                  duplicate_penalty=penalty)
    fn.rescale = loss == "wgan"
    out = {}
    for name, block, shared in [("plain", 0, False), ("lockstep, shared", 0, True),
                                ("blocked, shared", 8, True), ("default", None, None)]:
        torch.manual_seed(3)
        out[name] = policy.rewards(seqs, fn, 3, chunk=8, block=block, prefix_shared=shared)
    for name, q in out.items():
        assert torch.allclose(q, out["plain"], atol=1e-5), name
    assert len(built) == (3 if tables else 0)  # once per prefix-shared rewards call


@pytest.mark.gpu
def test_prefix_shared_rewards_equal_plain_on_cuda():
    """The GPU keeps the lockstep layout; prefix-shared scoring there equals plain scoring."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    g = Generator(GeneratorConfig(vocab_size=500, seq_len=20)).cuda()
    policy = RolloutPolicy(g)
    seqs = g.sample(32)
    fn = RewardFn(DiscriminatorScorer(Discriminator(DiscriminatorConfig(), 500, 20).cuda()), 1.0)
    out = []
    for shared in (False, True):
        torch.manual_seed(1)
        out.append(policy.rewards(seqs, fn, 4, prefix_shared=shared))
    assert torch.allclose(out[0], out[1], atol=1e-5)
