"""ImageFolder: one folder per class (``happy/``, ``Happiness/``, ``HA/``, ``4_sad/`` …), also below a split folder.

Folder names go through the contract's aliases, so the common spellings of every dataset work.
"""
from __future__ import annotations

from pathlib import Path
from typing import List

from fer_edge.data.dataset import FaceRecord
from fer_edge.runtime.contract import canonical_label

from .common import LabelSpace, Loaded, is_image

SPLIT_DIRS = ("train", "training", "test", "testing", "val", "valid", "validation", "publictest", "privatetest")


def class_dirs(root: Path) -> List[Path]:
    """Folders under ``root`` (or under its split folders) whose name is an expression."""
    found: List[Path] = []
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if canonical_label(d.name) is not None:
            found.append(d)
        elif d.name.lower() in SPLIT_DIRS:
            found += [c for c in sorted(d.iterdir()) if c.is_dir() and canonical_label(c.name) is not None]
    return found


def load(root: Path, space: LabelSpace) -> Loaded:
    out = Loaded(root)
    dirs = class_dirs(root)
    known = set(dirs) | {d.parent for d in dirs}
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if d not in known:
            out.skip(d.name + "/", "folder name is not an expression (see the label aliases)")
    for d in dirs:
        label, why = space.index(d.name)
        files = sorted(p for p in d.rglob("*") if p.is_file() and not p.name.startswith("."))
        for p in files:
            rel = p.relative_to(root).as_posix()
            if label is None:
                out.skip(rel, why)
            elif not is_image(p):
                out.skip(rel, f"not an image file ({p.suffix or 'no suffix'})")
            else:
                out.add_file(rel, FaceRecord(path=rel, label=label, domain=root.name))
    return out
