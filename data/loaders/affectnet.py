"""AffectNet csv: ``subDirectory_filePath,…,expression`` with expression 0–10 in AffectNet's order.

Classes 8–10 (none, uncertain, no face) are dropped and counted; contempt (7) is kept only when the
label set allows it. Images are looked up under ``Manually_Annotated_Images/`` or the csv's folder.
"""
from __future__ import annotations

from pathlib import Path

from fer_edge.data.dataset import FaceRecord

from .common import LabelSpace, Loaded, read_csv

AFFECTNET_ORDER = ("neutral", "happiness", "sadness", "surprise", "fear", "disgust", "anger", "contempt",
                   "none", "uncertain", "noface")
IMAGE_DIRS = ("Manually_Annotated_Images", "Manually_Annotated/Manually_Annotated_Images", "images", "")


def load(csv_path: Path, space: LabelSpace) -> Loaded:
    root = csv_path.parent
    out = Loaded(root)
    prefix = next((d for d in IMAGE_DIRS if d and (root / d).is_dir()), "")
    _, rows = read_csv(csv_path, ("subDirectory_filePath", "expression"))
    for line, row in rows:
        where = f"{csv_path.name}:{line}"
        sub = (row.get("subDirectory_filePath") or "").strip()
        try:
            emo = int(str(row.get("expression", "")).strip())
            if not 0 <= emo < len(AFFECTNET_ORDER):
                raise ValueError(f"expression {emo} is not 0..10")
            if not sub:
                raise ValueError("empty subDirectory_filePath")
        except ValueError as exc:
            out.skip(where, f"malformed row ({exc})")
            continue
        rel = f"{prefix}/{sub}" if prefix else sub
        if emo >= 8:
            out.skip(rel, f"AffectNet class {emo} ({AFFECTNET_ORDER[emo]}) is not an expression; dropped")
            continue
        label, why = space.index(AFFECTNET_ORDER[emo])
        if label is None:
            out.skip(rel, why)
            continue
        out.add_file(rel, FaceRecord(path=rel, label=label, domain="affectnet"))
    return out
