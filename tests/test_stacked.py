"""Stacked populations (seqgan.models.stacked, stacked_d): every member of a stacked model,
trained a few MLE, discriminator and policy-gradient steps, has the losses and weights of
the same member trained alone (same seeds, float tolerance on the CPU), with members on
different learning rates; sampling and Adam are bit-exact; a member's state dict keeps the
single model's layout."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seqgan.models.discriminator import Discriminator, DiscriminatorConfig
from seqgan.models.generator import Generator, GeneratorConfig
from seqgan.models import stacked_optim
from seqgan.models.stacked import G_NAMES, StackedGenerator, StackedRollout, mle_update, pg_update
from seqgan.models.stacked_optim import StackedAdam, clip_grad_norm_per_member
from seqgan.models.stacked_d import D_NAMES, StackedDiscriminator, d_epoch
from seqgan.runs.presets import get_preset
from seqgan.training.adversarial import discriminator_reward, pg_step
from seqgan.training.d_training import DiscriminatorTrainer
from seqgan.training.rollout import RolloutPolicy
from seqgan.training.state import TrainingState

V, T, K = 50, 8, 3
GCFG = GeneratorConfig(vocab_size=V, emb_dim=16, hidden_dim=16, seq_len=T)
LRS = [0.01, 0.03, 0.002]  # coevolution mutates rates per cell
TOL = dict(rtol=1e-4, atol=1e-5)


def generators() -> list[Generator]:
    out = []
    for k in range(K):
        torch.manual_seed(100 + k)
        out.append(Generator(GCFG))
    return out


def discriminators(loss: str = "bce", impl: str = "auto") -> list[Discriminator]:
    cfg = DiscriminatorConfig(emb_dim=16, filter_sizes=(1, 2, 3, 4), num_filters=(8, 8, 8, 8), loss=loss, impl=impl)
    out = []
    for k in range(K):
        torch.manual_seed(200 + k)
        out.append(Discriminator(cfg, V, T))
    return out


def assert_members_equal(stacked, singles, **tol):
    for k, m in enumerate(singles):
        got = stacked.member(k)
        assert got.keys() == m.state_dict().keys()
        for key, want in m.state_dict().items():
            torch.testing.assert_close(got[key], want, **(tol or TOL), msg=f"member {k} {key}")


def test_members_unstack_to_the_single_models_layout():
    gs, ds = generators(), discriminators()
    S, SD = StackedGenerator.from_generators(gs), StackedDiscriminator.from_discriminators(ds)
    assert S.embedding.shape == (K, V, 16) and SD.bank_weight.shape == (K, 32, 4, 16)
    for k in range(K):
        g, d = Generator(GCFG), Discriminator(ds[0].cfg, V, T)
        g.load_state_dict(S.unstack()[k], strict=True)  # a population's files stay readable
        d.load_state_dict(SD.unstack()[k], strict=True)
        assert all(torch.equal(g.state_dict()[n], v) for n, v in gs[k].state_dict().items())
        assert all(torch.equal(d.state_dict()[n], v) for n, v in ds[k].state_dict().items())
    S.load_member(1, gs[2].state_dict())
    assert torch.equal(S.member(1)["out.weight"], gs[2].out.weight)


@pytest.mark.parametrize("member_by_member", [False, True])
def test_stacked_adam_is_torch_adam_per_member_bit_for_bit(member_by_member, monkeypatch):
    if member_by_member:  # as for large members
        monkeypatch.setattr(stacked_optim, "MEMBER_LOOP_FLOATS", 1)
    gs = generators()
    S = StackedGenerator.from_generators(gs)
    opts = [torch.optim.Adam(g.parameters(), lr=lr) for g, lr in zip(gs, LRS)]
    sopt = StackedAdam(S.parameters(), LRS)
    torch.manual_seed(0)
    for it in range(4):
        if it == 2:  # member 1 adopts fresh optimizer state at a new rate, as selection does
            opts[1] = torch.optim.Adam(gs[1].parameters(), lr=0.05)
            sopt.reset(1, 0.05)
        for name, key in G_NAMES.items():
            g = torch.randn_like(getattr(S, name)) * 3
            getattr(S, name).grad = g.clone()
            for k in range(K):
                gs[k].get_parameter(key).grad = g[k].clone()
        sopt.step()
        for o in opts:
            o.step()
    assert_members_equal(S, gs, rtol=0, atol=0)
    # the state travels both ways through torch.optim.Adam's layout
    fresh = torch.optim.Adam(gs[0].parameters(), lr=1.0)
    fresh.load_state_dict(sopt.member_state(0, list(G_NAMES)))
    assert fresh.param_groups[0]["lr"] == LRS[0]
    other = StackedAdam(StackedGenerator.from_generators(gs).parameters(), 1.0)
    other.load_member_state(2, opts[2])
    assert other.steps[2] == 4 and other.lr[2] == LRS[2]
    assert torch.equal(other.exp_avg[0][2], sopt.exp_avg[0][2])


def test_clipping_is_per_member():
    gs = generators()
    S = StackedGenerator.from_generators(gs)
    for name, key in G_NAMES.items():
        g = torch.randn_like(getattr(S, name)) * torch.tensor([0.01, 10.0, 1.0]).view(K, *[1] * (getattr(S, name).dim() - 1))
        getattr(S, name).grad = g.clone()
        for k in range(K):
            gs[k].get_parameter(key).grad = g[k].clone()
    norms = clip_grad_norm_per_member(S.parameters(), 5.0)
    for k in range(K):
        want = torch.nn.utils.clip_grad_norm_(gs[k].parameters(), 5.0)
        torch.testing.assert_close(norms[k], want)
        for name, key in G_NAMES.items():
            torch.testing.assert_close(getattr(S, name).grad[k], gs[k].get_parameter(key).grad)


@pytest.mark.parametrize("per_run", [3, 2, 1])
def test_mle_steps_equal_each_member_trained_alone(per_run, monkeypatch):
    """All members at once, or in runs of 2 or 1 (large members: forward and backward a
    run at a time, member_chunks)."""
    import seqgan.models.stacked as stacked
    monkeypatch.setattr(stacked, "CHUNK_LOGITS", per_run * 32 * T * V)
    if per_run == 1:  # as for SeqGAN-sized members: linear layers and Adam member by member too
        monkeypatch.setattr(stacked_optim, "MEMBER_LOOP_FLOATS", 1)
    gs = generators()
    S = StackedGenerator.from_generators(gs)
    sopt = StackedAdam(S.parameters(), LRS)
    opts = [torch.optim.Adam(g.parameters(), lr=lr) for g, lr in zip(gs, LRS)]
    torch.manual_seed(1)
    batches = torch.randint(V, (4, K, 32, T))
    assert [m.stop - m.start for m in S.member_chunks(32 * T)] == {3: [3], 2: [2, 1], 1: [1, 1, 1]}[per_run]
    for batch in batches:
        got = mle_update(S, sopt, batch, 5.0)
        for k, (g, opt) in enumerate(zip(gs, opts)):  # mle_epoch's step, one member
            logits = g(batch[k])
            loss = F.cross_entropy(logits.reshape(-1, V), batch[k].reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(g.parameters(), 5.0)
            opt.step()
            torch.testing.assert_close(got[k], loss.detach(), **TOL)
    assert_members_equal(S, gs)


def test_sampling_draws_each_members_own_stream_bit_for_bit():
    gs = generators()
    S = StackedGenerator.from_generators(gs)
    got = S.sample(40, [torch.Generator().manual_seed(7 + k) for k in range(K)], temperature=0.8, length=11)
    for k, g in enumerate(gs):
        assert torch.equal(got[k], g.sample(40, 0.8, torch.Generator().manual_seed(7 + k), length=11))


@pytest.mark.parametrize("loss, impl, loop_from", [("bce", "auto", None), ("bce", "auto", 0),
                                                   ("bce", "grouped", None), ("wgan", "fused", None)])
def test_d_epochs_equal_each_member_trained_alone(loss, impl, loop_from, monkeypatch):
    # a WGAN critic clipped to ±0.01 has many near-ties in its max-pool, so it is compared
    # with the same (window-product) kernels alone; the plain D with SeqGAN's CPU conv too;
    # "auto" for members above MEMBER_LOOP_MACS (loop_from 0) trains member by member with
    # the single model's CPU banks, like "grouped"
    import seqgan.models.stacked_d as stacked_d
    if loop_from is not None:  # and every linear layer and Adam update member by member
        monkeypatch.setattr(stacked_d, "MEMBER_LOOP_MACS", loop_from)
        monkeypatch.setattr(stacked_optim, "MEMBER_LOOP_FLOATS", 1)
    ds = discriminators(loss, impl)
    lrs = [1e-3, 3e-3, 2e-4]
    SD = StackedDiscriminator.from_discriminators(ds, impl)
    assert SD._resolved_impl(T) == {"auto": "grouped" if loop_from == 0 else "conv"}.get(impl, impl)
    opt = StackedAdam(SD.parameters(), lrs)
    torch.manual_seed(2)
    pos, neg = torch.randint(V, (K, 40, T)), torch.randint(V, (K, 40, T))
    gens = [torch.Generator().manual_seed(30 + k) for k in range(K)]
    got = [d_epoch(SD, opt, pos, neg, 16, gens) for _ in range(2)]  # 5 steps an epoch
    for k, d in enumerate(ds):
        trainer = DiscriminatorTrainer(d, lrs[k], 16, cuda_graph=False)
        torch.manual_seed(30 + k)  # member k's stream, as the global one
        for e in range(2):
            want = trainer.train_epochs(pos[k], neg[k], 1)
            assert got[e]["d_loss"][k].item() == pytest.approx(want["d_loss"], rel=1e-5)
            assert got[e]["d_acc"][k].item() == pytest.approx(want["d_acc"], abs=1e-6)
    assert_members_equal(SD, ds)
    with torch.no_grad():
        x = torch.randint(V, (K, 10, T))
        want = torch.stack([ds[k].prob_real(x[k]) for k in range(K)])
        torch.testing.assert_close(SD.prob_real(x), want, **TOL)


@pytest.mark.parametrize("one_by_one", [False, True])
def test_policy_gradient_steps_equal_each_member_trained_alone(one_by_one, monkeypatch):
    """pg_step (sample, Monte Carlo rollouts rewarded by an opponent's D, REINFORCE, clip,
    Adam) per member against the stacked step with the opponents' Ds gathered by index
    (its REINFORCE step for all members at once, or member by member as for large ones)."""
    import seqgan.models.stacked as stacked
    if one_by_one:
        monkeypatch.setattr(stacked, "CHUNK_LOGITS", 1)
    cfg = get_preset("quick")
    cfg.generator = GCFG
    tc = cfg.train
    tc.batch_size, tc.rollout_num, tc.rollout_chunk = 16, 3, 64  # several scoring chunks
    gs, ds = generators(), discriminators()
    opp = [2, 0, 0]  # member k is rewarded by D number opp[k]
    S = StackedGenerator.from_generators(gs)
    SD = StackedDiscriminator.from_discriminators([ds[j] for j in opp])
    sopt, roll = StackedAdam(S.parameters(), LRS), StackedRollout(S)
    gens = [torch.Generator().manual_seed(40 + k) for k in range(K)]
    got = []
    for _ in range(3):
        S.eval()
        seqs = S.sample(tc.batch_size, gens)
        q = roll.rewards(seqs, lambda tokens, group: SD.prob_real(tokens), tc.rollout_num, gens, tc.rollout_chunk)
        got.append(q.mean(dim=(1, 2)))
        pg_update(S, sopt, seqs, q, tc.grad_clip)
    roll.update(S, tc.update_rate)
    for k, g in enumerate(gs):
        st = TrainingState(cfg, torch.device("cpu"), g, torch.optim.Adam(g.parameters(), lr=0.01),
                           opt_adv=torch.optim.Adam(g.parameters(), lr=LRS[k]), rollout=RolloutPolicy(g))
        reward = discriminator_reward(ds[opp[k]], tc, None, None)
        torch.manual_seed(40 + k)
        for step in range(3):
            assert float(pg_step(st, reward)) == pytest.approx(float(got[step][k]), rel=1e-4)
        st.rollout.update(g, tc.update_rate)
        for key, want in st.rollout.model.state_dict().items():
            torch.testing.assert_close(roll.model.member(k)[key], want, **TOL)
    assert_members_equal(S, gs)


@pytest.mark.gpu
def test_on_cuda_members_equal_themselves_alone_to_float_tolerance():
    """MLE and D steps and sampling of a stacked population on the GPU (fused D, CUDA
    generators per member) against each member alone on the same device."""
    dev = torch.device("cuda")
    gs = [g.to(dev) for g in generators()]
    ds = [d.to(dev) for d in discriminators("bce", "fused")]
    S, SD = StackedGenerator.from_generators(gs), StackedDiscriminator.from_discriminators(ds)
    sopt, dopt = StackedAdam(S.parameters(), LRS), StackedAdam(SD.parameters(), LRS)
    opts = [torch.optim.Adam(g.parameters(), lr=lr) for g, lr in zip(gs, LRS)]
    torch.manual_seed(1)
    batch = torch.randint(V, (K, 32, T), device=dev)
    for _ in range(3):
        got = mle_update(S, sopt, batch, 5.0)
        for k, (g, opt) in enumerate(zip(gs, opts)):
            loss = F.cross_entropy(g(batch[k]).reshape(-1, V), batch[k].reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(g.parameters(), 5.0)
            opt.step()
            torch.testing.assert_close(got[k], loss.detach(), rtol=1e-3, atol=1e-4)
    assert_members_equal(S, gs, rtol=1e-3, atol=1e-4)
    seqs = S.sample(16, [torch.Generator(device=dev).manual_seed(k) for k in range(K)])
    for k, g in enumerate(gs):
        assert (seqs[k] == g.sample(16, generator=torch.Generator(device=dev).manual_seed(k))).float().mean() > 0.95
    gens = [torch.Generator(device=dev).manual_seed(30 + k) for k in range(K)]
    got = d_epoch(SD, dopt, batch, batch.flip(2), 16, gens)
    for k, d in enumerate(ds):
        trainer = DiscriminatorTrainer(d, LRS[k], 16, cuda_graph=False)
        torch.cuda.manual_seed(30 + k)
        want = trainer.train_epochs(batch[k], batch[k].flip(1), 1)
        assert got["d_loss"][k].item() == pytest.approx(want["d_loss"], rel=1e-3)
    assert_members_equal(SD, ds, rtol=1e-3, atol=1e-4)
