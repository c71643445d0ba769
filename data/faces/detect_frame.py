"""One frame → face crops on disk + one row per face, through the runtime's ``detect_and_crop``.

This is the only place data preparation touches pixels, and it does so with the runtime's own
detector and crop function, so a crop written here is byte for byte what ``fer-edge run`` feeds the
model for the same frame. When the frame has ground truth (synthetic footage) each detection is
matched to a true face by IoU, which gives the crop its label and lets recall be measured.
"""
from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from fer_edge.runtime.atomic import atomic_write
from fer_edge.runtime.contract import canonical_label
from fer_edge.runtime.crop import CropPolicy
from fer_edge.runtime.detect import Detection, FaceDetector, detect_and_crop
from fer_edge.runtime.track import greedy_iou_match

from .frames import FrameRef

MATCH_IOU = 0.5
FACES_DIR = "faces"
UNLABELLED_DIR = "unlabelled"


@dataclass
class FaceRow:
    """One detected face: where it came from, its box and score, where its crop is, what it is."""

    source: str
    frame: int
    face: int
    x: int
    y: int
    w: int
    h: int
    score: float
    crop: str
    label: str = ""
    intensity: str = ""
    identity: str = ""
    yaw: str = ""
    pitch: str = ""
    roll: str = ""
    truth_iou: str = ""

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)


@dataclass
class TruthFace:
    """A true face of a frame with ground truth and whether a kept detection matched it (recall)."""

    yaw: float
    matched: bool


@dataclass
class FrameOutcome:
    """What happened to one frame: its face rows, or why it gave none."""

    index: int
    name: str
    rows: List[FaceRow] = field(default_factory=list)
    error: Optional[str] = None
    truth: List[TruthFace] = field(default_factory=list)
    counters: Dict[str, int] = field(default_factory=dict)


def crop_stem(name: str) -> str:
    """A flat, filesystem-safe file stem for a frame name (``a/b.png`` → ``a__b``, ``v.mp4#7`` → ``v_000007``).

    A frame FILE may itself contain ``#`` or be called ``.png``; only ``<video>#<digits>`` is a video
    frame. When flattening could make two names equal (``a__b.png`` vs ``a/b.png``, or characters
    replaced by ``_`` such as non-ASCII names), a short hash of the full name is appended, because two
    frames sharing a crop file means one face silently overwrites another.
    """
    video = re.fullmatch(r"(.*)#([0-9]+)", name)
    if video:
        return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{Path(video.group(1)).stem}_{int(video.group(2)):06d}")
    suffix = Path(name).suffix
    raw = (name[: -len(suffix)] if suffix else name).replace("/", "__")
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", raw)
    if stem.startswith("."):  # a hidden file would be skipped by every dataset loader
        stem = "_" + stem
    if stem != raw or "__" in name or not stem.strip("."):
        stem = f"{stem}_{hashlib.sha1(name.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"
    return stem


def match_truth(dets: Sequence[Detection], truth: Sequence[Dict[str, Any]]) -> Dict[int, Tuple[int, float]]:
    """Greedy best-IoU matching (pairs with IoU ≥ 0.5, best first): ``{detection k: (truth j, iou)}``."""
    found = greedy_iou_match([d.bbox for d in dets], [t.get("bbox", (0, 0, 0, 0)) for t in truth], MATCH_IOU)
    return {k: (j, v) for k, j, v in found}


def _fmt(v: Any) -> str:
    return "" if v is None else (f"{v:.4f}".rstrip("0").rstrip(".") if isinstance(v, float) else str(v))


def write_png(path: Path, img: np.ndarray) -> None:
    """Lossless PNG (gray stays one channel), written atomically, so the crop reads back byte-identical."""
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise ValueError(f"OpenCV could not encode a {img.shape} crop as PNG")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, buf.tobytes())


def crop_folder(ref: FrameRef, face: int, row_label: str, layout: str) -> str:
    """Relative crop path in the output's ``faces/`` folder for the chosen layout."""
    name = f"{crop_stem(ref.name)}_f{face}.png"
    if layout == "classes":
        return f"{row_label or UNLABELLED_DIR}/{name}"
    if layout == "truth":
        return f"images/{name}"
    return name


def process_frame(frame: Optional[np.ndarray], ref: FrameRef, detector: FaceDetector, policy: CropPolicy,
                  out_root: Path, layout: str, error: Optional[str] = None) -> FrameOutcome:
    """Detect, crop and write the faces of one frame; never raises for a bad frame (``error`` says why).

    The label of a face is, in this order: the expression of the true face it matches (IoU ≥ 0.5),
    else the frame's folder class for the LARGEST face only (a labelled frame shows one person of
    that expression; other faces in it are kept unlabelled).
    """
    out = FrameOutcome(ref.index, ref.name)
    if frame is None:
        out.error = error or "unreadable frame"
        return out
    counters: Counter = Counter()
    try:
        faces = detect_and_crop(frame, detector, policy, counters)
    except (cv2.error, ValueError) as exc:
        out.error = f"detector failed on this frame ({exc})"
        return out
    out.counters = dict(counters)
    truth = list(ref.truth or ())
    matches = match_truth([d for d, _ in faces], truth) if truth else {}
    matched_truth = {j for j, _ in matches.values()}
    out.truth = [TruthFace(float(t.get("yaw", float("nan"))), j in matched_truth) for j, t in enumerate(truth)]
    for k, (det, crop) in enumerate(faces):
        row = FaceRow(ref.name, ref.index, k, *(int(v) for v in det.bbox), round(float(det.score), 4), "")
        if k in matches:
            t = truth[matches[k][0]]
            row.label = canonical_label(str(t.get("expression", ""))) or ""
            row.intensity, row.identity = _fmt(t.get("intensity")), _fmt(t.get("identity"))
            row.yaw, row.pitch, row.roll = _fmt(t.get("yaw")), _fmt(t.get("pitch")), _fmt(t.get("roll"))
            row.truth_iou = f"{matches[k][1]:.3f}"
        elif k == 0 and ref.label:
            row.label = ref.label
        row.crop = f"{FACES_DIR}/{crop_folder(ref, k, row.label, layout)}"
        try:
            write_png(out_root / row.crop, crop)
        except (ValueError, OSError, cv2.error) as exc:
            out.counters["write_error"] = out.counters.get("write_error", 0) + 1
            out.error = f"could not write crop {row.crop} ({exc})"
            continue
        out.rows.append(row)
    return out
