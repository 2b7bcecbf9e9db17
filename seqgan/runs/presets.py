"""Named settings (``--preset``): a registry of functions returning a :class:`RunConfig`.

- ``seqgan-oracle``: SeqGAN's synthetic experiment (V 5000, T 20, E 32, H 32, batch 64,
  120 MLE epochs, D 50 x 3, 200 adversarial epochs, 16 rollouts, D 5 x 3): the defaults.
- ``quick``: tiny settings, a whole pipeline in seconds on a CPU (tests, smoke runs).
- ``text``: SeqGAN on a sentence corpus with the settings the text-GAN literature uses for
  Image COCO (TextGAN-PyTorch / Texygen: E 32, H 32, batch 64, MLE 120 epochs, 200
  adversarial epochs, 16 rollouts, D 5 x 3); T from the data.
- ``folk``: the main job (``seqgan run``) on Essen folk songs, sized to finish in a couple
  of minutes on 2 CPU cores: 2,000 of the 8,514 tunes, a smaller discriminator trained at
  batch 256 and lr 5e-4 (a short schedule needs a faster-learning D to give an informative
  reward) on 4,000 positives a round, its banks as Conv1d (at this size 30 % faster per
  adversarial epoch on 2 threads than the grouped GEMMs ``auto`` picks on CPUs), 20 MLE
  epochs (the held-out NLL is flat after about 20), 5 D rounds, 20 adversarial epochs with
  8 rollouts, evaluated every epoch. Its ORGAN objective is ``ratio_of_steps`` at λ = 0.5
  with ORGAN's duplicate penalty: folk melodies move mostly by step, so rewarding steps
  pushes towards singable lines, while half of the reward on the discriminator keeps
  samples folk-like and the penalty keeps them varied. The batch-mean reward is subtracted
  (REINFORCE's variance reduction: without it the objective barely moves in 12 epochs) and
  the generator's adversarial lr is 0.003 (at 0.01 the style swings by 30 % within a few
  epochs; at 0.005 by 15-20 %, so that few evaluated epochs are close to the data). RL can
  meet the objective by degenerating (long held notes, or notes on every step), so the run
  keeps the generator of the epoch with the best objective whose notes per bar,
  pitch-class entropy and diversity stay within 7 % of the data's on its evaluation
  samples (``select = "data-close"``, :mod:`seqgan.training.selection`; 7 % so that fresh
  samples stay within 10 %). ``bench/RESULTS.md`` has the 3-seed table and the grid this
  was chosen from (``bench/tune_main_job.py``).
- ``organ-music``: ORGAN's music schedule (MLE 240 epochs, D 50 x 3, 200 adversarial
  epochs, 16 rollouts, batch 64, duplicate penalty on), for a GPU.
"""
from __future__ import annotations

from typing import Callable

from seqgan.datasets.config import DataConfig
from seqgan.errors import UserError
from seqgan.models.discriminator import DiscriminatorConfig
from seqgan.models.generator import GeneratorConfig
from seqgan.runs.config import RunConfig, TrainConfig

PRESETS: dict[str, Callable[[], RunConfig]] = {}


def register_preset(name: str):
    """Decorator: register a zero-argument function returning a :class:`RunConfig`."""

    def deco(fn):
        """Record ``fn`` as the preset ``name`` and return it unchanged."""
        PRESETS[name] = fn
        return fn

    return deco


def get_preset(name: str) -> RunConfig:
    """A fresh :class:`RunConfig` of the preset ``name``; a UserError listing the presets."""
    try:
        return PRESETS[name]()
    except KeyError:
        raise UserError(f"unknown preset {name!r}; choose one of: {', '.join(sorted(PRESETS))}") from None


@register_preset("seqgan-oracle")
def seqgan_oracle() -> RunConfig:
    """SeqGAN's synthetic experiment: every default (see the module docstring)."""
    return RunConfig(preset="seqgan-oracle")


@register_preset("quick")
def quick() -> RunConfig:
    """Tiny oracle settings (V 50, T 8, E = H = 16, 3 MLE and 3 adversarial epochs): seconds on a CPU."""
    return RunConfig(
        preset="quick",
        data=DataConfig(spec="oracle", n_train=256, n_test=128, seq_len=8,
                        options={"vocab_size": 50, "oracle_dim": 16}),
        generator=GeneratorConfig(vocab_size=50, emb_dim=16, hidden_dim=16, seq_len=8),
        discriminator=DiscriminatorConfig(emb_dim=16, filter_sizes=(1, 2, 3, 4),
                                          num_filters=(8, 8, 8, 8)),
        train=TrainConfig(batch_size=32, mle_epochs=3, eval_every=1, eval_samples=128,
                          d_pretrain_steps=2, d_pretrain_epochs=1, adv_epochs=3,
                          d_steps=1, k_epochs=1, rollout_num=4, adv_eval_every=1),
    )


@register_preset("text")
def text() -> RunConfig:
    """SeqGAN on a sentence corpus (E = H = 32, 120 MLE and 200 adversarial epochs); T from the data."""
    return RunConfig(
        preset="text",
        data=DataConfig(spec="", n_train=0, n_test=0),
        generator=GeneratorConfig(emb_dim=32, hidden_dim=32),
        train=TrainConfig(mle_epochs=120, eval_every=10, eval_samples=2000, adv_epochs=200,
                          adv_eval_every=10),
    )


@register_preset("folk")
def folk() -> RunConfig:
    """Essen folk songs (2,000 tunes, T 32), ORGAN's ``ratio_of_steps`` at λ = 0.5 with the
    duplicate penalty; minutes on 2 CPU cores."""
    return RunConfig(
        preset="folk",
        data=DataConfig(spec="music21:essen", seq_len=32, options={"max_tunes": 2000}),
        generator=GeneratorConfig(emb_dim=32, hidden_dim=64, seq_len=32),
        discriminator=DiscriminatorConfig(emb_dim=32, filter_sizes=(2, 3, 4, 6, 8, 12, 16),
                                          num_filters=(32, 32, 32, 32, 32, 32, 32),
                                          batch_size=256, lr=5e-4, impl="conv"),
        train=TrainConfig(mle_epochs=20, eval_every=5, eval_samples=1000, d_pretrain_steps=5,
                          d_pretrain_epochs=1, adv_epochs=20, adv_lr=0.003, d_steps=1, k_epochs=1,
                          rollout_num=8, adv_eval_every=1, d_samples=4000, lambda_=0.5,
                          objective="ratio_of_steps", duplicate_penalty=True, reward_baseline=True,
                          select="data-close", select_tolerance=0.07),
    )


@register_preset("organ-music")
def organ_music() -> RunConfig:
    """ORGAN's music schedule on Essen (T 32; 240 MLE and 200 adversarial epochs, duplicate
    penalty), for a GPU."""
    return RunConfig(
        preset="organ-music",
        data=DataConfig(spec="music21:essen", seq_len=32),
        generator=GeneratorConfig(emb_dim=32, hidden_dim=32, seq_len=32),
        train=TrainConfig(mle_epochs=240, eval_every=20, eval_samples=2000, adv_epochs=200,
                          adv_eval_every=10, duplicate_penalty=True),
    )


SOURCE_PRESETS = {"oracle": "seqgan-oracle", "text": "text", "music21": "folk", "abc": "folk",
                  "music-folder": "folk", "music-file": "folk"}


def preset_for_source(source: str) -> str:
    """The preset a data source gets when none is named."""
    return SOURCE_PRESETS.get(source, "seqgan-oracle")
