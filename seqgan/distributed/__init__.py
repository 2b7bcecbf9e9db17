"""torch.distributed glue: process groups, cell ownership, the neighbours' weights exchange
and the coevolution worker; data-parallel ``pretrain``/``train`` (:mod:`.data_parallel`).
Nothing imports it unless a job runs on more than one process.

Launch: ``torchrun --nproc-per-node K -m seqgan coevolve RUN ...`` (one machine or, with
``--nnodes`` and a rendezvous, several), or ``seqgan coevolve RUN --workers K``, which
starts the K processes itself. gloo on CPUs, NCCL on GPUs; nothing home-made travels
between the processes.
"""
