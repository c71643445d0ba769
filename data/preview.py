"""Contact sheets: a grid of faces per domain and class, so a person can see what the model sees.

One row per (domain, class) with the row's name written on the left; faces are picked evenly
through each group (deterministic), drawn at ``tile`` pixels. OpenCV only (no matplotlib needed).
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import cv2
import numpy as np

from fer_edge.runtime.errors import DataError

from .dataset import FaceDataset

LABEL_W = 150


def groups(ds: FaceDataset) -> Dict[Tuple[str, str], List[int]]:
    """Record indices by (domain, class name); unlabelled records go under 'unlabelled'."""
    out: Dict[Tuple[str, str], List[int]] = {}
    for i, r in enumerate(ds.records):
        name = ds.labels[r.label] if r.label >= 0 else "unlabelled"
        out.setdefault((r.domain, name), []).append(i)
    order = {lab: k for k, lab in enumerate(list(ds.labels) + ["unlabelled"])}
    return dict(sorted(out.items(), key=lambda kv: (kv[0][0], order.get(kv[0][1], 99))))


def contact_sheet(ds: FaceDataset, per_row: int = 10, tile: int = 80) -> np.ndarray:
    """A BGR image with one labelled row per (domain, class). Unreadable images are skipped."""
    rows = []
    for (domain, name), idx in groups(ds).items():
        picks = [idx[int(k)] for k in np.linspace(0, len(idx) - 1, min(per_row, len(idx)))]
        row = np.full((tile, LABEL_W + per_row * tile, 3), 255, np.uint8)
        cv2.putText(row, name, (6, tile // 2 - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(row, f"{domain} ({len(idx)})", (6, tile // 2 + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (90, 90, 90), 1, cv2.LINE_AA)
        for k, i in enumerate(picks):
            try:
                img = ds.load_image(ds.records[i])
            except (ValueError, DataError, cv2.error):
                continue
            if img.ndim == 2:
                img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
            x = LABEL_W + k * tile
            row[:, x:x + tile] = cv2.resize(img, (tile, tile), interpolation=cv2.INTER_AREA)
        rows.append(row)
    if not rows:
        raise DataError(f"{ds.name}: nothing to preview")
    return np.vstack(rows)
