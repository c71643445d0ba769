"""From ``FaceDataset`` objects to the in-memory tensors the trainer samples from.

Each split is decoded once through the runtime's one ``preprocess`` (``FaceDataset.arrays``), so the
network trains on exactly the pixels the runtime will feed it. The source-validation split used by
the ``source_val`` and ``dev`` selectors is carved out of the labelled source here, by identity
where identities are known (no person in both), so it says something about unseen people.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from fer_edge.data.dataset import FaceDataset
from fer_edge.runtime.contract import PreprocessSpec
from fer_edge.runtime.errors import DataError

ROLES = ("source", "source_val", "source_test", "target", "target_val", "target_test")


@dataclass
class SplitTensors:
    """One split as tensors. Unknown labels/identities are -1, unknown intensity/pose NaN."""

    name: str
    x: torch.Tensor
    y: torch.Tensor
    intensity: torch.Tensor
    identity: torch.Tensor
    pose: torch.Tensor
    fingerprint: str
    #: near-infrared look-alike inputs row-aligned with ``x`` (``train.augment.spectral``; source only)
    x_nir: Optional[torch.Tensor] = None

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def labelled(self) -> bool:
        return bool((self.y >= 0).any())

    def take(self, idx: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        return self.x[idx], self.y[idx], self.intensity[idx], self.identity[idx], self.pose[idx]

    def head(self, n: Optional[int], seed: int = 0) -> SplitTensors:
        """A fixed random subset of at most ``n`` samples (all when ``n`` is None)."""
        if n is None or n >= len(self):
            return self
        idx = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n].sort().values
        return SplitTensors(self.name, self.x[idx], self.y[idx], self.intensity[idx], self.identity[idx],
                            self.pose[idx], self.fingerprint)


def fingerprint(ds: FaceDataset) -> str:
    """sha256 over the records (path, label, identity): names what the model was trained on."""
    h = hashlib.sha256(str(ds.root).encode())
    for r in ds.records:
        h.update(f"{r.path}|{r.label}|{r.identity}\n".encode())
    return h.hexdigest()


def to_tensors(ds: FaceDataset, spec: PreprocessSpec, identity_map: Mapping[str, int], progress: bool = True,
               nir: Optional[Tuple[bool, int]] = None) -> SplitTensors:
    """``nir=(clahe, seed)`` also makes the near-infrared views of colour faces (train/spectral.py)."""
    x, keep = ds.arrays(spec, progress=progress)
    x_nir = None
    if nir is not None:
        from .spectral import nir_views

        views = nir_views(ds, keep, x, spec, clahe=nir[0], seed=nir[1])
        x_nir = None if views is None else torch.from_numpy(np.ascontiguousarray(views))
    recs = [ds.records[i] for i in keep]
    y = np.asarray([r.label for r in recs], dtype=np.int64)
    inten = np.asarray([r.intensity for r in recs], dtype=np.float32)
    ident = np.asarray([identity_map.get(str(r.identity), -1) if r.identity is not None else -1 for r in recs],
                       dtype=np.int64)
    pose = np.asarray([[r.yaw, r.pitch, r.roll] for r in recs], dtype=np.float32).reshape(-1, 3)
    return SplitTensors(ds.name, torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y),
                        torch.from_numpy(inten), torch.from_numpy(ident), torch.from_numpy(pose), fingerprint(ds),
                        x_nir)


def split_source_val(ds: FaceDataset, fraction: float, seed: int) -> Tuple[FaceDataset, FaceDataset]:
    """Hold out ``fraction`` of the source, whole identities at a time where they are known."""
    n = len(ds.records)
    if fraction <= 0 or n < 2:
        return ds, ds.subset([], name=f"{ds.name}-val")
    rng = np.random.default_rng(seed)
    ids = [r.identity for r in ds.records]
    if all(i is not None for i in ids) and len(set(ids)) >= 3:
        uniq = sorted(set(map(str, ids)))
        rng.shuffle(uniq)
        target_n, held, val_ids = fraction * n, 0, set()
        counts = {u: 0 for u in uniq}
        for i in ids:
            counts[str(i)] += 1
        for u in uniq:
            if held >= target_n or len(val_ids) >= len(uniq) - 1:
                break
            val_ids.add(u)
            held += counts[u]
        val = [k for k, i in enumerate(ids) if str(i) in val_ids]
    else:
        val = sorted(rng.permutation(n)[:max(1, int(math.ceil(fraction * n)))].tolist())
    val_set = set(val)
    train = [k for k in range(n) if k not in val_set]
    return ds.subset(train, name=ds.name), ds.subset(val, name=f"{ds.name or 'source'}-val")


def only_identity(ds: FaceDataset, identity: str) -> FaceDataset:
    keep = [k for k, r in enumerate(ds.records) if str(r.identity) == str(identity)]
    if not keep:
        known = sorted({str(r.identity) for r in ds.records if r.identity is not None})[:10]
        raise DataError(f"{ds.name or ds.root}: no faces of train.target_identity={identity!r}; "
                        f"known identities include {known}")
    return ds.subset(keep)


def prepare(datasets: Mapping[str, FaceDataset], spec: PreprocessSpec, source_val_fraction: float, seed: int,
            target_identity: Optional[str] = None, progress: bool = True,
            source_nir: Optional[Tuple[bool, int]] = None) -> Dict[str, SplitTensors]:
    """All splits as tensors; ``source`` and ``target`` required, the others optional.

    ``source_nir=(clahe, seed)`` gives the labelled source split its near-infrared views (``train.augment.spectral``).
    """
    unknown = set(datasets) - set(ROLES)
    if unknown:
        raise DataError(f"unknown dataset roles {sorted(unknown)}; allowed {list(ROLES)}")
    for role in ("source", "target"):
        if role not in datasets:
            raise DataError(f"training needs a {role!r} dataset (data.{role} in the config)")
    ds: Dict[str, FaceDataset] = dict(datasets)
    ds["source"].require(labelled=True)
    ds["target"].require()
    if "source_val" not in ds:
        ds["source"], ds["source_val"] = split_source_val(ds["source"], source_val_fraction, seed)
    if target_identity is not None:
        for role in ("target", "target_val", "target_test"):
            if role in ds:
                ds[role] = only_identity(ds[role], target_identity)
    if "target_val" not in ds:
        ds["target_val"] = ds["target"]
    ident_names: List[str] = sorted({str(r.identity) for r in ds["source"].records if r.identity is not None})
    identity_map = {n: i for i, n in enumerate(ident_names)}
    out = {role: to_tensors(d, spec, identity_map, progress, source_nir if role == "source" else None)
           for role, d in ds.items()}
    for role in ("source", "target"):
        if len(out[role]) == 0:
            raise DataError(f"{role}: no readable images ({len(ds[role].skipped)} skipped)\n"
                            f"{ds[role].skip_summary()}")
    return out


def num_identities(splits: Mapping[str, SplitTensors]) -> int:
    ids = splits["source"].identity
    return int(ids.max()) + 1 if len(ids) and int(ids.max()) >= 0 else 0


def describe(splits: Mapping[str, SplitTensors]) -> str:
    return ", ".join(f"{k}={len(v)}" for k, v in splits.items())


def labels_of(datasets: Mapping[str, FaceDataset]) -> Sequence[str]:
    return tuple(datasets["source"].labels)
