"""The deployment contract: label order and the one preprocessing function.

Training, calibration, evaluation and the runtime all call :func:`preprocess` with the
:class:`PreprocessSpec` stored in the artefact they use. A mean/std, colour or size mismatch between
training and deployment is the classic silent failure of edge FER; having exactly one function (and
the spec travelling inside every artefact) removes the chance to get it wrong twice.

This module imports numpy and OpenCV only — never torch.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import cv2
import numpy as np

from .crop import CropPolicy
from .errors import ConfigError

#: Canonical label order of every fer-edge model. Index ``i`` of a model's output is ``LABELS[i]``.
LABELS: Tuple[str, ...] = ("neutral", "happiness", "sadness", "surprise", "fear", "disgust", "anger")
#: Optional eighth class (AffectNet, CK+); kept only when a config sets ``data.contempt: true``.
CONTEMPT = "contempt"

_ALIASES: Dict[str, str] = {
    # neutral
    "neutral": "neutral", "ne": "neutral", "neu": "neutral", "calm": "neutral", "none": "neutral",
    # happiness
    "happiness": "happiness", "happy": "happiness", "ha": "happiness", "hap": "happiness",
    "joy": "happiness", "smile": "happiness", "happily": "happiness",
    # sadness
    "sadness": "sadness", "sad": "sadness", "sa": "sadness",
    # surprise
    "surprise": "surprise", "surprised": "surprise", "su": "surprise", "sur": "surprise",
    # fear
    "fear": "fear", "fearful": "fear", "afraid": "fear", "fe": "fear", "scared": "fear",
    # disgust
    "disgust": "disgust", "disgusted": "disgust", "di": "disgust", "dis": "disgust",
    # anger
    "anger": "anger", "angry": "anger", "an": "anger", "ang": "anger", "mad": "anger",
    # contempt
    "contempt": CONTEMPT, "co": CONTEMPT, "con": CONTEMPT, "contemptuous": CONTEMPT,
}


def canonical_label(name: str) -> Optional[str]:
    """Map a dataset's spelling of a class (``happy``, ``HA``, ``Joy``, ``4_sad``) to the canonical one.

    Returns ``None`` when the name is unknown, so callers can count and report it instead of failing.
    """
    key = re.sub(r"[^a-z]", "", str(name).strip().lower())
    if key in _ALIASES:
        return _ALIASES[key]
    return None


def label_index(name: str, labels: Sequence[str] = LABELS) -> Optional[int]:
    """Index of ``name`` (any alias) in ``labels``, or ``None`` if it is not one of them."""
    canon = canonical_label(name)
    if canon is None or canon not in labels:
        return None
    return list(labels).index(canon)


COLOURS = ("gray", "rgb", "bgr")


@dataclass(frozen=True)
class PreprocessSpec:
    """How a face crop becomes the model input. Serialised into every artefact.

    ``colour`` says what the network sees: ``gray`` (1 channel; RGB input is converted with OpenCV's
    BT.601 weights, single-channel near-infrared input is used as is), ``rgb`` or ``bgr`` (3 channels;
    a single-channel input is replicated). ``mean``/``std`` apply after scaling pixels to [0, 1], one
    value per channel. Layout is always NCHW float32.
    """

    size: int = 64
    colour: str = "gray"
    mean: Tuple[float, ...] = (0.5,)
    std: Tuple[float, ...] = (0.25,)
    layout: str = "NCHW"

    def __post_init__(self) -> None:
        if self.colour not in COLOURS:
            raise ConfigError(f"preprocess.colour: {self.colour!r} is not one of {list(COLOURS)}")
        if not isinstance(self.size, int) or not 16 <= self.size <= 1024:
            raise ConfigError(f"preprocess.size: {self.size!r} must be an integer in 16..1024")
        object.__setattr__(self, "mean", tuple(float(m) for m in self.mean))
        object.__setattr__(self, "std", tuple(float(s) for s in self.std))
        for name in ("mean", "std"):
            values = getattr(self, name)
            if len(values) not in (1, self.channels):
                raise ConfigError(
                    f"preprocess.{name}: {list(values)} needs 1 or {self.channels} values for "
                    f"colour {self.colour!r}")
        if any(s <= 0 for s in self.std):
            raise ConfigError(f"preprocess.std: {list(self.std)} must all be > 0")
        if self.layout != "NCHW":
            raise ConfigError(f"preprocess.layout: {self.layout!r} is not one of ['NCHW']")

    @property
    def channels(self) -> int:
        return 1 if self.colour == "gray" else 3

    @property
    def input_shape(self) -> Tuple[int, int, int]:
        """(C, H, W) of one model input."""
        return (self.channels, self.size, self.size)

    def to_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PreprocessSpec:
        if not isinstance(d, Mapping):  # it comes from model metadata and manifests: untrusted JSON
            raise ConfigError(f"preprocess: expected a mapping of size/colour/mean/std, got {type(d).__name__}")
        known = {"size", "colour", "mean", "std", "layout"}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"preprocess: unknown keys {sorted(unknown)}; allowed {sorted(known)}")
        return cls(**{k: (tuple(v) if k in ("mean", "std") else v) for k, v in d.items()})


def _as_uint8_image(face: Any) -> np.ndarray:
    """Validate and normalise an input crop to uint8 HxW or HxWx3 (BGR); raise ValueError if unusable."""
    if not isinstance(face, np.ndarray):
        raise ValueError(f"face must be a numpy array, got {type(face).__name__}")
    if face.size == 0 or face.ndim not in (2, 3) or face.shape[0] < 2 or face.shape[1] < 2:
        raise ValueError(f"face has unusable shape {face.shape}")
    img = face
    if img.dtype != np.uint8:
        if img.dtype == np.uint16:
            img = (img >> 8).astype(np.uint8)
        elif np.issubdtype(img.dtype, np.floating):
            if not np.all(np.isfinite(img)):
                raise ValueError("face contains NaN or inf")
            scale = 255.0 if float(img.max(initial=0.0)) <= 1.0 else 1.0
            img = np.clip(img * scale, 0, 255).astype(np.uint8)
        elif np.issubdtype(img.dtype, np.integer) or img.dtype == np.bool_:
            img = np.clip(img, 0, 255).astype(np.uint8)
        else:
            raise ValueError(f"face has unsupported dtype {img.dtype}")
    if img.ndim == 3:
        c = img.shape[2]
        if c == 1:
            img = img[:, :, 0]
        elif c == 4:
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
        elif c != 3:
            raise ValueError(f"face has {c} channels; expected 1, 3 or 4")
    return np.ascontiguousarray(img)


def preprocess(face: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """Turn one face crop (uint8 BGR ``HxWx3``, gray ``HxW``/``HxWx1`` or BGRA) into float32 ``CxHxW``.

    The one preprocessing function of the product. Raises ``ValueError`` for an unusable input
    (empty, NaN, wrong channel count) so that callers can count it and move on.
    """
    img = _as_uint8_image(face)
    # Colour first (on fewer pixels when the target is gray), then one resize.
    if spec.colour == "gray":
        if img.ndim == 3:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    else:
        if img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        if spec.colour == "rgb":
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    h, w = img.shape[:2]
    if (h, w) != (spec.size, spec.size):
        interp = cv2.INTER_AREA if (h > spec.size or w > spec.size) else cv2.INTER_LINEAR
        img = cv2.resize(img, (spec.size, spec.size), interpolation=interp)
    arr = img[None, :, :] if img.ndim == 2 else img.transpose(2, 0, 1)
    out = arr.astype(np.float32) * np.float32(1.0 / 255.0)
    mean = np.asarray(spec.mean, dtype=np.float32).reshape(-1, 1, 1)
    std = np.asarray(spec.std, dtype=np.float32).reshape(-1, 1, 1)
    out = (out - mean) / std
    return np.ascontiguousarray(out, dtype=np.float32)


def preprocess_batch(faces: Sequence[np.ndarray], spec: PreprocessSpec) -> np.ndarray:
    """Stack :func:`preprocess` over crops into ``NxCxHxW`` float32 (raises on the first bad crop)."""
    if len(faces) == 0:
        return np.zeros((0, *spec.input_shape), dtype=np.float32)
    return np.stack([preprocess(f, spec) for f in faces])


def labels_with_contempt(contempt: bool) -> List[str]:
    """The label list a model is trained with: the seven canonical classes, plus contempt if asked."""
    return list(LABELS) + ([CONTEMPT] if contempt else [])


@dataclass(frozen=True)
class Contract:
    """What an artefact promises its consumer: labels, preprocessing and face-crop policy.

    ``crop`` is a :class:`CropPolicy`, parsed once here (a mapping given to the constructor is read into
    one); ``None`` when the artefact records no crop policy, and :attr:`policy` is then the default cut.
    """

    labels: Tuple[str, ...] = LABELS
    preprocess: PreprocessSpec = field(default_factory=PreprocessSpec)
    crop: Optional[CropPolicy] = None

    def __post_init__(self) -> None:
        if self.crop is not None and not isinstance(self.crop, CropPolicy):
            object.__setattr__(self, "crop", CropPolicy.from_dict(self.crop) if self.crop else None)

    @property
    def policy(self) -> CropPolicy:
        """The policy faces are cut with: the recorded one, else the default."""
        return self.crop if self.crop is not None else CropPolicy()

    def to_dict(self) -> Dict[str, Any]:
        return {"labels": list(self.labels), "preprocess": self.preprocess.to_dict(),
                "crop": self.crop.to_dict() if self.crop is not None else {}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Contract:
        return cls(labels=tuple(d.get("labels", LABELS)),
                   preprocess=PreprocessSpec.from_dict(d.get("preprocess", {})),
                   crop=d.get("crop") or None)
