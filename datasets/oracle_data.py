"""SeqGAN's synthetic data: training and test sets sampled from an oracle LSTM.

``oracle`` draws a random oracle (N(0, 1) parameters from the run's seed; options
``vocab_size`` (5000; 2..1,000,000) and ``oracle_dim`` (32; 1..4096), their product at most
2**27); ``oracle:PATH.npz`` loads published parameters. The training set has ``n_train``
sequences (SeqGAN: 10,000 of length 20) and a separate held-out set of ``n_test`` sequences
gives NLL-test.
"""
from __future__ import annotations

import torch

from seqgan.datasets import Corpus
from seqgan.datasets.vocab import Vocabulary
from seqgan.errors import UserError
from seqgan.models.oracle import Oracle


DEFAULT_OPTIONS = {"vocab_size": 5000, "oracle_dim": 32}
# upper bounds of a random oracle, so that its parameters fit in memory: V x E floats for
# the embedding and as many for the output layer, 8 H x H for the gates (E = H = oracle_dim)
MAX_VOCAB_SIZE = 1_000_000
MAX_ORACLE_DIM = 4096
MAX_VOCAB_X_DIM = 1 << 27  # vocab_size * oracle_dim: 2 x 512 MiB of float32


def load(source: str, arg: str, cfg, seq_len: int | None, seed: int) -> Corpus:
    """The oracle corpus: ``n_train`` (and ``n_test``) sequences of length T (``seq_len``, else
    ``cfg.seq_len``, else 20) sampled from the oracle of ``arg`` (.npz) or a random one."""
    from seqgan.datasets.options import check_options, integer

    T = seq_len or cfg.seq_len or 20
    opts = check_options("oracle", cfg.options, DEFAULT_OPTIONS,
                         {"vocab_size": integer(2, MAX_VOCAB_SIZE),
                          "oracle_dim": integer(1, MAX_ORACLE_DIM)})
    if arg:  # sizes come from the file
        oracle = Oracle.from_npz(arg, seq_len=T)
    else:
        dim = opts["oracle_dim"]
        if opts["vocab_size"] * dim > MAX_VOCAB_X_DIM:
            raise UserError(f"oracle options vocab_size={opts['vocab_size']} and oracle_dim={dim} "
                            f"make {opts['vocab_size'] * dim:,} weights per layer, more than "
                            f"{MAX_VOCAB_X_DIM:,}; choose a smaller vocab_size or oracle_dim")
        oracle = Oracle.random(opts["vocab_size"], dim, dim, T, seed=seed + 1)
    if cfg.n_train <= 0:
        raise UserError("n_train must be positive")
    g = torch.Generator().manual_seed(seed)
    train = oracle.sample(cfg.n_train, generator=g)
    test = oracle.sample(cfg.n_test, generator=g) if cfg.n_test > 0 else None
    vocab = Vocabulary.plain_ids(oracle.vocab_size, start_token=0)
    return Corpus(train=train, test=test, vocab=vocab, start_token=0, oracle=oracle,
                  info={"source": "oracle", "published": bool(arg)})
