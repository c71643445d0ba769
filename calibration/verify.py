"""``verify_int8``: refuse an INT8 model that was not calibrated from the FP32 model at hand.

An INT8 model silently paired with another FP32 export (retrained, re-exported) would be evaluated,
benchmarked or built as if it were its quantized twin. The INT8 manifest records the FP32 file's
sha256 under ``inputs["fp32_onnx"]``; this checks it. numpy-free, torch-free: the runtime may call it.
"""
from __future__ import annotations

import os
from typing import Union

from fer_edge.runtime.manifest import Manifest, verify, verify_parent


def verify_int8(int8_path: Union[str, os.PathLike], fp32_path: Union[str, os.PathLike]) -> Manifest:
    """Verify the INT8 model's own manifest and that its recorded parent is ``fp32_path``; ManifestError if not."""
    manifest = verify(int8_path, kinds=("int8_onnx",))
    verify(fp32_path, kinds=("onnx",))
    verify_parent(manifest, "fp32_onnx", fp32_path, where=str(int8_path))
    return manifest
