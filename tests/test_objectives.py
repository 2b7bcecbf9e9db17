"""ORGAN's music objectives: hand-worked values, HOLD / REST handling, variants, registry."""
from __future__ import annotations

import pytest
import torch

from seqgan.datasets.music import music_vocab
from seqgan.datasets.vocab import Vocabulary
from seqgan.errors import UserError
from seqgan.objectives import (available_objectives, check_objective_output, get_objective,
                               per_sequence)
from seqgan.objectives.music import (INTERVAL_SETS, make_objective, melodicity, minmax_rescale,
                                     pitch_lut, ratio_of_steps, tonality)

VOCAB = music_vocab(48, 84)  # C3..C6; ids: <pad>=0 <bos>=1 R=2 _=3, then pitches


def enc(melody: str, vocab: Vocabulary = VOCAB) -> torch.Tensor:
    return torch.tensor([vocab.tokens.index(t) for t in melody.split()])


def batch(*melodies: str) -> torch.Tensor:
    return torch.stack([enc(m) for m in melodies])


# melody (8 steps) | tonality | melodicity | ratio_of_steps | tonality with rest_breaks
HAND_WORKED = [
    # C4 G4 D5 A5: +7 +7 +7 -> every interval an ascending fifth
    ("C4 _ G4 _ D5 _ A5 _", 1.0, 1.0, 0.0, 1.0),
    # C D E F G C: +2 +2 +1 +2 -7 -> 4 steps of 5; the descending fifth does not count
    ("C4 D4 E4 F4 G4 C4 _ _", 0.0, 0.0, 4 / 5, 0.0),
    # E4 A4 (rest) C5: +5 +3 -> melodicity 1/2; nothing is a fifth
    ("E4 _ A4 _ R _ C5 _", 0.0, 0.5, 0.0, 0.0),
    # one note held: no interval -> 0
    ("C4 _ _ _ _ _ _ _", 0.0, 0.0, 0.0, 0.0),
    # no note at all -> 0
    ("R R R R _ _ R R", 0.0, 0.0, 0.0, 0.0),
    # leading HOLD is silence; G G D5 C5: 0 +7 -2 -> 1/3 each
    ("_ _ G4 _ G4 _ D5 C5", 1 / 3, 1 / 3, 1 / 3, 1 / 3),
    # C4 (rest, HOLD after rest = silence) G4: +7; a rest breaks it only with rest_breaks
    ("C4 R _ G4 _ _ _ _", 1.0, 1.0, 0.0, 0.0),
    # PAD and BOS are silence, like REST: C4 .. G4 .. D5 = +7 +7
    ("C4 <pad> G4 <bos> D5 _ _ _", 1.0, 1.0, 0.0, 0.0),
    # A4 E5 B5 with holds: +7 +7, then B5 -> A5 -2
    ("A4 _ _ E5 _ B5 _ A5", 2 / 3, 2 / 3, 1 / 3, 2 / 3),
]


@pytest.mark.parametrize("melody,ton,mel,steps,ton_rb", HAND_WORKED)
def test_hand_worked(melody, ton, mel, steps, ton_rb):
    x = enc(melody)[None]
    assert tonality(x, VOCAB).tolist() == pytest.approx([ton])
    assert melodicity(x, VOCAB).tolist() == pytest.approx([mel])
    assert ratio_of_steps(x, VOCAB).tolist() == pytest.approx([steps])
    assert make_objective("tonality", rest_breaks=True)(x, VOCAB).tolist() == pytest.approx([ton_rb])


def test_batched_rows_are_independent():
    x = batch(*(m for m, *_ in HAND_WORKED))
    assert tonality(x, VOCAB).tolist() == pytest.approx([t for _, t, *_ in HAND_WORKED])
    assert ratio_of_steps(x, VOCAB).tolist() == pytest.approx([s for *_, s, _ in HAND_WORKED])


def test_both_directions():
    # C D E F G C: +2 +2 +1 +2 -7 -> one fifth of five either way
    x = batch("C4 D4 E4 F4 G4 C4 _ _", "C5 F4 C5 A4 _ _ _ _")  # second: -7 +7 -3
    assert get_objective("tonality_both")(x, VOCAB).tolist() == pytest.approx([1 / 5, 2 / 3])
    assert get_objective("tonality")(x, VOCAB).tolist() == pytest.approx([0.0, 1 / 3])
    # melodicity both ways: {±5, ±7, ±9}; second melody -7 +7 -3 -> 2/3
    assert get_objective("melodicity_both")(x, VOCAB).tolist() == pytest.approx([1 / 5, 2 / 3])


