"""The face-crop policy and the one function that applies it.

Data preparation (``fer-edge data faces``), training on footage, calibration with ``--detect``,
evaluation and the runtime all cut faces with :func:`crop_face`. A different margin or squareness
between training and deployment silently costs accuracy, so the policy is stored in every
artefact's manifest next to the preprocessing spec.
"""
from __future__ import annotations

import math
import threading
from dataclasses import asdict, dataclass
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import cv2
import numpy as np

from .errors import ConfigError

BBox = Tuple[int, int, int, int]  # x, y, w, h in frame pixels

DETECTORS = ("haar", "yunet")
#: The policy fields that decide a cut face's pixels (the others decide only *where* a face is): they must match
#: between training and deployment, and they key every cache of cut faces.
PIXEL_FIELDS = ("margin", "square", "clahe", "align")
SELECTIONS = ("largest", "all")


@dataclass(frozen=True)
class CropPolicy:
    """How a detected face box becomes the crop the model sees.

    ``margin`` is the fraction of the box size added on every side (0.2 → the crop is 1.4× the box);
    ``square`` makes the crop square around the box centre using its longer side. Parts of the crop
    that fall outside the frame are filled by replicating the border, so a face at the edge keeps
    its size and position in the crop. ``clahe`` equalises contrast (useful for near-infrared);
    ``align`` rotates the crop so the eyes are level when eye positions are known, and leaves it
    unrotated otherwise (the fallback is counted by the caller, never an error).
    """

    detector: str = "haar"
    yunet_model: Optional[str] = None
    min_face: int = 40
    margin: float = 0.2
    square: bool = True
    select: str = "largest"
    clahe: bool = False
    align: bool = False
    score_threshold: float = 0.6

    def __post_init__(self) -> None:
        if self.detector not in DETECTORS:
            raise ConfigError(f"crop.detector: {self.detector!r} is not one of {list(DETECTORS)}")
        if self.detector == "yunet" and not self.yunet_model:
            raise ConfigError("crop.yunet_model: the YuNet detector needs the path of its ONNX model")
        if self.select not in SELECTIONS:
            raise ConfigError(f"crop.select: {self.select!r} is not one of {list(SELECTIONS)}")
        if not 0.0 <= float(self.margin) <= 1.0:
            raise ConfigError(f"crop.margin: {self.margin!r} must be in 0..1")
        if int(self.min_face) < 8:
            raise ConfigError(f"crop.min_face: {self.min_face!r} must be >= 8 pixels")

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    def pixels(self) -> Dict[str, Any]:
        """The fields that decide a cut face's pixels (:data:`PIXEL_FIELDS`): what caches of cut faces are keyed
        by and what training and deployment must agree on."""
        return {k: getattr(self, k) for k in PIXEL_FIELDS}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CropPolicy:
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"crop: unknown keys {sorted(unknown)}; allowed {sorted(known)}")
        return cls(**dict(d))

    def compatible_with(self, other: CropPolicy) -> Optional[str]:
        """``None`` if crops made under ``other`` match this policy, else a sentence naming the difference.

        The detector and its threshold may differ (they decide *where* a face is, not how it is cut);
        margin, squareness, CLAHE and alignment decide the pixels the model sees and must match.
        """
        mine, theirs = self.pixels(), other.pixels()
        diffs = [f"{k}: model expects {mine[k]!r}, got {theirs[k]!r}" for k in mine if mine[k] != theirs[k]]
        return "; ".join(diffs) or None


def crop_box(bbox: Sequence[float], policy: CropPolicy) -> BBox:
    """The frame rectangle (x, y, w, h) that :func:`crop_face` cuts for a detected ``bbox``."""
    x, y, w, h = (float(v) for v in bbox[:4])
    cx, cy = x + w / 2.0, y + h / 2.0
    if policy.square:
        w = h = max(w, h)
    w *= 1.0 + 2.0 * policy.margin
    h *= 1.0 + 2.0 * policy.margin
    x0, y0 = int(round(cx - w / 2.0)), int(round(cy - h / 2.0))
    return x0, y0, max(1, int(round(w))), max(1, int(round(h)))


