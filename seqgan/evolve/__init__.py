"""Coevolution: Mustangs-style spatial populations of sequence GANs (Toutouh, Hemberg and
O'Reilly, GECCO 2019; Lipizzaner, Schmiedlechner et al. 2018), with an exact mixture
likelihood.

A population is an R×C torus of cells (:mod:`.grid`); each cell holds a generator, a
discriminator, their optimizers and learning rates, and mixture weights over its
neighbourhood (:mod:`.cell`). A generation updates every cell from its own state and its
neighbours' weights only, with a random stream derived from (seed, cell, generation)
(:func:`.operators.cell_seed`), so the order of the cells, the number of processes and a
resume cannot change the result. Selection, mutation and the (1+1)-ES of the mixture
weights are in :mod:`.operators`; the mixture's exact likelihood in :mod:`.mixture`; the
population, its checkpoints and metrics in :mod:`.population`. With ``batched_cells`` a
process updates all of its cells at once as stacked models, with the same draws
(:mod:`.batched`; equal to float rounding, not bit for bit).
"""
