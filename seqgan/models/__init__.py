"""Models: the LSTM generator G_θ, SeqGAN's CNN discriminator D_φ and the synthetic oracle.

Models compute; they never read files, know nothing of runs or training loops, and take
their shapes from their own config dataclasses (:class:`GeneratorConfig`,
:class:`DiscriminatorConfig`).
"""
