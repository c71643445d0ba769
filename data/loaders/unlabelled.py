"""An unlabelled folder of face images (target-domain footage for adaptation and INT8 calibration)."""
from __future__ import annotations

from pathlib import Path

from fer_edge.data.dataset import FaceRecord

from .common import Loaded, is_image


def load(root: Path) -> Loaded:
    out = Loaded(root)
    for p in sorted(q for q in root.rglob("*") if q.is_file() and not any(s.startswith(".") for s in q.parts[-2:])):
        rel = p.relative_to(root).as_posix()
        if is_image(p):
            out.add_file(rel, FaceRecord(path=rel, domain=root.name))
        elif p.suffix.lower() not in (".csv", ".txt", ".json", ".jsonl", ".md"):
            out.skip(rel, f"not an image file ({p.suffix or 'no suffix'})")
    return out
