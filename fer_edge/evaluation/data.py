"""Load the dataset an artefact is evaluated on, cropped with the artefact's own crop policy.

Any loader format works (``fer_edge.train.data.loaders.load_dataset``). With ``detect`` the data is
footage (frames or a video): faces are detected and cut with the crop policy stored in the MODEL's
contract — not the config's — because a crop that differs from training is a silent accuracy loss.
"""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Dict, Mapping, Union

from fer_edge.runtime.errors import ConfigError, DataError


def _loader():
    try:
        from fer_edge.train.data.loaders import load_dataset
    except ImportError as exc:
        raise DataError(f"the dataset loaders are not available in this installation ({exc}); "
                        "install fer-edge with its train extra") from exc
    return load_dataset


def load_eval_dataset(path: Union[str, Path], fmt: str = "auto", detect: bool = False,
                      crop: Mapping[str, Any] = None) -> Any:
    """A :class:`FaceDataset` from ``path``; ``detect`` crops faces from footage with ``crop`` (the model's)."""
    load_dataset = _loader()
    kwargs: Dict[str, Any] = {}
    if detect:
        from fer_edge.runtime.crop import CropPolicy

        params = inspect.signature(load_dataset).parameters
        if "detect" not in params:
            raise ConfigError("eval --detect: this installation's dataset loader cannot detect faces in "
                              "footage; crop the faces first with `fer-edge data faces` and evaluate that folder")
        kwargs["detect"] = True
        policy = CropPolicy.from_dict(dict(crop or {}))
        for name in ("policy", "crop", "crop_policy"):
            if name in params:
                kwargs[name] = policy
                break
    dataset = load_dataset(str(path), fmt=fmt, **kwargs)
    return dataset
