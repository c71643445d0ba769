"""``eval --detect``: score a model on camera footage, cut by the runtime's detector and crop function.

Three inputs are understood:

* a folder or video with a ``frames.jsonl`` ground truth (the synthetic scenes and cabin clip: one
  line per frame with every face's box, expression and intensity). Every face the detector finds is
  matched to a true face by IoU ≥ 0.5 and scored; true faces the detector misses are counted as
  ``missed`` (a detection problem, reported, not an expression error);
* any labelled frame dataset the loaders read (class folders …): the largest face of each frame
  carries the frame's label.

Crops come from :func:`fer_edge.runtime.detect.detect_and_crop` with the MODEL's crop policy, so the
pixels are those the runtime would feed it; footage with ground truth goes through the shared cache of
``fer-edge data faces`` (:mod:`fer_edge.data.faces`), detected once per content and policy.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from fer_edge.data.dataset import FaceRecord, Skip, record_field
from fer_edge.runtime.contract import Contract, label_index, preprocess
from fer_edge.runtime.errors import DataError

log = logging.getLogger(__name__)



@dataclass
class FootageFaces:
    """Detected, cropped and preprocessed faces with their truth; quacks like a FaceDataset for eval."""

    root: Path
    records: List[FaceRecord]
    x: np.ndarray
    labels: Tuple[str, ...]
    name: str = ""
    skipped: List[Skip] = field(default_factory=list)
    counts: Dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.records)

    def arrays(self, spec: Any, progress: bool = False) -> Tuple[np.ndarray, np.ndarray]:
        return self.x, np.arange(len(self.records), dtype=np.int64)

    def label_array(self, indices: Optional[np.ndarray] = None) -> np.ndarray:
        return record_field(self.records, "label", indices, np.int64)

    def field_array(self, name: str, indices: Optional[np.ndarray] = None) -> np.ndarray:
        return record_field(self.records, name, indices)


def _truth_file(path: Path) -> Optional[Path]:
    cand = (path if path.is_dir() else path.parent) / "frames.jsonl"
    return cand if cand.is_file() else None


def load_footage(path: Any, contract: Contract, progress: bool = False) -> FootageFaces:
    """Every face in ``path`` cut with ``contract.crop``; with ground truth, each labelled from its true face.

    With a ``frames.jsonl`` the faces come from the shared footage cache of ``fer-edge data faces``
    (``select=all`` so every true face can be scored; truth matched at IoU >= 0.5 there), so frames
    already cut for training or calibration under the same policy are not detected again.
    """
    import csv

    from fer_edge.data.dataset import read_image
    from fer_edge.data.faces import cached_faces

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    policy = contract.policy
    if _truth_file(path) is None:
        return _largest_face_per_frame(path, contract, policy)
    match_policy = dataclasses.replace(policy, select="all")  # score every true face
    out = cached_faces(path, match_policy, progress=progress)
    summ = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    with open(out / "faces.csv", newline="", encoding="utf-8") as fh:
        matched = [r for r in csv.DictReader(fh) if r["truth_iou"]]
    xs: List[np.ndarray] = []
    recs: List[FaceRecord] = []
    skipped: List[Skip] = []
    for r in matched:
        try:
            xs.append(preprocess(read_image(out / r["crop"]), contract.preprocess))
        except ValueError as exc:
            skipped.append(Skip(r["source"], f"unusable crop ({exc})"))
            continue
        lab = label_index(r["label"], contract.labels) if r["label"] else None
        recs.append(FaceRecord(path=r["source"], label=-1 if lab is None else lab,
                               intensity=float(r["intensity"]) if r["intensity"] else math.nan))
    ra = summ["recall_all"]
    counters = {**summ.get("counters", {}), "frames": summ["frames"], "true_faces": ra["true_faces"],
                "missed": ra["true_faces"] - ra["found"], "false_detections": summ["faces"] - ra["found"],
                "unreadable_frames": summ["frames_unreadable"], "detected": len(recs)}
    if not recs:
        raise DataError(f"{path}: none of the {ra['true_faces']} true faces in {summ['frames']} frames was found; "
                        "try a smaller crop.min_face or another detector (YuNet)")
    log.info("footage %s: %d of %d true faces detected (%d false detections) in %d frames", path.name,
             len(recs), counters["true_faces"], counters["false_detections"], counters["frames"])
    return FootageFaces(out, recs, np.stack(xs), tuple(contract.labels), name=path.name,
                        skipped=skipped, counts=counters)


def _largest_face_per_frame(path: Path, contract: Contract, policy: Any) -> FootageFaces:
    """Labelled frames in any loader format: the largest face of each frame carries its label."""
    from fer_edge.runtime.detect import detect_and_crop, make_detector

    from .data import _loader

    ds = _loader()(str(path))
    detector = make_detector(policy)
    counters: Counter = Counter({"frames": 0, "no_face": 0, "unreadable_frames": 0})
    mapping = {i: label_index(n, contract.labels) for i, n in enumerate(ds.labels)}
    xs, recs, skipped = [], [], list(ds.skipped)
    for rec in ds.records:
        try:
            faces = detect_and_crop(ds.load_image(rec), detector, policy, counters)
            if not faces:
                raise ValueError("no face detected")
            xs.append(preprocess(faces[0][1], contract.preprocess))
        except (ValueError, DataError) as exc:
            skipped.append(Skip(rec.path, str(exc)))
            counters["no_face" if "no face" in str(exc) else "unreadable_frames"] += 1
            continue
        lab = mapping.get(rec.label) if rec.label >= 0 else None
        recs.append(FaceRecord(path=rec.path, label=-1 if lab is None else lab, intensity=rec.intensity))
    if not recs:
        raise DataError(f"{path}: no face found in {len(ds.records)} frames; try a smaller crop.min_face "
                        "or another detector (YuNet)")
    counters.update(frames=len(ds.records), detected=len(recs))
    return FootageFaces(Path(path), recs, np.stack(xs), tuple(contract.labels), name=Path(path).name,
                        skipped=skipped, counts=dict(counters))
