"""RAF-DB basic: ``EmoLabel/list_patition_label.txt`` (``train_00001.jpg 5``) and ``Image/aligned|original``.

Labels are 1–7 in RAF's order. Aligned images (``train_00001_aligned.jpg``) are preferred when the
folder exists, because they are what the published baselines train on.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from fer_edge.data.dataset import FaceRecord
from fer_edge.runtime.errors import DataError

from .common import LabelSpace, Loaded

#: RAF-DB's class order (label 1 is surprise).
RAF_ORDER = ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral")
LIST_NAME = "list_patition_label.txt"


def find_list(root: Path) -> Optional[Path]:
    for cand in (root / LIST_NAME, root / "EmoLabel" / LIST_NAME, root / "basic" / "EmoLabel" / LIST_NAME):
        if cand.is_file():
            return cand
    return None


RAF_LABEL_TEXT = frozenset(str(i) for i in range(1, 8))


def load(root: Path, space: LabelSpace) -> Loaded:
    lst = find_list(root) if root.is_dir() else root
    if lst is None:
        raise DataError(f"{root}: no {LIST_NAME} found (expected EmoLabel/{LIST_NAME})")
    base = lst.parent.parent if lst.parent.name == "EmoLabel" else lst.parent
    out = Loaded(base)
    aligned = (base / "Image" / "aligned").is_dir()
    for n, line in enumerate(lst.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        where = f"{lst.name}:{n}"
        if len(parts) != 2 or parts[1] not in RAF_LABEL_TEXT:  # not isdigit(): it admits "¹", which int() refuses
            out.skip(where, f"malformed line {line.strip()!r} (expected '<image> <label 1-7>')")
            continue
        name = parts[0]
        stem, suf = name.rsplit(".", 1) if "." in name else (name, "jpg")
        rel = f"Image/aligned/{stem}_aligned.{suf}" if aligned else f"Image/original/{name}"
        label, why = space.index(RAF_ORDER[int(parts[1]) - 1])
        if label is None:
            out.skip(rel, why)
            continue
        out.add_file(rel, FaceRecord(path=rel, label=label, domain=f"rafdb:{stem.split('_')[0]}"))
    return out
