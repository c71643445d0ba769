"""Face detection for the runtime and for data preparation, feeding the one crop function.

Haar (shipped with opencv-python-headless) is the default because it needs no extra file; YuNet
(``cv2.FaceDetectorYN``) is better and gives eye landmarks, but the user has to supply its ONNX.
:func:`detect_and_crop` is THE way to turn a frame into model crops: ``fer-edge data faces``,
calibration ``--detect`` and the runtime all call it, so training and deployment crops are the
same pixels for the same frame.
"""
from __future__ import annotations

import logging
import math
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Protocol, Sequence, Tuple, runtime_checkable

import cv2
import numpy as np

from .crop import CropPolicy, crop_face
from .errors import ConfigError, ModelError

log = logging.getLogger(__name__)

Point = Tuple[float, float]


@dataclass(frozen=True)
class Detection:
    """One face: ``bbox`` (x, y, w, h) in frame pixels, a score in [0, 1], eye centres when known."""

    bbox: Tuple[int, int, int, int]
    score: float = 1.0
    eyes: Optional[Tuple[Point, Point]] = None

    @property
    def area(self) -> int:
        return int(self.bbox[2]) * int(self.bbox[3])


@runtime_checkable
class FaceDetector(Protocol):
    """``detect(frame) -> [Detection]``; ``has_landmarks`` says whether ``eyes`` are filled."""

    name: str
    has_landmarks: bool

    def detect(self, frame: np.ndarray, min_size: Optional[int] = None,
               max_size: Optional[int] = None) -> List[Detection]: ...


def to_gray(frame: np.ndarray) -> np.ndarray:
    """uint8 gray view of a BGR/BGRA/gray frame (no copy for gray input)."""
    if frame.ndim == 2:
        return frame
    if frame.shape[2] == 1:
        return frame[:, :, 0]
    code = cv2.COLOR_BGRA2GRAY if frame.shape[2] == 4 else cv2.COLOR_BGR2GRAY
    return cv2.cvtColor(frame, code)


