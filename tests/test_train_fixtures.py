"""Tiny on-the-fly face datasets for the training tests (no tests here; imported by test_train*.py).

Each class is a bar at a class-specific height, so a tiny CNN learns it in a few steps; the
"target" domain is darker, lower in contrast and noisier — a small, real domain gap.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict

import cv2
import numpy as np

from fer_edge.data.dataset import FaceDataset, FaceRecord
from fer_edge.runtime.contract import LABELS


def make_dataset(root: Path, n: int, domain: str = "studio", seed: int = 0, size: int = 32,
                 labelled: bool = True, identities: int = 6) -> FaceDataset:
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    recs = []
    for i in range(n):
        k = int(rng.integers(len(LABELS)))
        img = np.full((size, size), 128, np.float32)
        y0 = 2 + k * (size - 6) // len(LABELS)
        inten = float(rng.uniform(0.1, 1.0))
        img[y0:y0 + 3, 4:size - 4] += 100 * (0.4 + 0.6 * inten)
        if domain != "studio":
            img = 40 + 0.5 * img + rng.normal(0, 12, img.shape)
        else:
            img += rng.normal(0, 6, img.shape)
        path = f"images/{domain}_{seed}_{i:04d}.png"
        cv2.imwrite(str(root / path), np.clip(img, 0, 255).astype(np.uint8))
        recs.append(FaceRecord(path, k if labelled else -1, inten, f"id{int(rng.integers(identities))}",
                               float(rng.uniform(-40, 40)), float(rng.uniform(-10, 10)), 0.0, domain))
    return FaceDataset(root, recs, LABELS, name=f"{domain}-{seed}")


def make_datasets(tmp: Path, n_source: int = 96, n_target: int = 64) -> Dict[str, FaceDataset]:
    return {"source": make_dataset(tmp / "src", n_source, "studio", 1),
            "source_test": make_dataset(tmp / "srct", 32, "studio", 2),
            "target": make_dataset(tmp / "tgt", n_target, "cabin-nir", 3),
            "target_val": make_dataset(tmp / "tgtv", 32, "cabin-nir", 4, labelled=False),
            "target_test": make_dataset(tmp / "tgtt", 32, "cabin-nir", 5)}