def test_minmax_rescale_like_organ_remap():
    assert minmax_rescale(torch.tensor([1.0, 0.2, 0.6])).tolist() == pytest.approx([1.0, 0.0, 0.5])
    assert minmax_rescale(torch.tensor([0.3, 0.3])).tolist() == [0.0, 0.0]  # max == min
    assert minmax_rescale(torch.tensor([0.0, 0.0])).tolist() == [0.0, 0.0]  # max == 0
    x = batch("C4 _ G4 _ D5 _ A5 _", "A4 _ _ E5 _ B5 _ A5", "C4 _ _ _ _ _ _ _")  # 1, 2/3, 0
    assert get_objective("tonality_rescaled")(x, VOCAB).tolist() == pytest.approx([1.0, 2 / 3, 0.0])
    x = batch("A4 _ _ E5 _ B5 _ A5", "E4 _ A4 _ R _ C5 _")  # 2/3, 0
    assert get_objective("tonality_rescaled")(x, VOCAB).tolist() == pytest.approx([1.0, 0.0])


def test_organ_frequency_ratios_are_these_semitones():
    """ORGAN's ratio windows pick out exactly +5, +7, +9 semitones in equal temperament."""
    def hits(lo, hi):
        return [d for d in range(-36, 37) if lo < 2 ** (d / 12) < hi]

    assert hits(1.45, 1.55) == [7]
    assert hits(1.28, 1.38) == [5]
    assert hits(1.62, 1.72) == [9]
    assert INTERVAL_SETS["melodicity"][0] == (5, 7, 9)


def _reference(ids: list[int], vocab: Vocabulary, semis, both: bool, rest_breaks: bool) -> float:
    """Plain Python: intervals between consecutive onsets."""
    pitches = vocab.meta["pitches"]
    hold = vocab.meta["hold"]
    prev, n, h = None, 0, 0
    for i in ids:
        p = pitches[i] if 0 <= i < len(pitches) else -1
        if p >= 0:
            if prev is not None:
                d = p - prev
                n += 1
                h += (abs(d) if both else d) in semis
            prev = p
        elif rest_breaks and i != hold:
            prev = None
    return h / n if n else 0.0


@pytest.mark.parametrize("name", list(INTERVAL_SETS))
@pytest.mark.parametrize("both", [False, True])
@pytest.mark.parametrize("rest_breaks", [False, True])
def test_matches_python_reference_on_random_tokens(name, both, rest_breaks):
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, len(VOCAB), (300, 24), generator=g)
    x[:50] = torch.randint(0, 8, (50, 24), generator=g)  # mostly specials: few notes
    semis, ascending = INTERVAL_SETS[name]
    fn = make_objective(name, both_directions=both, rest_breaks=rest_breaks)
    eff_both = both or not ascending
    ref = per_sequence(lambda ids, v: _reference(ids, v, semis, eff_both, rest_breaks))
    assert torch.allclose(fn(x, VOCAB), ref(x, VOCAB), atol=1e-6)


def test_per_sequence_adapter_and_output_contract():
    x = batch(*(m for m, *_ in HAND_WORKED))
    wrapped = per_sequence(lambda ids, v: _reference(ids, v, (7,), False, False))
    out = wrapped(x, VOCAB)
    assert out.shape == (len(HAND_WORKED),) and out.dtype == torch.float32
    assert torch.allclose(out, tonality(x, VOCAB))
    for name in ("tonality", "melodicity", "ratio_of_steps", "tonality_both", "melodicity_rescaled"):
        v = get_objective(name)(x, VOCAB)
        check_objective_output(v, x.shape[0], name)
        assert v.device == x.device


def test_out_of_range_ids_are_silence():
    x = enc("C4 _ G4 _ D5 _ _ _")[None].clone()
    x[0, 1] = len(VOCAB) + 5
    x[0, 3] = -1
    assert tonality(x, VOCAB).tolist() == pytest.approx([1.0])


def test_vocab_without_pitch_meta_reads_token_names():
    v = Vocabulary(tokens=["<pad>", "<bos>", "R", "_", "C4", "G4", "D5"], kind="music", pad=0, bos=1)
    x = torch.tensor([[4, 3, 5, 2, 6, 3]])  # C4 _ G4 R D5 _
    assert tonality(x, v).tolist() == pytest.approx([1.0])
    lut, hold = pitch_lut(v, "cpu")
    assert lut.tolist() == [-1, -1, -1, -1, 60, 67, 74, -1] and hold == 3


