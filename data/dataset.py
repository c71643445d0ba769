"""``FaceDataset``: the one interface every loader returns and every stage reads.

A dataset is a list of :class:`FaceRecord` (a face-crop image on disk plus whatever labels are known)
and a root folder. Images are decoded with OpenCV and turned into model inputs by the runtime's one
:func:`~fer_edge.runtime.contract.preprocess`, so training, calibration, evaluation and the runtime
see the same pixels. Unreadable images never crash a run: they are skipped, counted, and named in
:attr:`FaceDataset.skipped`. This module imports numpy and OpenCV only (no torch), so calibration and
evaluation can use it on a device.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from fer_edge.runtime.contract import LABELS, PreprocessSpec, preprocess
from fer_edge.runtime.crop import CropPolicy, finish_crop
from fer_edge.runtime.errors import DataError

NAN = float("nan")


@dataclass(frozen=True)
class FaceRecord:
    """One face crop. ``label`` is an index into the dataset's ``labels`` or -1 when unlabelled."""

    path: str
    label: int = -1
    intensity: float = NAN
    identity: Optional[str] = None
    yaw: float = NAN
    pitch: float = NAN
    roll: float = NAN
    domain: str = "unknown"


@dataclass
class Skip:
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path} — {self.reason}"


def safe_join(root: Path, rel: str) -> Path:
    """``root / rel`` but refuse absolute paths and ``..`` that escape ``root`` (DataError)."""
    if "\x00" in str(rel):
        raise DataError(f"{rel!r}: path contains a NUL byte; refused")
    root_r = root.resolve()
    candidate = (root / rel).resolve()
    if candidate != root_r and root_r not in candidate.parents:
        raise DataError(f"{rel}: path escapes the dataset root {root}; refused")
    return candidate


def read_image(path: Path) -> np.ndarray:
    """Decode an image file as uint8 (gray stays gray, colour is BGR); ValueError with a reason."""
    if not path.is_file():
        raise ValueError("file not found")
    if path.stat().st_size == 0:
        raise ValueError("zero-byte file")
    buf = np.fromfile(str(path), dtype=np.uint8)
    if buf[:2].tobytes() == b"\xff\xd8" and b"\xff\xd9" not in buf[-64:].tobytes():
        # libjpeg decodes a truncated JPEG with a grey tail and only a warning; refuse it instead.
        raise ValueError("truncated JPEG (no end-of-image marker)")
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError("not a decodable image (corrupt or truncated)")
    if img.dtype != np.uint8:
        if img.dtype == np.uint16:
            img = (img >> 8).astype(np.uint8)
        else:
            raise ValueError(f"unsupported pixel type {img.dtype}")
    if img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim not in (2, 3) or min(img.shape[:2]) < 2:
        raise ValueError(f"unusable image shape {img.shape}")
    return img


