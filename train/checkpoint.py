"""Inference checkpoints: a FerNet state dict + its manifest, saved atomically, loaded safely.

The file holds only tensors and plain containers, read back with ``torch.load(weights_only=True)``:
a checkpoint with a pickle payload is refused by torch before any code runs. The manifest sidecar
(``best.pt.json``) holds the model spec, label order, preprocessing and crop policy, so export
rebuilds the exact network and the contract travels on to ONNX, INT8 and the engine.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Tuple, Union

import torch

from fer_edge.runtime.atomic import atomic_write
from fer_edge.runtime.contract import Contract, PreprocessSpec
from fer_edge.runtime.errors import ManifestError, ModelError
from fer_edge.runtime.manifest import Manifest, verify, write_manifest

from .models import FerNet, ModelSpec


def save_checkpoint(path: Union[str, Path], net: FerNet, labels: Sequence[str], preprocess: PreprocessSpec,
                    crop: Mapping[str, Any], inputs: Optional[Mapping[str, str]] = None,
                    extra: Optional[Mapping[str, Any]] = None) -> Manifest:
    """Write ``path`` (state dict) atomically, then its manifest; returns the manifest."""
    if len(labels) != net.spec.num_classes:
        raise ModelError(f"{len(labels)} labels for a model with {net.spec.num_classes} outputs")
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    # Serialized in memory: torch.save to a path names the zip's records after the (random) temp file,
    # so the same weights gave a different sha256 on every save and a rerun never matched its hashes.
    buf = io.BytesIO()
    torch.save({"state_dict": state, "model": net.spec.to_dict()}, buf)
    atomic_write(path, buf.getvalue())
    manifest = Manifest(kind="checkpoint", precision="fp32", labels=list(labels),
                        preprocess=preprocess.to_dict(), crop=dict(crop), inputs=dict(inputs or {}),
                        extra={"model": net.spec.to_dict(), **dict(extra or {})})
    write_manifest(path, manifest)
    return manifest


def load_checkpoint(path: Union[str, Path], map_location: str = "cpu") -> Tuple[FerNet, Manifest]:
    """Verify the manifest, load the weights with ``weights_only=True`` and rebuild the FerNet (eval mode)."""
    path = Path(path)
    manifest = verify(path, kinds=("checkpoint",))
    try:
        blob = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - corrupt bytes make torch's readers raise almost anything
        # Seen: UnpicklingError (code payload), bare OSError (truncated zip), message-less EOFError (empty file),
        # IndexError/KeyError from the weights-only unpickler on random bytes. weights_only=True means none of
        # them ran code; every one is "this file is not a checkpoint", a user-fixable failure.
        why = (str(exc).splitlines() or [type(exc).__name__])[0] or type(exc).__name__
        raise ModelError(f"{path}: not a loadable fer-edge checkpoint ({why}); "
                         "it may be truncated or contain code (refused by weights_only) — retrain or "
                         "re-copy it") from exc
    if not isinstance(blob, dict) or "state_dict" not in blob:
        raise ModelError(f"{path}: checkpoint has no 'state_dict'; it was not written by fer-edge")
    spec_dict = manifest.extra.get("model")
    if not isinstance(spec_dict, dict):
        raise ManifestError(f"{path}: manifest has no model spec (extra.model); re-save the checkpoint")
    net = FerNet(ModelSpec.from_dict(spec_dict))
    try:
        net.load_state_dict(blob["state_dict"])
    except RuntimeError as exc:
        raise ModelError(f"{path}: weights do not fit the model in its manifest: "
                         f"{str(exc).splitlines()[0]}") from exc
    net.eval()
    return net, manifest


def contract_of(manifest: Manifest) -> Contract:
    """The contract that travels from checkpoint to ONNX to engine (crop policy parsed once, here)."""
    return Contract.from_dict({"labels": list(manifest.labels), "preprocess": dict(manifest.preprocess),
                               "crop": dict(manifest.crop)})
