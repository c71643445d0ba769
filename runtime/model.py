"""Reading what a model promises (its contract) without torch or the ``onnx`` package.

A device may carry only numpy, OpenCV and ONNX Runtime or TensorRT. Export writes the contract
(labels, preprocessing, crop policy) into the ONNX ``metadata_props`` and a ``.json`` sidecar; the
TensorRT build copies it into the engine's sidecar (a pure engine cannot carry metadata). This
module turns either into a :class:`~fer_edge.runtime.contract.Contract` and refuses a model that
does not carry one, because guessing the preprocessing is the classic silent accuracy loss.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

from .artefacts import CPU_INT8_SUFFIX, cpu_artefact_path
from .backends.base import META_CONTRACT, META_PRECISION
from .contract import Contract
from .errors import ConfigError, ManifestError, ModelError
from .manifest import Manifest, read_manifest, sha256_file, sidecar_path, verify

log = logging.getLogger(__name__)

ENGINE_SUFFIXES = (".engine", ".plan", ".trt")
ONNX_SUFFIXES = (".onnx",)
ONNX_KINDS = ("onnx", "int8_onnx")
REEXPORT = "re-export it with `fer-edge export` (and `fer-edge calibrate` for INT8)"


@dataclass
class ModelInfo:
    """A model file with its verified contract. ``manifest`` is ``None`` for an ONNX without sidecar."""

    path: Path
    format: str  # "onnx" or "engine"
    contract: Contract
    precision: str
    sha256: str
    manifest: Optional[Manifest] = None
    metadata: Dict[str, str] = field(default_factory=dict)


def model_format(path: Union[str, os.PathLike]) -> str:
    """``onnx`` or ``engine`` from the file name; anything else is a :class:`ModelError`."""
    suffix = Path(path).suffix.lower()
    if suffix in ONNX_SUFFIXES:
        return "onnx"
    if suffix in ENGINE_SUFFIXES:
        return "engine"
    raise ModelError(f"{path}: unknown model type {suffix!r}; give an .onnx model (from `fer-edge export` "
                     f"or `fer-edge calibrate`) or a TensorRT engine ({', '.join(ENGINE_SUFFIXES)}) from "
                     "`fer-edge build`")


def contract_from_json(text: Any, where: str) -> Contract:
    """Parse the JSON contract string stored under ``META_CONTRACT``; a bad one is a ModelError."""
    try:
        data = json.loads(text) if isinstance(text, (str, bytes)) else text
        if not isinstance(data, Mapping):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        contract = Contract.from_dict(data)
    except (ValueError, TypeError, ConfigError) as exc:
        raise ModelError(f"{where}: its stored contract is unreadable ({exc}); {REEXPORT}") from exc
    if not contract.labels:
        raise ModelError(f"{where}: its contract lists no labels; {REEXPORT}")
    return contract


def contract_from_manifest(manifest: Manifest, where: str) -> Contract:
    """The contract recorded in a manifest (labels, preprocess, crop)."""
    if not manifest.labels or not manifest.preprocess:
        raise ModelError(f"{where}: its manifest records no labels/preprocessing; {REEXPORT}")
    return contract_from_json({"labels": manifest.labels, "preprocess": manifest.preprocess,
                               "crop": manifest.crop}, where)


def onnx_metadata(path: Union[str, os.PathLike]) -> Dict[str, str]:
    """``metadata_props`` of an ONNX file read through ONNX Runtime (no ``onnx`` package needed)."""
    return dict(open_session(path, ["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map)


def open_session(path: Union[str, os.PathLike], providers, options=None):
    """An ``onnxruntime.InferenceSession``; a missing package or corrupt file becomes a named error."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ModelError("onnxruntime is not installed; `pip install onnxruntime` (or fer-edge[runtime]) "
                         "to run ONNX models") from exc
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=list(providers))
    except Exception as exc:  # noqa: BLE001 - ORT raises its own pybind exception types
        msg = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        raise ModelError(f"{path}: ONNX Runtime cannot load this model ({msg}); the file is corrupt, "
                         f"truncated or not an ONNX model — {REEXPORT}") from exc


def _sidecar_manifest(path: Path, kinds) -> Optional[Manifest]:
    """Verified manifest when a sidecar exists; ``None`` when there is none."""
    if not sidecar_path(path).is_file():
        return None
    return verify(path, kinds=kinds)


