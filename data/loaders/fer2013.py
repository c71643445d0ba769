"""FER2013 csv: ``emotion,pixels,Usage`` with 48×48 gray pixels as space-separated numbers.

The pixels are decoded into uint8 arrays held in the dataset's in-memory image store, so the same
``preprocess`` reads them as it reads files on disk (no cache folder to go stale).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from fer_edge.data.dataset import FaceRecord

from .common import LabelSpace, Loaded, read_csv

#: FER2013's class order.
FER_ORDER = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
SIDE = 48


def load(csv_path: Path, space: LabelSpace) -> Loaded:
    out = Loaded(csv_path.parent)
    _, rows = read_csv(csv_path, ("emotion", "pixels"))
    for line, row in rows:
        where = f"{csv_path.name}:{line}"
        try:
            emo = int(str(row.get("emotion", "")).strip())
            if not 0 <= emo < len(FER_ORDER):
                raise ValueError(f"emotion {emo} is not 0..6")
            vals = np.asarray(str(row.get("pixels") or "").split(), dtype=np.float64)
            if vals.size != SIDE * SIDE:
                raise ValueError(f"{vals.size} pixels, expected {SIDE * SIDE}")
            if vals.min() < 0 or vals.max() > 255:
                raise ValueError("pixel values outside 0..255")
        except (TypeError, ValueError) as exc:
            out.skip(where, f"malformed row ({exc})")
            continue
        label, why = space.index(FER_ORDER[emo])
        if label is None:
            out.skip(where, why)
            continue
        usage = (row.get("Usage") or "").strip() or "unknown"
        key = f"{csv_path.name}#{line}"
        out.memory[key] = vals.astype(np.uint8).reshape(SIDE, SIDE)
        out.records.append(FaceRecord(path=key, label=label, domain=f"fer2013:{usage}"))
    return out
