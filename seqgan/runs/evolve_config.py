"""The knobs of a coevolution run (``seqgan coevolve``), with Mustangs' defaults."""
from __future__ import annotations

from dataclasses import dataclass

from seqgan.knobs import knob

MIXTURE_SCORES = ("nll", "nll-oracle", "bleu", "objective")
G_LOSS_NAMES = ("seqgan", "heuristic", "bce", "mse", "random")  # seqgan.training.g_losses


@dataclass
class EvolveConfig:
    """A population on a torus and how each generation updates it (see seqgan.evolve)."""

    grid: str = knob("2x2", "Grid of cells ROWSxCOLS (a torus; any R, C >= 1).", command="coevolve")
    generations: int = knob(10, "Generations in total.", lo=0, command="coevolve")
    g_loss: str = knob("random", "Generator loss: seqgan, heuristic, bce, mse, or random (one drawn "
                       "per minibatch, as Mustangs).", choices=G_LOSS_NAMES,
                       command="coevolve")
    from_scratch: bool = knob(False, "Start every cell's generator from scratch instead of the MLE "
                              "generator.", command="coevolve", negatable=False)
    d_pretrain: int = knob(3, "Discriminator rounds for each new cell before generation 1.", lo=0,
                           command="coevolve")
    tournament_size: int = knob(2, "Tournament selection size.", lo=1)
    mutation_prob: float = knob(0.5, "Probability that a learning rate mutates each generation.",
                                lo=0.0, hi=1.0)
    mutation_std: float = knob(0.1, "Relative Gaussian step of a mutation: lr·(1 + σ·ε).", lo=0.0)
    lr_min: float = knob(0.1, "Lowest learning rate, as a factor of the initial one.", lo=0.0, lo_open=True)
    lr_max: float = knob(10.0, "Highest learning rate, as a factor of the initial one.", lo=1.0)
    es_sigma: float = knob(0.01, "Step size σ of the (1+1)-ES on mixture weights.", lo=0.0)
    es_steps: int = knob(1, "(1+1)-ES steps per generation.", lo=0)
    mixture_score: str = knob("nll", "How mixtures are scored: nll (exact NLL of held-out data), "
                              "nll-oracle (oracle NLL of the mixture's samples; oracle data), bleu "
                              "(BLEU-4 of its samples against held-out text) or objective (the run's "
                              "ORGAN objective on its samples; music).",
                              choices=MIXTURE_SCORES, command="coevolve")
    fitness_samples: int = knob(256, "Sequences per model when fitness is measured.", lo=2)
    heldout: int = knob(1000, "Held-out sequences (at most) that score a mixture.", lo=1)
    batched_cells: bool = knob(False, "Update all of a process's cells as one stacked model per "
                               "generation (seqgan.evolve.batched): the same algorithm and random draws "
                               "as one cell at a time, equal to float rounding (not bit for bit); "
                               "each worker stacks only its own cells, so results may differ at "
                               "float level with the number of workers. Recorded in the run.",
                               command="coevolve", negatable=True)
