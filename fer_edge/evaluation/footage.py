"""``eval --detect``: score a model on camera footage, cut by the runtime's detector and crop function.

Three inputs are understood:

* a folder or video with a ``frames.jsonl`` ground truth (the synthetic scenes and cabin clip: one
  line per frame with every face's box, expression and intensity). Every face the detector finds is
  matched to a true face by IoU ≥ 0.5 and scored; true faces the detector misses are counted as
  ``missed`` (a detection problem, reported, not an expression error);
* any labelled frame dataset the loaders read (class folders …): the largest face of each frame
  carries the frame's label.

Crops come from :func:`fer_edge.runtime.detect.detect_and_crop` with the MODEL's crop policy, so the
pixels are those the runtime would feed it.
"""
from __future__ import annotations

import json
import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from fer_edge.runtime.contract import Contract, label_index, preprocess
from fer_edge.runtime.errors import DataError
from fer_edge.train.data.dataset import FaceRecord, Skip

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov")
MATCH_IOU = 0.5


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
        recs = self.records if indices is None else [self.records[i] for i in indices]
        return np.asarray([r.label for r in recs], dtype=np.int64)

    def field_array(self, name: str, indices: Optional[np.ndarray] = None) -> np.ndarray:
        recs = self.records if indices is None else [self.records[i] for i in indices]
        return np.asarray([getattr(r, name) for r in recs], dtype=np.float32)


def _truth_file(path: Path) -> Optional[Path]:
    cand = (path if path.is_dir() else path.parent) / "frames.jsonl"
    return cand if cand.is_file() else None


def _read_truth(path: Path) -> List[Dict[str, Any]]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{n}: not valid JSON ({exc})") from exc
        if not isinstance(row, dict) or not isinstance(row.get("faces", []), list):
            raise DataError(f"{path}:{n}: expected an object with a 'faces' list")
        rows.append(row)
    return rows


def _video_in(path: Path) -> Optional[Path]:
    if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
        return path
    if path.is_dir():
        vids = sorted(p for p in path.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
        return vids[0] if vids else None
    return None


def _frames_from_video(video: Path) -> Iterator[Tuple[int, str, Optional[np.ndarray]]]:
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise DataError(f"{video}: OpenCV cannot open this video; check the file or extract its frames")
    i = 0
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            yield i, f"{video.name}#{i}", frame
            i += 1
    finally:
        cap.release()


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    from fer_edge.runtime.track import iou

    return iou(a, b)


def load_footage(path: Any, contract: Contract, progress: bool = False) -> FootageFaces:
    """Detect and crop every face in ``path`` with ``contract.crop``; label each from the truth."""
    from fer_edge.runtime.crop import CropPolicy
    from fer_edge.runtime.detect import detect_and_crop, make_detector

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    policy = CropPolicy.from_dict(dict(contract.crop)) if contract.crop else CropPolicy()
    truth_path = _truth_file(path)
    if truth_path is None:
        return _largest_face_per_frame(path, contract, policy)
    match_policy = CropPolicy.from_dict({**policy.to_dict(), "select": "all"})  # score every true face
    detector = make_detector(match_policy)
    truth = _read_truth(truth_path)
    video = _video_in(path) if not any("path" in t for t in truth) else None
    if video is not None:
        frames = _frames_from_video(video)
    else:
        from fer_edge.train.data.dataset import read_image

        root = truth_path.parent

        def frames_from_paths():
            for t in truth:
                rel = str(t.get("path", ""))
                try:
                    yield int(t.get("frame", 0)), rel, read_image(root / rel)
                except ValueError as exc:
                    yield int(t.get("frame", 0)), f"{rel} ({exc})", None

        frames = frames_from_paths()
    by_frame = {int(t.get("frame", k)): t for k, t in enumerate(truth)}
    counters: Counter = Counter({k: 0 for k in ("frames", "true_faces", "missed", "false_detections",
                                                "unreadable_frames")})
    xs: List[np.ndarray] = []
    recs: List[FaceRecord] = []
    skipped: List[Skip] = []
    for idx, name, frame in frames:
        faces = by_frame.get(idx, {}).get("faces", [])
        if frame is None:
            skipped.append(Skip(name, "unreadable frame"))
            counters["unreadable_frames"] += 1
            continue
        counters["frames"] += 1
        counters["true_faces"] += len(faces)
        found = detect_and_crop(frame, detector, match_policy, counters)
        used = set()
        for face in faces:
            box = face.get("bbox", [0, 0, 0, 0])
            best, best_iou = None, MATCH_IOU
            for k, (det, _crop) in enumerate(found):
                v = _iou(det.bbox, box)
                if k not in used and v >= best_iou:
                    best, best_iou = k, v
            if best is None:
                counters["missed"] += 1
                continue
            used.add(best)
            lab = label_index(str(face.get("expression", "")), contract.labels)
            inten = face.get("intensity")
            try:
                xs.append(preprocess(found[best][1], contract.preprocess))
            except ValueError as exc:
                skipped.append(Skip(name, f"unusable crop ({exc})"))
                continue
            recs.append(FaceRecord(path=name, label=-1 if lab is None else lab,
                                   intensity=float(inten) if isinstance(inten, (int, float)) else math.nan))
        counters["false_detections"] += len(found) - len(used)
    if counters["frames"] == 0:
        raise DataError(f"{path}: no readable frame; check the video or the frame paths in {truth_path}")
    if not recs:
        raise DataError(f"{path}: no face found in {counters['frames']} frames ({counters['true_faces']} true "
                        f"faces); try a smaller crop.min_face or another detector (YuNet)")
    counters["detected"] = len(recs)
    log.info("footage %s: %d of %d true faces detected (%d false detections) in %d frames", path.name,
             len(recs), counters["true_faces"], counters["false_detections"], counters["frames"])
    return FootageFaces(truth_path.parent, recs, np.stack(xs), tuple(contract.labels), name=path.name,
                        skipped=skipped, counts=dict(counters))


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