def _eye_angle(eyes: Optional[Sequence[Sequence[float]]]) -> Optional[float]:
    if eyes is None or len(eyes) != 2:
        return None
    (lx, ly), (rx, ry) = eyes[0][:2], eyes[1][:2]
    if lx > rx:
        (lx, ly), (rx, ry) = (rx, ry), (lx, ly)
    if abs(rx - lx) < 1e-6:
        return None
    return math.degrees(math.atan2(ry - ly, rx - lx))


def crop_face(frame: np.ndarray, bbox: Sequence[float], policy: CropPolicy,
              eyes: Optional[Sequence[Sequence[float]]] = None) -> np.ndarray:
    """Cut the face at ``bbox`` out of ``frame`` according to ``policy`` (uint8, same channels).

    ``eyes`` are two (x, y) frame points; used only when ``policy.align`` is on. Raises ``ValueError``
    for an unusable frame or a box of zero size, so the caller can count it and continue.
    """
    if not isinstance(frame, np.ndarray) or frame.ndim not in (2, 3) or frame.size == 0:
        raise ValueError(f"frame is not an image array (got {getattr(frame, 'shape', type(frame))})")
    if frame.dtype != np.uint8:
        raise ValueError(f"frame dtype {frame.dtype} is not uint8")
    if len(bbox) < 4 or not all(math.isfinite(float(v)) for v in bbox[:4]):
        raise ValueError(f"bbox {bbox!r} is not four finite numbers")
    if bbox[2] <= 0 or bbox[3] <= 0:
        raise ValueError(f"bbox {tuple(bbox)} has zero size")
    x0, y0, w, h = crop_box(bbox, policy)
    fh, fw = frame.shape[:2]
    if x0 >= fw or y0 >= fh or x0 + w <= 0 or y0 + h <= 0:
        raise ValueError(f"bbox {tuple(bbox)} lies outside the {fw}x{fh} frame")
    angle = _eye_angle(eyes) if policy.align else None
    if angle is not None and abs(angle) > 0.5:
        cx, cy = x0 + w / 2.0, y0 + h / 2.0
        m = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)
        m[0, 2] -= x0
        m[1, 2] -= y0
        crop = cv2.warpAffine(frame, m, (w, h), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
    else:
        sx0, sy0 = max(0, x0), max(0, y0)
        sx1, sy1 = min(fw, x0 + w), min(fh, y0 + h)
        crop = frame[sy0:sy1, sx0:sx1]
        pads = (sy0 - y0, (y0 + h) - sy1, sx0 - x0, (x0 + w) - sx1)
        if any(pads):
            crop = cv2.copyMakeBorder(crop, *pads, borderType=cv2.BORDER_REPLICATE)
    return finish_crop(crop, policy)


def finish_crop(crop: np.ndarray, policy: CropPolicy) -> np.ndarray:
    """The last step of every crop the model sees: CLAHE when ``policy.clahe``, else the crop unchanged.

    :func:`crop_face` ends with it, and so does the decoding of a folder of pre-cut faces (FER2013, a
    camera vendor's crops: ``FaceDataset.finish``), so a model trained on pre-cut faces sees the same pixels
    as the runtime gives it from a detected face. Geometry (margin, squareness, alignment) is the one thing a
    pre-cut crop keeps from whoever cut it.
    """
    if policy.clahe:
        crop = apply_clahe(crop)
    return np.ascontiguousarray(crop)


#: One CLAHE object per thread: ``cv2.CLAHE.apply`` keeps working buffers in the object, and an application
#: may cut faces on several threads at once (one ``Pipeline`` per camera); CLAHE is on in the default contract.
_CLAHE = threading.local()


def apply_clahe(img: np.ndarray) -> np.ndarray:
    """Contrast-limited histogram equalisation on the luminance (gray images directly)."""
    clahe = getattr(_CLAHE, "op", None)
    if clahe is None:
        clahe = _CLAHE.op = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(4, 4))
    if img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 1):
        return clahe.apply(img.reshape(img.shape[:2]))
    ycc = cv2.cvtColor(img, cv2.COLOR_BGR2YCrCb)
    ycc[:, :, 0] = clahe.apply(np.ascontiguousarray(ycc[:, :, 0]))
    return cv2.cvtColor(ycc, cv2.COLOR_YCrCb2BGR)