@dataclass
class FaceDataset:
    """Records + root + label list. ``arrays(spec)`` gives preprocessed inputs, cached in memory."""

    root: Path
    records: List[FaceRecord]
    labels: Tuple[str, ...] = LABELS
    name: str = ""
    skipped: List[Skip] = field(default_factory=list)
    #: Decoded images held in memory, keyed by record path (FER2013 pixels, tests); checked before disk.
    memory: Dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    #: Pre-cut faces (cut by someone else): the crop policy whose finish (CLAHE) :meth:`arrays` applies before
    #: ``preprocess``, as the runtime does to a detected face. None: the pixels are final (fer-edge cut them).
    finish: Optional[CropPolicy] = None
    _cache: Dict[str, Tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[FaceRecord]:
        return iter(self.records)

    @property
    def labelled(self) -> bool:
        return any(r.label >= 0 for r in self.records)

    def image_path(self, rec: FaceRecord) -> Path:
        p = Path(rec.path)
        return p if p.is_absolute() else safe_join(self.root, rec.path)

    def load_image(self, rec: FaceRecord) -> np.ndarray:
        img = self.memory.get(rec.path)
        return img if img is not None else read_image(self.image_path(rec))

    def subset(self, indices: Sequence[int], name: Optional[str] = None) -> FaceDataset:
        recs = [self.records[i] for i in indices]
        mem = {r.path: self.memory[r.path] for r in recs if r.path in self.memory} if self.memory else {}
        return FaceDataset(self.root, recs, self.labels, name or self.name, list(self.skipped), mem,
                           finish=self.finish)

    def class_counts(self) -> Dict[str, int]:
        counts = {lab: 0 for lab in self.labels}
        for r in self.records:
            if r.label >= 0:
                counts[self.labels[r.label]] += 1
        return counts

    def require(self, labelled: bool = False, all_classes: bool = False) -> FaceDataset:
        """Raise DataError for an empty dataset (or, if asked, one without labels or missing a class)."""
        where = self.name or str(self.root)
        if not self.records:
            raise DataError(f"{where}: dataset is empty ({len(self.skipped)} files skipped)")
        if labelled and not self.labelled:
            raise DataError(f"{where}: dataset has no labels but a labelled one is needed")
        if all_classes:
            missing = [k for k, v in self.class_counts().items() if v == 0]
            if missing:
                raise DataError(f"{where}: no samples of class(es) {missing}")
        return self

    def arrays(self, spec: PreprocessSpec, progress: bool = False) -> Tuple[np.ndarray, np.ndarray]:
        """(inputs NxCxHxW float32, kept record indices). Unreadable images are skipped and recorded.

        Cached per spec, so a trainer can call it every epoch for free.
        """
        key = repr(spec) + repr(None if self.finish is None else list(self.finish.pixels().values()))
        if key in self._cache:
            return self._cache[key]
        xs: List[np.ndarray] = []
        keep: List[int] = []
        it: Sequence[FaceRecord] = self.records
        if progress:
            try:
                from tqdm import tqdm

                it = tqdm(self.records, desc=f"decode {self.name or self.root.name}", leave=False)
            except ImportError:  # pragma: no cover - tqdm is part of the train extra
                pass
        for i, rec in enumerate(it):
            try:
                img = self.load_image(rec)
                xs.append(preprocess(img if self.finish is None else finish_crop(img, self.finish), spec))
                keep.append(i)
            except (ValueError, DataError, cv2.error) as exc:
                self.skipped.append(Skip(rec.path, str(exc)))
        x = np.stack(xs) if xs else np.zeros((0, *spec.input_shape), np.float32)
        out = (x, np.asarray(keep, dtype=np.int64))
        self._cache[key] = out
        return out

    def label_array(self, indices: Optional[np.ndarray] = None) -> np.ndarray:
        return record_field(self.records, "label", indices, np.int64)

    def field_array(self, name: str, indices: Optional[np.ndarray] = None) -> np.ndarray:
        return record_field(self.records, name, indices)

    def skip_summary(self) -> str:
        if not self.skipped:
            return ""
        lines = [f"{len(self.skipped)} skipped:"] + [f"  {s}" for s in self.skipped[:50]]
        if len(self.skipped) > 50:
            lines.append(f"  … and {len(self.skipped) - 50} more")
        return "\n".join(lines)


def record_field(records: Sequence[FaceRecord], name: str, indices: Optional[np.ndarray] = None,
                 dtype: type = np.float32) -> np.ndarray:
    """One FaceRecord field as an array, for all records or those at ``indices`` (e.g. the kept ones)."""
    recs = records if indices is None else [records[i] for i in indices]
    return np.asarray([getattr(r, name) for r in recs], dtype=dtype)


def with_domain(records: Sequence[FaceRecord], domain: str) -> List[FaceRecord]:
    return [replace(r, domain=domain) for r in records]


def is_nan(v: float) -> bool:
    return isinstance(v, float) and math.isnan(v)