def test_lookup_is_cached_per_vocab_and_device():
    a = pitch_lut(VOCAB, "cpu")[0]
    assert pitch_lut(VOCAB, torch.device("cpu"))[0] is a
    other = music_vocab(40, 90)
    assert pitch_lut(other, "cpu")[0] is not a


def test_registry():
    names = available_objectives()
    for n in ("tonality", "melodicity", "ratio_of_steps", "tonality_both", "melodicity_both",
              "tonality_rescaled", "melodicity_rescaled", "ratio_of_steps_rescaled"):
        assert n in names
    assert get_objective("tonality") is tonality
    with pytest.raises(UserError, match="unknown objective 'tonalty'.*tonality"):
        get_objective("tonalty")
    with pytest.raises(UserError, match="choose one of"):
        make_objective("harmony")


def test_bad_shape_is_a_user_error():
    with pytest.raises(UserError, match=r"\(B, T\)"):
        tonality(torch.zeros(5, dtype=torch.long), VOCAB)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_equals_cpu():
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, len(VOCAB), (4096, 32), generator=g)
    for name in ("tonality", "melodicity", "ratio_of_steps", "tonality_both", "melodicity_rescaled"):
        fn = get_objective(name)
        cpu = fn(x, VOCAB)
        gpu = fn(x.cuda(), VOCAB)
        assert gpu.device.type == "cuda"
        assert torch.equal(cpu, gpu.cpu()), name
    fn = make_objective("ratio_of_steps", rest_breaks=True)
    assert torch.equal(fn(x, VOCAB), fn(x.cuda(), VOCAB).cpu())


def test_minmax_rescale_per_group():
    v = torch.tensor([1.0, 0.2, 0.6, 0.0, 0.5, 0.5])
    assert minmax_rescale(v, 3).tolist() == pytest.approx([1.0, 0.0, 0.5, 0.0, 1.0, 1.0])
    assert minmax_rescale(v).tolist() == pytest.approx([1.0, 0.2, 0.6, 0.0, 0.5, 0.5])
    with pytest.raises(ValueError):
        minmax_rescale(v, 4)


def test_rescaled_objective_rewards_do_not_depend_on_the_scoring_chunk():
    from seqgan.models.generator import GeneratorConfig
    from seqgan.models.generator import Generator
    from seqgan.training.rewards import RewardFn
    from seqgan.training.rollout import RolloutPolicy

    torch.manual_seed(0)
    g = Generator(GeneratorConfig(vocab_size=len(VOCAB), emb_dim=8, hidden_dim=8, seq_len=8, start_token=1))
    policy = RolloutPolicy(g)
    seqs = g.sample(4)
    fn = RewardFn(None, 0.0, get_objective("ratio_of_steps_rescaled"), "ratio_of_steps_rescaled", VOCAB)
    qs = []
    for chunk in (4, 4 * 28):  # one (prefix, rollout) group per chunk vs all of them at once
        torch.manual_seed(1)
        qs.append(policy.rewards(seqs, fn, 4, chunk=chunk))
    assert torch.equal(qs[0], qs[1])
    # each group is rescaled on its own: the last column is R(Y) over the batch of 4
    raw = ratio_of_steps(seqs, VOCAB)
    assert qs[0][:, -1].tolist() == pytest.approx(minmax_rescale(raw).tolist())


def test_music_objectives_refuse_other_kinds_of_data():
    text = Vocabulary(tokens=["<pad>", "<bos>", "<eos>", "<unk>", "A4", "C5"], kind="text", pad=0, bos=1,
                      eos=2, unk=3)
    with pytest.raises(UserError, match="need a music run; this run's data is text"):
        tonality(torch.tensor([[4, 5, 4]]), text)


@pytest.mark.parametrize("source,name,words", [
    ("def f(:\n", "synt_mod_x:f", "SyntaxError"),
    ("import no_such_dependency_q\n", "dep_mod_x:f", "needs 'no_such_dependency_q'"),
    ("raise RuntimeError('boom at import')\n", "boom_mod_x:f", "RuntimeError: boom at import"),
    ("from os import no_such_name_z\n", "imperr_mod_x:f", "ImportError"),
    ("f = 3\n", "notcall_mod_x:f", "not callable"),
    ("", "empty_mod_x:g", "has no 'g'"),
])
def test_plugin_import_failures_are_one_line(tmp_path, monkeypatch, source, name, words):
    (tmp_path / f"{name.split(':')[0]}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(UserError, match=words):
        get_objective(name, allow_import=True)


@pytest.mark.parametrize("name", [":f", "mod:", ":"])
def test_plugin_name_needs_both_parts(name):
    with pytest.raises(UserError, match="expected module:function"):
        get_objective(name, allow_import=True)