def to_bgr(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2 or frame.shape[2] == 1:
        return cv2.cvtColor(frame.reshape(frame.shape[:2]), cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return frame


def _cascade(name: str) -> cv2.CascadeClassifier:
    path = Path(cv2.data.haarcascades) / name
    casc = cv2.CascadeClassifier(str(path))
    if casc.empty():
        raise ModelError(f"OpenCV cascade {path} could not be loaded; reinstall opencv-python-headless<5")
    return casc


#: OpenCV's ``alt2`` frontal cascade: on synthetic studio scenes it finds 97.7 % of faces (IoU >= 0.5)
#: against 86.4 % for ``default`` at about 10 % more CPU (benchmarks/detector_recall.py, docs/results/runtime-speed.md).
HAAR_FACE = "haarcascade_frontalface_alt2.xml"


class HaarDetector:
    """OpenCV's frontal-face cascade on a frame downscaled to ``detect_width`` (boxes scaled back).

    The score is a monotone confidence from the cascade's neighbour count, ``n / (n + min_neighbors)``;
    the policy's ``score_threshold`` is a YuNet setting and is not applied here (``min_neighbors`` is
    Haar's threshold).
    """

    name = "haar"
    has_landmarks = False

    def __init__(self, min_face: int = 40, detect_width: int = 640, scale_factor: float = 1.1,
                 min_neighbors: int = 3, cascade: str = HAAR_FACE):
        self.min_face = int(min_face)
        self.detect_width = int(detect_width)
        self.scale_factor = float(scale_factor)
        self.min_neighbors = int(min_neighbors)
        self.cascade = cascade
        self._cascade = _cascade(cascade)

    def detect(self, frame: np.ndarray, min_size: Optional[int] = None,
               max_size: Optional[int] = None) -> List[Detection]:
        """Faces in ``frame``; ``min_size``/``max_size`` (pixels, replacing ``min_face``) set the scales searched."""
        gray = to_gray(frame)
        h, w = gray.shape[:2]
        scale = 1.0
        if self.detect_width and w > self.detect_width:
            scale = self.detect_width / float(w)
            gray = cv2.resize(gray, (self.detect_width, max(1, int(round(h * scale)))),
                              interpolation=cv2.INTER_AREA)
        min_side = max(20, int(math.floor((min_size or self.min_face) * scale)))
        max_side = int(math.ceil(max_size * scale)) if max_size else 0
        rects, neighbours = self._cascade.detectMultiScale2(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(min_side, min_side),
            maxSize=(max_side, max_side) if max_side > min_side else (0, 0))
        out = []
        for (x, y, bw, bh), n in zip(np.asarray(rects).reshape(-1, 4), np.asarray(neighbours).reshape(-1)):
            box = tuple(int(round(v / scale)) for v in (x, y, bw, bh))
            out.append(Detection(bbox=box, score=float(n) / (float(n) + self.min_neighbors)))
        return out


class YuNetDetector:
    """``cv2.FaceDetectorYN`` with the user's YuNet ONNX; returns eye landmarks for alignment."""

    name = "yunet"
    has_landmarks = True

    def __init__(self, model_path: str, min_face: int = 40, score_threshold: float = 0.6,
                 nms_threshold: float = 0.3, top_k: int = 50, detect_width: int = 640):
        p = Path(model_path)
        if not p.is_file():
            raise ModelError(f"crop.yunet_model: {p} not found; give the path of a YuNet ONNX "
                             "(face_detection_yunet_*.onnx from the OpenCV model zoo) or use crop.detector=haar")
        if not hasattr(cv2, "FaceDetectorYN"):
            raise ModelError(f"OpenCV {cv2.__version__} has no FaceDetectorYN; install opencv>=4.5.4 or use haar")
        try:
            self._det = cv2.FaceDetectorYN.create(str(p), "", (320, 320), float(score_threshold),
                                                  float(nms_threshold), int(top_k))
        except cv2.error as exc:
            raise ModelError(f"{p}: OpenCV cannot load this YuNet model ({exc}); check the file") from exc
        self.min_face = int(min_face)
        self.detect_width = int(detect_width)
        self._size: Optional[Tuple[int, int]] = None

    def detect(self, frame: np.ndarray, min_size: Optional[int] = None,
               max_size: Optional[int] = None) -> List[Detection]:
        """Faces with landmarks; the size hints only filter (YuNet searches all scales at once)."""
        img = to_bgr(frame)
        h, w = img.shape[:2]
        scale = 1.0
        if self.detect_width and w > self.detect_width:
            scale = self.detect_width / float(w)
            img = cv2.resize(img, (self.detect_width, max(1, int(round(h * scale)))), interpolation=cv2.INTER_AREA)
        size = (img.shape[1], img.shape[0])
        if size != self._size:
            self._det.setInputSize(size)
            self._size = size
        _, faces = self._det.detect(img)
        out = []
        for f in ([] if faces is None else faces):
            x, y, bw, bh = (float(v) / scale for v in f[:4])
            if min(bw, bh) < (min_size or self.min_face) or (max_size and max(bw, bh) > max_size):
                continue
            # YuNet landmarks: right eye, left eye (image left/right as seen), nose, mouth corners.
            eyes = ((float(f[4]) / scale, float(f[5]) / scale), (float(f[6]) / scale, float(f[7]) / scale))
            out.append(Detection(bbox=(int(round(x)), int(round(y)), int(round(bw)), int(round(bh))),
                                 score=float(f[14]), eyes=eyes))
        return out


class HaarEyeFinder:
    """Two eye centres inside a face box from OpenCV's eye cascade, or ``None`` when not found.

    Used for ``CropPolicy.align`` when the detector has no landmarks. Looks only in the upper 60 % of
    the box and takes the two largest hits on opposite halves, so a nostril or brow is rarely taken.
    """

    def __init__(self) -> None:
        self._cascade = _cascade("haarcascade_eye.xml")

    def find(self, frame: np.ndarray, bbox: Sequence[int]) -> Optional[Tuple[Point, Point]]:
        x, y, w, h = (int(v) for v in bbox[:4])
        gray = to_gray(frame)
        fh, fw = gray.shape[:2]
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(fw, x + w), min(fh, y + int(h * 0.6))
        if x1 - x0 < 10 or y1 - y0 < 10:
            return None
        roi = gray[y0:y1, x0:x1]
        min_eye = max(5, w // 10)
        eyes = self._cascade.detectMultiScale(roi, 1.1, 3, minSize=(min_eye, min_eye))
        if len(eyes) < 2:
            return None
        mid = x + w / 2.0
        centres = [(x0 + ex + ew / 2.0, y0 + ey + eh / 2.0, ew * eh) for ex, ey, ew, eh in eyes]
        left = [c for c in centres if c[0] < mid]
        right = [c for c in centres if c[0] >= mid]
        if not left or not right:
            return None
        a, b = max(left, key=lambda c: c[2]), max(right, key=lambda c: c[2])
        return (a[0], a[1]), (b[0], b[1])


def _nms(dets: Sequence[Detection], thr: float = 0.4) -> List[Detection]:
    from .track import iou

    keep: List[Detection] = []
    for d in sorted(dets, key=lambda d: -d.score):
        if all(iou(d.bbox, k.bbox) < thr for k in keep):
            keep.append(d)
    return keep


def detect_near(detector: FaceDetector, frame: np.ndarray, boxes: Sequence[Sequence[int]],
                expand: float = 0.5, size_range: Tuple[float, float] = (0.6, 1.7)) -> List[Detection]:
    """Re-detect known faces only in a window around each box (a tracker's cheap re-detection).

    The window is the box grown by ``expand`` × its side on every side, and only face sizes in
    ``size_range`` × the box side are searched, so this costs a fraction of a full-frame scan; new
    faces are found by the periodic full scan. Overlapping hits are merged (NMS).
    """
    fh, fw = frame.shape[:2]
    out: List[Detection] = []
    for box in boxes:
        x, y, w, h = (int(v) for v in box[:4])
        side = max(w, h)
        pad = int(expand * side)
        x0, y0 = max(0, x - pad), max(0, y - pad)
        x1, y1 = min(fw, x + w + pad), min(fh, y + h + pad)
        if x1 - x0 < 24 or y1 - y0 < 24:
            continue
        for d in detector.detect(frame[y0:y1, x0:x1], min_size=int(size_range[0] * side),
                                 max_size=int(math.ceil(size_range[1] * side))):
            bx, by, bw, bh = d.bbox
            eyes = None if d.eyes is None else tuple((ex + x0, ey + y0) for ex, ey in d.eyes)
            out.append(Detection((bx + x0, by + y0, bw, bh), d.score, eyes))
    return _nms(out)


def make_detector(policy: CropPolicy, detect_width: int = 640) -> FaceDetector:
    """The detector a crop policy names (``haar`` or ``yunet`` with its model path)."""
    if policy.detector == "haar":
        return HaarDetector(min_face=policy.min_face, detect_width=detect_width)
    if policy.detector == "yunet":
        return YuNetDetector(str(policy.yunet_model), min_face=policy.min_face,
                             score_threshold=policy.score_threshold, detect_width=detect_width)
    raise ConfigError(f"crop.detector: {policy.detector!r} is not one of ['haar', 'yunet']")


def select_faces(dets: Sequence[Detection], policy: CropPolicy) -> List[Detection]:
    """Apply ``policy.select``: the largest face only, or all faces largest first."""
    ordered = sorted(dets, key=lambda d: (-d.area, d.bbox[1], d.bbox[0]))
    return ordered[:1] if policy.select == "largest" else ordered


#: One eye cascade per thread: OpenCV cascades are not safe to share between threads.
_EYE_FINDERS = threading.local()
_LOGGED: set = set()


def eyes_for(frame: np.ndarray, det: Detection, policy: CropPolicy, counters: Optional[Counter] = None,
             eye_finder: Optional[HaarEyeFinder] = None) -> Optional[Tuple[Point, Point]]:
    """Eye centres used to align ``det`` (detector landmarks, else the eye cascade); counts the fallback.

    When ``policy.align`` is on and no eyes are found, the crop stays unrotated and
    ``counters["align_fallback"]`` goes up by one (logged once per process), never an error.
    """
    if not policy.align:
        return None
    if det.eyes is not None:
        return det.eyes
    finder = eye_finder
    if finder is None:
        finder = getattr(_EYE_FINDERS, "finder", None)
        if finder is None:
            finder = _EYE_FINDERS.finder = HaarEyeFinder()
    eyes = finder.find(frame, det.bbox)
    if eyes is None:
        if counters is not None:
            counters["align_fallback"] += 1
        if "align_fallback" not in _LOGGED:
            _LOGGED.add("align_fallback")
            log.warning("crop.align: eyes not found in a face; cropping it unrotated (counted as align_fallback)")
    return eyes


def crop_detections(frame: np.ndarray, dets: Sequence[Detection], policy: CropPolicy,
                    counters: Optional[Counter] = None) -> List[Tuple[Detection, np.ndarray]]:
    """Cut every detection with :func:`crop_face` (eyes resolved for alignment); bad boxes are skipped.

    A box that cannot be cropped (zero size, off the image) is counted as ``counters["bad_crop"]``.
    The runtime calls this for its tracked boxes between detections.
    """
    out = []
    for det in dets:
        eyes = eyes_for(frame, det, policy, counters)
        try:
            crop = crop_face(frame, det.bbox, policy, eyes=eyes)
        except ValueError as exc:
            if counters is not None:
                counters["bad_crop"] += 1
            log.debug("skipping face %s: %s", det.bbox, exc)
            continue
        out.append((Detection(det.bbox, det.score, eyes), crop))
    return out


def detect_faces(frame: np.ndarray, detector: FaceDetector, policy: CropPolicy) -> List[Detection]:
    """Detections at least ``policy.min_face`` on their shorter side, selected per ``policy.select``."""
    dets = [d for d in detector.detect(frame) if min(d.bbox[2], d.bbox[3]) >= policy.min_face]
    return select_faces(dets, policy)


def detect_and_crop(frame: np.ndarray, detector: FaceDetector, policy: CropPolicy,
                    counters: Optional[Counter] = None) -> List[Tuple[Detection, np.ndarray]]:
    """Detect faces in ``frame``, keep them per ``policy.select`` and cut each with :func:`crop_face`.

    THE frame → crops function of the product: ``fer-edge data faces``, calibration ``--detect`` and
    the runtime use it (the runtime through its parts, :func:`detect_faces` + :func:`crop_detections`,
    so it can crop tracked boxes between detections). Returns ``[(Detection, crop)]`` largest first;
    ``counters`` (a ``collections.Counter``) receives ``bad_crop`` and ``align_fallback`` counts.
    """
    return crop_detections(frame, detect_faces(frame, detector, policy), policy, counters)
