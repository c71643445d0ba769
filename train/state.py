"""The resume state ``last.state.pt``: everything needed to continue a run bit-for-bit.

It holds the method's full state dict (network, discriminators, encoders), the trainer's optimiser
and scheduler, the method's own optimisers, the RNG states (as tensors) and the per-epoch history
— only tensors and plain containers, so it loads with ``torch.load(weights_only=True)``. Written
atomically: a crash while saving leaves the previous state intact.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Dict, Union

import numpy as np
import torch

from fer_edge.runtime.atomic import atomic_path
from fer_edge.runtime.errors import ModelError

STATE_NAME = "last.state.pt"
FORMAT = 1


def rng_state() -> Dict[str, Any]:
    """torch / numpy / python RNG states, encoded as tensors and ints (weights_only-safe)."""
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    out: Dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
        "numpy_pos": int(np_pos), "numpy_has_gauss": int(np_has_gauss), "numpy_gauss": float(np_gauss),
        "python": torch.as_tensor(py_state, dtype=torch.int64), "python_version": int(py_version),
        "python_gauss": py_gauss if py_gauss is None else float(py_gauss),
    }
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_state(s: Dict[str, Any]) -> None:
    torch.set_rng_state(s["torch"])
    np.random.set_state(("MT19937", s["numpy_keys"].numpy().astype(np.uint32), s["numpy_pos"],
                         s["numpy_has_gauss"], s["numpy_gauss"]))
    random.setstate((s["python_version"], tuple(int(v) for v in s["python"].tolist()), s["python_gauss"]))
    if "cuda" in s and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])


def save_state(path: Union[str, Path], state: Dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, **state}, tmp)


def load_state(path: Union[str, Path], map_location: str = "cpu") -> Dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no resume state here; run without --resume to start the run")
    try:
        blob = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - corrupt bytes make torch's readers raise almost anything
        why = (str(exc).splitlines() or [type(exc).__name__])[0] or type(exc).__name__  # EOFError has no message
        raise ModelError(f"{path}: unreadable resume state ({why}); "
                         "delete it and train from the start") from exc
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ModelError(f"{path}: not a fer-edge resume state (format {FORMAT}); train from the start")
    return blob
