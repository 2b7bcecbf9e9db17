"""Training as steps over an explicit state: MLE epochs, discriminator rounds, adversarial
epochs (Monte Carlo rollouts, rewards, REINFORCE) and the baselines of SeqGAN's Table 1.

Every step takes a :class:`seqgan.training.state.TrainingState` (a generator, optionally a
discriminator, their optimizers, the rollout policy and counters) and works on it in
memory; nothing here reads or writes a run directory except :mod:`.persist`, which maps a
state to a checkpoint and back, and :mod:`.loop`, which drives the phases of a run.
"""
