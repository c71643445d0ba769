"""What the builder needs to know about an ONNX model before TensorRT sees it.

The manifest (sha256, producer, kind) and the contract that export stored in ``metadata_props``
(labels, preprocessing, crop). The device may have only the ``runtime`` extra, which has
onnxruntime but not ``onnx``: the metadata is then read through onnxruntime's model metadata, and
whether the graph holds Q/DQ nodes is taken from the precision recorded by ``fer-edge calibrate``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

from fer_edge.runtime.backends.base import META_CONTRACT, META_PRECISION
from fer_edge.runtime.contract import Contract
from fer_edge.runtime.errors import BackendUnavailable, ModelError
from fer_edge.runtime.manifest import Manifest, verify

ONNX_KINDS = ("onnx", "int8_onnx")


@dataclass(frozen=True)
class OnnxModelInfo:
    """An ONNX model checked against its manifest, with its contract and quantization style."""

    path: Path
    manifest: Manifest
    contract: Contract
    qdq: bool                       # explicit quantization (QuantizeLinear/DequantizeLinear) inside
    precision: str                  # "fp32" or "int8" as recorded by export / calibrate

    @property
    def sha256(self) -> str:
        return self.manifest.sha256

    @property
    def input_chw(self) -> Tuple[int, int, int]:
        return self.contract.preprocess.input_shape


def _metadata_with_onnx(path: Path) -> Optional[Tuple[Dict[str, str], Optional[bool]]]:
    try:
        import onnx
    except ImportError:
        return None
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad model file
        raise ModelError(f"{path}: not a readable ONNX model ({exc}); re-export it with `fer-edge export`") from exc
    meta = {p.key: p.value for p in model.metadata_props}
    qdq = any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node)
    return meta, qdq


def _metadata_with_onnxruntime(path: Path) -> Dict[str, str]:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise BackendUnavailable("reading the model's contract needs `onnx` or `onnxruntime`; "
                                 "install the runtime extra: pip install 'fer-edge[runtime]'") from exc
    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"{path}: onnxruntime cannot load it ({exc}); re-export it with `fer-edge export`") from exc
    return dict(sess.get_modelmeta().custom_metadata_map)


def read_onnx_model(path: str | Path) -> OnnxModelInfo:
    """Verify ``path`` against its manifest and read its contract; refuses models without one."""
    path = Path(path)
    manifest = verify(path, kinds=ONNX_KINDS)
    found = _metadata_with_onnx(path)
    if found is None:
        meta, qdq = _metadata_with_onnxruntime(path), None
    else:
        meta, qdq = found
    raw = meta.get(META_CONTRACT)
    if raw is None:
        raise ModelError(f"{path}: ONNX metadata has no {META_CONTRACT!r} contract; re-export it with "
                         "`fer-edge export` (it stores labels and preprocessing inside the model)")
    try:
        contract = Contract.from_dict(json.loads(raw))
    except (ValueError, TypeError) as exc:
        raise ModelError(f"{path}: the {META_CONTRACT!r} metadata is not a valid contract ({exc}); "
                         "re-export it with `fer-edge export`") from exc
    precision = meta.get(META_PRECISION) or manifest.precision
    if qdq is None:  # no `onnx` here: trust what calibrate recorded
        qdq = precision == "int8" or manifest.kind == "int8_onnx"
    return OnnxModelInfo(path=path, manifest=manifest, contract=contract, qdq=bool(qdq),
                         precision="int8" if qdq else precision)
