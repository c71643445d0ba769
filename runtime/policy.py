"""What the runtime may change about a model's crop, and the frames it accepts.

The crop policy and preprocessing come from the model's contract: the model was trained on faces cut
that way, and a different margin, squareness, CLAHE or alignment silently costs accuracy. So a run
may change only the detector side (which faces, where), and asking for another pixel-changing value —
in ``Pipeline.from_model(margin=…)``, ``fer-edge run --set crop.margin=…``, or an edited sidecar — is
refused with the contract's value and how to get a model that wants the other one. One behaviour.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import numpy as np

from .crop import CropPolicy
from .errors import ConfigError, ModelError

log = logging.getLogger(__name__)

#: Crop-policy keys the user may change at run time: they decide WHERE faces are, not which pixels the
#: model sees. margin/square/clahe/align must match the model's contract.
DETECTOR_KEYS = ("detector", "yunet_model", "min_face", "select", "score_threshold")
BACKEND_KEYS = ("providers", "threads")
RETRAIN = ("the model was trained on crops cut its way; to use {want}, retrain with it "
           "(`fer-edge train --set {sets}`, then export and calibrate) — or drop the override")


def check_frame(image: Any) -> Tuple[Optional[np.ndarray], Optional[str]]:
    """``(uint8 image, None)`` for a usable frame, else ``(None, fault kind)``.

    Accepts HxW, HxWx1, HxWx3 (BGR) and HxWx4 (BGRA → BGR). Kinds: ``none_frame``, ``bad_type``,
    ``empty_frame``, ``bad_dtype``, ``bad_shape``.
    """
    import cv2

    if image is None:
        return None, "none_frame"
    if not isinstance(image, np.ndarray):
        return None, "bad_type"
    if image.size == 0:
        return None, "empty_frame"
    if image.dtype != np.uint8:
        return None, "bad_dtype"
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        return None, "bad_shape"
    if min(image.shape[:2]) < 16:
        return None, "bad_shape"
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image, None


def _refusal(base: CropPolicy, wanted: Mapping[str, Any]) -> Optional[str]:
    pixels = base.pixels()
    diffs = {k: v for k, v in wanted.items() if k in pixels and pixels[k] != v}
    if not diffs:
        return None
    said = "; ".join(f"{k}: model expects {getattr(base, k)!r}, got {v!r}" for k, v in sorted(diffs.items()))
    want = ", ".join(f"{k} {v!r}" for k, v in sorted(diffs.items()))
    sets = " ".join(f"crop.{k}={v}" for k, v in sorted(diffs.items()))
    return f"crop policy does not match the model ({said}); " + RETRAIN.format(want=want, sets=sets)


def runtime_policy(model_crop: Optional[CropPolicy], overrides: Optional[Dict[str, Any]] = None) -> CropPolicy:
    """The model's crop policy (its contract's, ``None`` when it records none) with the user's detector-side
    overrides; a pixel-changing override is refused."""
    base = model_crop if model_crop is not None else CropPolicy()
    if model_crop is None:
        log.warning("the model records no crop policy; using the default %s", base)
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = sorted(set(overrides) - set(CropPolicy.__dataclass_fields__))
    if unknown:
        raise ConfigError(f"crop: unknown keys {unknown}; allowed {sorted(CropPolicy.__dataclass_fields__)}")
    why = _refusal(base, overrides)
    if why:
        raise ConfigError(why)
    return dataclasses.replace(base, **{k: v for k, v in overrides.items() if k in DETECTOR_KEYS})


def check_sidecar_crop(model_path: Union[str, os.PathLike], contract: Any) -> None:
    """Refuse an ONNX whose sidecar manifest records another crop or preprocessing than the model itself.

    The runtime always cuts by the contract inside the model; a sidecar that says otherwise was edited
    (or belongs to another model), and running would quietly ignore what it says.
    """
    from .contract import PreprocessSpec
    from .manifest import read_manifest, sidecar_path

    base = contract.crop
    if not str(model_path).lower().endswith(".onnx") or not sidecar_path(model_path).is_file():
        return
    manifest = read_manifest(model_path)
    if manifest.crop and base is not None:
        edited = {k: manifest.crop[k] for k, v in base.pixels().items() if k in manifest.crop and manifest.crop[k] != v}
        if edited:
            said = ", ".join(f"{k} {v!r} (the model: {getattr(base, k)!r})" for k, v in sorted(edited.items()))
            raise ModelError(f"{model_path}: its sidecar {sidecar_path(model_path).name} records crop {said}, "
                             "not the crop inside the model, which is what the runtime cuts by — the sidecar was "
                             "edited or belongs to another model; restore it (re-export with `fer-edge export`). "
                             + RETRAIN.format(want=said, sets=" ".join(f"crop.{k}={v}" for k, v in edited.items())))
    if manifest.preprocess:
        try:
            same = PreprocessSpec.from_dict(manifest.preprocess) == contract.preprocess
        except ConfigError:
            same = False
        if not same:
            raise ModelError(f"{model_path}: its sidecar records preprocessing {dict(manifest.preprocess)} but the "
                             f"model carries {contract.preprocess.to_dict()}; the sidecar was edited or belongs to "
                             "another model — re-export it with `fer-edge export`")
