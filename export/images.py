"""Read a folder of face crops into a :class:`FaceDataset` for parity checks and calibration.

The data engineer's ``fer_edge.data.loaders.load_dataset(path, fmt="auto")`` understands the
dataset layouts (FER2013 CSV, AffectNet, class folders …); a plain folder of images, which is what a
deployment camera dump usually is, falls back to a recursive walk. Labels come from the parent
folder name through :func:`~fer_edge.runtime.contract.label_index` (``happy/`` → happiness), or -1.
Imports numpy/OpenCV only, never torch.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from fer_edge.data.dataset import FaceDataset, FaceRecord
from fer_edge.runtime.contract import LABELS, PreprocessSpec, label_index
from fer_edge.runtime.errors import DataError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm", ".tif", ".tiff", ".webp")


def walk_folder(root: Union[str, Path], labels: Sequence[str] = LABELS, name: str = "") -> FaceDataset:
    """Every image under ``root`` (sorted, recursive); label from the parent folder's name or -1."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder of images")
    records: List[FaceRecord] = []
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
            idx = label_index(p.parent.name, labels) if p.parent != root else None
            records.append(FaceRecord(path=str(p.relative_to(root)), label=-1 if idx is None else idx))
    return FaceDataset(root, records, tuple(labels), name or root.name)


def load_folder(root: Union[str, Path], labels: Sequence[str] = LABELS, name: str = "") -> FaceDataset:
    """The data engineer's ``load_dataset`` (any supported layout, labels in the model's order), else
    :func:`walk_folder` for what it does not recognise."""
    try:
        from fer_edge.data.loaders import load_dataset
    except ImportError:
        return walk_folder(root, labels, name)
    try:
        return load_dataset(root, fmt="auto", labels=tuple(labels), name=name or None)
    except DataError as exc:
        log.debug("%s: load_dataset did not take it (%s); reading it as a plain folder", root, exc)
        return walk_folder(root, labels, name)


def dataset_arrays(ds: FaceDataset, spec: PreprocessSpec, limit: Optional[int] = None,
                   progress: bool = False) -> Tuple[np.ndarray, np.ndarray, List[str], List[str]]:
    """(inputs NxCxHxW, labels N, kept paths, skipped "path — reason") over the first ``limit`` records."""
    sub = ds if limit is None or limit >= len(ds) else ds.subset(range(limit))
    before = len(sub.skipped)
    x, keep = sub.arrays(spec, progress=progress)
    y = sub.label_array(keep)
    paths = [sub.records[i].path for i in keep]
    return x, y, paths, [str(s) for s in sub.skipped[before:]]


def list_hash(paths: Sequence[str]) -> str:
    """sha256 of the newline-joined image list: says which images a model was calibrated/checked on."""
    return hashlib.sha256("\n".join(paths).encode("utf-8")).hexdigest()


def synthetic_faces(n: int, size: int, seed: int = 0) -> List[np.ndarray]:
    """Deterministic face-like uint8 crops (blurred blobs for eyes/mouth on a skin-tone oval).

    Only for the parity gate when no images are given: it compares two implementations of the same
    network, so inputs need a realistic value range, not real faces. Never used for calibration.
    """
    import cv2

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        img = np.full((size, size), int(rng.integers(20, 80)), np.uint8)
        c = size // 2
        cv2.ellipse(img, (c, c), (int(size * 0.32), int(size * 0.42)), 0, 0, 360, int(rng.integers(120, 220)), -1)
        for dx in (-1, 1):
            cv2.circle(img, (c + dx * size // 6, int(size * 0.4)), max(1, size // 16), int(rng.integers(0, 60)), -1)
        mouth_h = max(1, int(size * rng.uniform(0.02, 0.12)))
        cv2.ellipse(img, (c, int(size * 0.68)), (size // 6, mouth_h), 0, 0, 360, int(rng.integers(0, 80)), -1)
        img = img.astype(np.float32) + rng.normal(0, 8, img.shape)
        img = cv2.GaussianBlur(np.clip(img, 0, 255).astype(np.uint8), (3, 3), 0)
        out.append(img)
    return out
