"""Dataset loaders: every layout people have on disk becomes one :class:`FaceDataset`.

``load_dataset(path, fmt="auto")`` detects the layout (synth/labels csv, ImageFolder, FER2013 csv,
RAF-DB basic, AffectNet csv, an unlabelled folder) or takes ``fmt``. Each format is one small module;
this one only detects, dispatches and turns "nothing usable" into a :class:`DataError` that says why.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional, Sequence, Union

from fer_edge.data.dataset import FaceDataset
from fer_edge.runtime.contract import LABELS
from fer_edge.runtime.errors import DataError

from . import affectnet, fer2013, imagefolder, rafdb, synth_csv, unlabelled
from .common import IMAGE_SUFFIXES, LabelSpace, Loaded, csv_header

log = logging.getLogger("fer_edge.data")

#: format name → the module that reads it (its ``load``); ``load_dataset`` dispatches on the name.
MODULES = {"synth": synth_csv, "imagefolder": imagefolder, "fer2013": fer2013, "rafdb": rafdb,
           "affectnet": affectnet, "unlabelled": unlabelled}
FORMATS = tuple(MODULES)


def _csvs(root: Path):
    return sorted(p for p in root.glob("*.csv") if p.is_file())


def detect_format(path: Union[str, Path]) -> str:
    """The layout of ``path`` (one of FORMATS); DataError naming what was looked for if none fits."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such file or folder")
    files = [p] if p.is_file() else _csvs(p)
    for f in files:
        head = set(csv_header(f)) if f.suffix.lower() == ".csv" else set()
        if {"emotion", "pixels"} <= head:
            return "fer2013"
        if {"subDirectory_filePath", "expression"} <= head:
            return "affectnet"
        if {"path", "expression"} <= head:
            return "synth"
    if p.is_file():
        if p.name == rafdb.LIST_NAME:
            return "rafdb"
        raise DataError(f"{p}: not a known dataset file (FER2013 csv, AffectNet csv, labels.csv with "
                        f"path,expression, or {rafdb.LIST_NAME})")
    if rafdb.find_list(p) is not None:
        return "rafdb"
    if imagefolder.class_dirs(p):
        return "imagefolder"
    if any(q.suffix.lower() in IMAGE_SUFFIXES for q in p.rglob("*")):
        return "unlabelled"
    raise DataError(f"{p}: no dataset found (looked for labels.csv, FER2013/AffectNet csv, {rafdb.LIST_NAME}, "
                    "class folders, or any image)")


def _csv_in(p: Path, fmt: str, columns: Sequence[str]) -> Path:
    if p.is_file():
        return p
    for f in _csvs(p):
        if set(columns) <= set(csv_header(f)):
            return f
    raise DataError(f"{p}: no csv with columns {list(columns)} for format {fmt!r}")


def load_dataset(path: Union[str, Path], fmt: str = "auto", labels: Sequence[str] = LABELS,
                 contempt: bool = False, name: Optional[str] = None) -> FaceDataset:
    """Load any supported layout at ``path`` into a :class:`FaceDataset` (skips recorded, never raised).

    Raises DataError for a missing path, an unknown format, or a dataset with no usable face.
    """
    p = Path(path)
    if fmt in (None, "", "auto"):
        fmt = detect_format(p)
    if fmt not in FORMATS:
        raise DataError(f"format {fmt!r} is not one of {['auto', *FORMATS]}")
    if not p.exists():
        raise DataError(f"{p}: no such file or folder")
    space = LabelSpace(tuple(labels), contempt)
    loaded: Loaded
    if fmt == "synth":
        loaded = synth_csv.load(_csv_in(p, fmt, synth_csv.REQUIRED), space)
    elif fmt == "fer2013":
        loaded = fer2013.load(_csv_in(p, fmt, ("emotion", "pixels")), space)
    elif fmt == "affectnet":
        loaded = affectnet.load(_csv_in(p, fmt, ("subDirectory_filePath", "expression")), space)
    elif fmt == "rafdb":
        loaded = rafdb.load(p, space)
    elif fmt == "imagefolder":
        if not p.is_dir():
            raise DataError(f"{p}: an ImageFolder dataset must be a folder")
        loaded = imagefolder.load(p, space)
    else:  # fmt == "unlabelled" (FORMATS was checked above)
        if not p.is_dir():
            raise DataError(f"{p}: an unlabelled dataset must be a folder of images")
        loaded = unlabelled.load(p)
    ds = FaceDataset(loaded.root, loaded.records, space.labels, name or p.name, loaded.skipped,
                     dict(loaded.memory))
    if not ds.records:
        raise DataError(f"{ds.name}: dataset at {p} (format {fmt}) has no usable face"
                        + (f"; {len(ds.skipped)} skipped, e.g. {ds.skipped[0]}" if ds.skipped else ""))
    log.info("loaded %s (%s): %d faces%s", ds.name, fmt, len(ds),
             f", {len(ds.skipped)} skipped" if ds.skipped else "")
    if ds.skipped:
        log.warning("%s", ds.skip_summary())
    return ds


__all__ = ["FORMATS", "MODULES", "detect_format", "load_dataset"]
