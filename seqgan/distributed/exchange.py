"""Sending each cell's values only to the ranks that own its neighbours.

Before a generation a rank needs the weights of its own cells' neighbours; the ranks that
own them send exactly those, point to point (``isend``/``irecv`` of one flat tensor per
cell, tagged with the cell number), so the bytes a rank sends per generation depend on
how many of its cells border another rank's block, not on the size of the grid.
"""
from __future__ import annotations

import torch
import torch.distributed as dist

from seqgan.distributed.group import owners


class NeighbourExchange:
    """``exchange(own) -> own + the neighbours' values`` for :class:`~seqgan.evolve.population.Population`."""

    def __init__(self, neighbours: list[list[int]], rank: int, world: int):
        owner = owners(len(neighbours), world)
        self.rank = rank
        # cells this rank sends to each other rank, and receives from each
        self.sends: dict[int, list[int]] = {}
        self.recvs: dict[int, list[int]] = {}
        for k, hood in enumerate(neighbours):
            for j in hood:
                if owner[k] == rank and owner[j] != rank:  # k is mine, its neighbour j is not
                    self.recvs.setdefault(owner[j], [])
                    if j not in self.recvs[owner[j]]:
                        self.recvs[owner[j]].append(j)
                if owner[j] == rank and owner[k] != rank:  # my j borders their k
                    self.sends.setdefault(owner[k], [])
                    if j not in self.sends[owner[k]]:
                        self.sends[owner[k]].append(j)
        self.bytes_sent = 0

    def __call__(self, own: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
        template = next(iter(own.values()))
        ops, got = [], {}
        for dst in sorted(self.sends):
            for k in sorted(self.sends[dst]):
                t = own[k].contiguous()
                ops.append(dist.P2POp(dist.isend, t, dst, tag=k))
                self.bytes_sent += t.numel() * t.element_size()
        for src in sorted(self.recvs):
            for k in sorted(self.recvs[src]):
                got[k] = torch.empty_like(template)
                ops.append(dist.P2POp(dist.irecv, got[k], src, tag=k))
        if ops:
            for req in dist.batch_isend_irecv(ops):
                req.wait()
        return {**own, **got}
