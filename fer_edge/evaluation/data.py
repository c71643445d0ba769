"""Load the dataset an artefact is evaluated on; with ``detect``, cut faces with the artefact's own policy.

Any loader format works (``fer_edge.data.loaders.load_dataset``). With ``detect`` the data is
footage (frames or a video, see :mod:`.footage`): faces are detected and cut with the crop policy
stored in the MODEL's contract — not the config's — because a crop that differs from training is a
silent accuracy loss.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Union

from fer_edge.runtime.contract import Contract
from fer_edge.runtime.errors import DataError


def _loader():
    try:
        from fer_edge.data.loaders import load_dataset
    except ImportError as exc:
        raise DataError(f"the dataset loaders are not available in this installation ({exc}); "
                        "install fer-edge with its train extra") from exc
    return load_dataset


def load_eval_dataset(path: Union[str, Path], contract: Contract, fmt: str = "auto", detect: bool = False) -> Any:
    """A FaceDataset from ``path`` (crops), or detected faces from footage when ``detect``."""
    if detect:
        from .footage import load_footage

        return load_footage(path, contract)
    from fer_edge.data.faces import precut_finish

    finish = precut_finish(path, contract.policy)  # refuses crops `data faces` cut under another policy
    ds = _loader()(str(path), fmt=fmt)
    ds.finish = finish  # pre-cut faces get the model's crop finish (CLAHE), as the runtime gives a detected face
    return ds
