"""``export:`` → the call of :func:`fer_edge.export.onnx.export_onnx` (``fer-edge export`` and the pipeline)."""
from __future__ import annotations

from typing import Any, Optional, Union

from .call import StageCall, pick


def from_config(cfg: Any, *, opset: Optional[int] = None, batch: Union[str, int, None] = None,
                parity_images: Optional[str] = None, simplify: Optional[bool] = None) -> StageCall:
    """Every key of ``export:`` as a keyword of ``export_onnx``; a flag that is not ``None`` wins."""
    e = cfg.export
    return StageCall("export", "fer_edge.export.onnx:export_onnx", {
        "opset": int(pick(opset, e.opset)), "batch": str(pick(batch, e.batch)),
        "parity_images": pick(parity_images, e.parity_images), "simplify": bool(pick(simplify, e.simplify)),
        "atol": float(e.parity_atol)})
