"""What every loader shares: image suffixes, the label space, csv reading and the skip list.

A loader never raises for one bad row or file; it appends a :class:`Skip` naming the path and the
reason and goes on, so a 30 000-image dataset with three broken files still trains and the user
learns which three files to fix.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from fer_edge.data.dataset import FaceRecord, Skip, safe_join
from fer_edge.runtime.contract import CONTEMPT, LABELS, canonical_label
from fer_edge.runtime.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm")


@dataclass
class LabelSpace:
    """The label list a dataset is loaded into, and whether contempt is kept."""

    labels: Tuple[str, ...] = LABELS
    contempt: bool = False

    def __post_init__(self) -> None:
        labels = tuple(self.labels)
        if self.contempt and CONTEMPT not in labels:
            labels = labels + (CONTEMPT,)
        self.labels = labels

    def index(self, name: str) -> Tuple[Optional[int], str]:
        """(index, "") for a known kept class, else (None, reason to skip)."""
        canon = canonical_label(name)
        if canon is None:
            return None, f"unknown expression {name!r}"
        if canon == CONTEMPT and not self.contempt:
            return None, "contempt is not in the label set (set data.contempt: true to keep it)"
        if canon not in self.labels:
            return None, f"expression {canon!r} is not in the label set {list(self.labels)}"
        return self.labels.index(canon), ""


@dataclass
class Loaded:
    """What a loader hands back to :func:`load_dataset`: records, skips and in-memory images."""

    root: Path
    records: List[FaceRecord] = field(default_factory=list)
    skipped: List[Skip] = field(default_factory=list)
    memory: Dict[str, object] = field(default_factory=dict)

    def skip(self, path: str, reason: str) -> None:
        self.skipped.append(Skip(str(path), reason))

    def add_file(self, rel: str, rec: FaceRecord) -> None:
        """Add a record whose image is ``root/rel`` after the cheap checks (inside root, exists, not empty)."""
        try:
            p = safe_join(self.root, rel)
        except DataError as exc:
            self.skip(rel, str(exc))
            return
        if not p.is_file():
            self.skip(rel, "file not found")
        elif p.stat().st_size == 0:
            self.skip(rel, "zero-byte file")
        else:
            self.records.append(rec)


def is_image(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")


def read_csv(path: Path, required: Sequence[str]) -> Tuple[List[str], Iterator[Tuple[int, Dict[str, str]]]]:
    """(header, rows with their 1-based line numbers); DataError when a required column is missing."""
    try:
        fh = open(path, newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    reader = csv.DictReader(fh)
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in required if c not in header]
    if missing:
        fh.close()
        raise DataError(f"{path}: csv lacks column(s) {missing}; has {header}")
    reader.fieldnames = header

    def rows() -> Iterator[Tuple[int, Dict[str, str]]]:
        with fh:
            for row in reader:
                yield reader.line_num, row

    return header, rows()


def csv_header(path: Path) -> List[str]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            first = fh.readline()
    except (OSError, UnicodeDecodeError):
        return []
    return [h.strip() for h in next(csv.reader([first]), [])]


def to_float(value: Optional[str]) -> float:
    try:
        return float(value) if value not in (None, "") else float("nan")
    except ValueError:
        return float("nan")
