"""Endless, resumable batch streams: the indices of step ``k`` are a pure function of (seed, k).

Epoch ``j`` of a stream is a permutation (or, class-balanced, a weighted draw with replacement)
from a generator seeded by ``(seed, stream, j)``; the stream is the concatenation of its epochs.
So source and target keep in step forever whatever their sizes, a resumed run reads exactly the
batches the uninterrupted one would have, and rank ``r`` of ``W`` reads the ``r``-th of ``W``
disjoint slices of each global batch (a DistributedSampler without state).
"""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np
import torch


def stream_generator(seed: int, stream: int, index: int) -> torch.Generator:
    """The generator of draw ``index`` of random stream ``stream`` under ``seed``: the one seeding rule of
    the trainer's resumable randomness (batch order here, augmentation in ``augment.py``). The trainer's
    augmentation streams 1/2 share ids with the source/target batch streams, so augmentation at step k uses
    the generator of those streams' epoch k: correlated draws, harmless, kept because changing the ids
    would change every benchmarked figure."""
    return torch.Generator().manual_seed((int(seed) * 1_000_003 + int(stream) * 10_007 + int(index)) % (2 ** 63))


class BatchStream:
    def __init__(self, n: int, batch_size: int, seed: int, stream: int, labels: Optional[np.ndarray] = None,
                 balanced: bool = False, rank: int = 0, world_size: int = 1):
        if n <= 0:
            raise ValueError("cannot sample from an empty split")
        self.n, self.batch_size, self.seed, self.stream = n, batch_size, seed, stream
        self.rank, self.world = rank, world_size
        self.weights: Optional[torch.Tensor] = None
        if balanced and labels is not None and (labels >= 0).any():
            counts = np.bincount(labels[labels >= 0])
            w = np.where(labels >= 0, 1.0 / np.maximum(counts[np.clip(labels, 0, None)], 1), 0.0)
            self.weights = torch.as_tensor(w, dtype=torch.float64)
        self._cache: Dict[int, torch.Tensor] = {}

    def _epoch(self, j: int) -> torch.Tensor:
        if j not in self._cache:
            g = stream_generator(self.seed, self.stream, j)
            if self.weights is not None:
                idx = torch.multinomial(self.weights, self.n, replacement=True, generator=g)
            else:
                idx = torch.randperm(self.n, generator=g)
            self._cache = {j: idx}  # keep one epoch; steps move forward
            return idx
        return self._cache[j]

    def indices(self, step: int) -> torch.Tensor:
        """This rank's indices for global step ``step``."""
        start = (step * self.world + self.rank) * self.batch_size
        out = []
        pos = start
        while len(out) < self.batch_size:
            j, off = divmod(pos, self.n)
            take = min(self.batch_size - len(out), self.n - off)
            out.extend(self._epoch(j)[off:off + take].tolist())
            pos += take
        return torch.as_tensor(out, dtype=torch.long)