def describe_onnx(path: Union[str, os.PathLike], metadata: Optional[Mapping[str, str]] = None) -> ModelInfo:
    """Contract and provenance of an ONNX model; ``metadata`` avoids a second session when known.

    The sidecar (when present) is verified on the file's own hash: an INT8 model records its FP32
    parent under ``inputs["fp32_onnx"]``, but checking that parent is calibration's ``verify_int8``,
    since the device usually carries the INT8 model alone.
    """
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"{p}: model file not found")
    manifest = _sidecar_manifest(p, ONNX_KINDS)
    meta = dict(metadata) if metadata is not None else onnx_metadata(p)
    if META_CONTRACT in meta:
        contract = contract_from_json(meta[META_CONTRACT], str(p))
        if manifest is not None and manifest.labels and list(manifest.labels) != list(contract.labels):
            raise ManifestError(f"{p}: labels in the model ({list(contract.labels)}) differ from its manifest "
                                f"({manifest.labels}); the sidecar belongs to another model — {REEXPORT}")
    elif manifest is not None and manifest.labels:
        log.warning("%s: no contract in the ONNX metadata; using the one in its manifest", p)
        contract = contract_from_manifest(manifest, str(p))
    else:
        raise ModelError(f"{p}: this ONNX carries no fer-edge contract (metadata key {META_CONTRACT!r}), so "
                         f"the labels and preprocessing are unknown; {REEXPORT}")
    if manifest is None:
        log.warning("%s: no manifest sidecar (%s); using the contract inside the model", p, sidecar_path(p).name)
    precision = (manifest.precision if manifest is not None else None) or meta.get(META_PRECISION, "fp32")
    sha = manifest.sha256 if manifest is not None else sha256_file(p)
    return ModelInfo(path=p, format="onnx", contract=contract, precision=precision, sha256=sha,
                     manifest=manifest, metadata=meta)


def cpu_int8_for(path: Union[str, os.PathLike]) -> Optional[Path]:
    """The CPU INT8 artefact calibrated together with ``path`` (TensorRT's Q/DQ model), or None.

    Used only when its verified manifest names ``path``'s sha256 as its sibling, so a CPU model left over
    from another calibration is never run in place of this one (it is logged and skipped).
    """
    p = Path(path)
    cand = cpu_artefact_path(p)
    if p.stem.endswith(CPU_INT8_SUFFIX) or not cand.is_file():
        return None
    try:
        sibling = verify(cand, kinds=("int8_onnx",)).inputs.get("int8_onnx")
    except ManifestError as exc:
        log.warning("%s: not used for %s (%s)", cand.name, p.name, exc)
        return None
    if sibling != sha256_file(p):
        log.warning("%s: calibrated with another %s (sha256 differs); running %s as given — recalibrate to get "
                    "the CPU INT8 layout back", cand.name, p.name, p.name)
        return None
    return cand


def describe_engine(path: Union[str, os.PathLike]) -> ModelInfo:
    """Contract of a TensorRT engine: it lives only in the engine's verified sidecar."""
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"{p}: engine file not found")
    try:
        read_manifest(p)
    except ManifestError as exc:
        raise ModelError(f"{exc}. An engine carries its contract only in its sidecar: rebuild it with "
                         "`fer-edge build` and keep the .json next to it") from exc
    manifest = verify(p, kinds=("engine",))
    return ModelInfo(path=p, format="engine", contract=contract_from_manifest(manifest, str(p)),
                     precision=manifest.precision, sha256=manifest.sha256, manifest=manifest)


def describe_model(path: Union[str, os.PathLike]) -> ModelInfo:
    """:class:`ModelInfo` of an ONNX model or TensorRT engine (by suffix)."""
    fmt = model_format(path)
    return describe_onnx(path) if fmt == "onnx" else describe_engine(path)


def read_contract(model_path: Union[str, os.PathLike]) -> Contract:
    """The contract (labels, preprocessing, crop policy) a model was exported with.

    Raises :class:`ModelError` when the model has none (re-export with ``fer-edge export``) and
    :class:`ManifestError` when its sidecar does not match the file.
    """
    return describe_model(model_path).contract
