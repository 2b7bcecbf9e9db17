"""Monte Carlo rollouts, the rollout policy, reward composition and REINFORCE."""
from __future__ import annotations

import pytest
import torch

from seqgan.models.generator import GeneratorConfig
from seqgan.errors import TrainingError, UserError
from seqgan.models.generator import Generator
from seqgan.training.rewards import RewardFn, duplicate_weights, subtract_baseline, validate_lambda
from seqgan.training.rollout import RolloutPolicy, reference_rewards


def gen(V=6, T=5, seed=0):
    torch.manual_seed(seed)
    return Generator(GeneratorConfig(vocab_size=V, emb_dim=4, hidden_dim=5, seq_len=T))


def count_of_ones(toks, group_size):
    return (toks == 1).float().mean(1)


def test_rewards_shape_and_final_reward_exact():
    g = gen()
    seqs = g.sample(8)
    q = RolloutPolicy(g).rewards(seqs, count_of_ones, rollout_num=3)
    assert q.shape == (8, 5)
    assert torch.equal(q[:, -1], count_of_ones(seqs, 8))


def test_completions_keep_prefixes_and_layout():
    g = gen(T=6)
    seqs = g.sample(4)
    N = 3
    comps = RolloutPolicy(g).completions(seqs, N)
    assert comps.shape == (5 * N * 4, 6)
    for t in range(1, 6):
        block = comps[(t - 1) * N * 4: t * N * 4].view(N, 4, 6)
        assert torch.equal(block[:, :, :t], seqs[:, :t].expand(N, 4, t))


def test_rewards_equal_slow_reference_in_distribution():
    """Mean Q over many rollouts agrees with the loop implementation (and the exact value)."""
    g = gen(V=4, T=4, seed=3)
    seqs = g.sample(6)
    policy = RolloutPolicy(g)
    torch.manual_seed(0)
    fast = policy.rewards(seqs, count_of_ones, rollout_num=4000)
    torch.manual_seed(1)
    slow = reference_rewards(policy.model, seqs, count_of_ones, rollout_num=300)
    assert torch.equal(fast[:, -1], slow[:, -1])
    assert (fast - slow).abs().max() < 0.07  # 300 loop rollouts: SE <= 0.015
    # exact expectation for prefix length T-1: known tokens + P(y_T = 1 | prefix)/T
    logits = policy.model(seqs)[:, -1]
    p1 = torch.softmax(logits, 1)[:, 1]
    exact = ((seqs[:, :3] == 1).float().sum(1) + p1) / 4
    assert (fast[:, 2] - exact).abs().max() < 0.01


def test_rollout_update_follows_formula():
    g = gen()
    policy = RolloutPolicy(g)
    beta0 = [p.clone() for p in policy.model.parameters()]
    with torch.no_grad():
        for p in g.parameters():
            p.add_(1.0)
    policy.update(g, 0.8)
    for b0, b, t in zip(beta0, policy.model.parameters(), g.parameters()):
        assert torch.allclose(b, 0.8 * b0 + 0.2 * t)
    policy.update(g, 0.0)  # what SeqGAN's code effectively did: a copy of G
    for b, t in zip(policy.model.parameters(), g.parameters()):
        assert torch.equal(b, t)


def test_lambda_one_ignores_objective_and_zero_ignores_d():
    toks = torch.randint(0, 5, (4, 3))

    def boom(*a):
        raise AssertionError("must not be called")

    r = RewardFn(lambda t: torch.full((len(t),), 0.25), 1.0, objective=boom)
    assert torch.equal(r(toks, 4), torch.full((4,), 0.25))
    r0 = RewardFn(boom, 0.0, objective=lambda t, v: torch.full((len(t),), 0.5))
    assert torch.equal(r0(toks, 4), torch.full((4,), 0.5))
    mix = RewardFn(lambda t: torch.full((len(t),), 1.0), 0.3, objective=lambda t, v: torch.zeros(len(t)))
    assert torch.allclose(mix(toks, 4), torch.full((4,), 0.3))


def test_duplicate_penalty_hand_computed():
    # group 1: rows A, A, B, C -> 3 distinct of 4; copies 2,2,1,1 -> w = 0.75/2, 0.75/2, 0.75, 0.75
    # group 2: D, D, D, D -> 1 distinct of 4; copies 4 -> w = 0.25/4 each
    A, B, C, D = [1, 2], [2, 1], [3, 3], [0, 0]
    toks = torch.tensor([A, A, B, C, D, D, D, D])
    w = duplicate_weights(toks, 4)
    assert torch.allclose(w, torch.tensor([0.375, 0.375, 0.75, 0.75] + [0.0625] * 4))
    # the same rows in different groups are not duplicates of each other
    assert torch.allclose(duplicate_weights(torch.tensor([A, B, A, B]), 2), torch.ones(4))


def test_penalty_applies_to_objective_only():
    toks = torch.tensor([[1, 1], [1, 1]])
    r = RewardFn(lambda t: torch.ones(len(t)), 0.5, objective=lambda t, v: torch.ones(len(t)),
                 duplicate_penalty=True)
    # D part 0.5·1; objective part 0.5·1·(0.5/2)
    assert torch.allclose(r(toks, 2), torch.full((2,), 0.5 + 0.5 * 0.25))


@pytest.mark.parametrize("bad,match", [
    (lambda t, v: torch.full((len(t),), float("nan")), "NaN"),
    (lambda t, v: torch.full((len(t),), 1.5), "outside"),
    (lambda t, v: torch.zeros(len(t), 2), "shape"),
    (lambda t, v: [0.0] * len(t), "expected a tensor"),
])
def test_bad_objective_output_stops_with_its_name(bad, match):
    r = RewardFn(None, 0.0, objective=bad, objective_name="my_obj")
    with pytest.raises(TrainingError, match=match) as e:
        r(torch.zeros(3, 2, dtype=torch.long), 3)
    assert "my_obj" in str(e.value)


@pytest.mark.parametrize("lam", [-0.1, 1.01, float("nan")])
def test_lambda_validated(lam):
    with pytest.raises(UserError, match=r"\[0, 1\]"):
        validate_lambda(lam)


def test_baseline_subtracts_batch_mean_per_step():
    q = torch.tensor([[1.0, 2.0], [3.0, 6.0]])
    assert torch.equal(subtract_baseline(q), torch.tensor([[-1.0, -2.0], [1.0, 2.0]]))


def test_reinforce_raises_probability_of_rewarded_token():
    """A reward for token 1 anywhere makes G emit token 1 more often after a few steps."""
    g = gen(V=5, T=4, seed=0)
    policy = RolloutPolicy(g)
    opt = torch.optim.Adam(g.parameters(), lr=0.05)
    before = (g.sample(2000) == 1).float().mean()
    for _ in range(30):
        y = g.sample(32)
        q = policy.rewards(y, count_of_ones, 4)
        loss = -(g.log_probs(y) * q).sum() / 32
        opt.zero_grad()
        loss.backward()
        opt.step()
        policy.update(g, 0.8)
    after = (g.sample(2000) == 1).float().mean()
    assert after > before + 0.2
