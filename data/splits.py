"""Subject-independent splits: no person in both train and test when identities are known.

With identities, whole people are assigned to the test side until it holds about ``test_fraction``
of the faces; without them (FER2013, RAF-DB), the split is stratified by class. Deterministic per seed.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np

from fer_edge.data.dataset import FaceDataset
from fer_edge.runtime.errors import DataError


def split_indices(ds: FaceDataset, test_fraction: float = 0.2, seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """(train indices, test indices) of ``ds``; subject-independent when every record has an identity."""
    if not 0.0 < test_fraction < 1.0:
        raise DataError(f"test_fraction {test_fraction} must be in (0, 1)")
    n = len(ds)
    if n < 2:
        raise DataError(f"{ds.name}: {n} face(s) cannot be split into train and test")
    rng = np.random.default_rng(seed)
    ids = [r.identity for r in ds.records]
    if all(i is not None for i in ids) and len(set(ids)) >= 2:
        people: Dict[str, List[int]] = {}
        for k, i in enumerate(ids):
            people.setdefault(i, []).append(k)
        order = sorted(people)
        rng.shuffle(order)
        test: List[int] = []
        for person in order[:-1]:  # at least one person stays in train
            if len(test) >= test_fraction * n:
                break
            test += people[person]
        test_set = set(test)
        train = [k for k in range(n) if k not in test_set]
        return np.asarray(train, np.int64), np.asarray(sorted(test), np.int64)
    labels = ds.label_array()
    train, test = [], []
    for lab in np.unique(labels):
        idx = np.flatnonzero(labels == lab)
        rng.shuffle(idx)
        k = int(round(len(idx) * test_fraction)) if len(idx) > 1 else 0
        test += idx[:k].tolist()
        train += idx[k:].tolist()
    return np.asarray(sorted(train), np.int64), np.asarray(sorted(test), np.int64)


def split(ds: FaceDataset, test_fraction: float = 0.2, seed: int = 0) -> Tuple[FaceDataset, FaceDataset]:
    """(train, test) datasets; see :func:`split_indices`."""
    tr, te = split_indices(ds, test_fraction, seed)
    return ds.subset(tr, f"{ds.name}/train"), ds.subset(te, f"{ds.name}/test")
