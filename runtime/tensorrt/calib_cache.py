"""Build side of the TensorRT calibration cache: check it, and hand it to TensorRT through a calibrator.

``fer-edge calibrate`` writes the cache (header ``TRT-<version>-EntropyCalibration2``, then one
``tensor: <hex float32 scale>`` line per tensor). Implicit INT8 on TensorRT 8.6/10.x reads it through
an ``IInt8EntropyCalibrator2`` whose ``read_calibration_cache`` returns the file: TensorRT then never
asks for a batch, so no calibration images are needed on the device. TensorRT skips a cache whose
header does not match its version, which would leave INT8 layers without ranges, so a mismatched
header is reported loudly.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, List, Optional

from fer_edge.runtime.errors import DataError, ManifestError
from fer_edge.runtime.manifest import sidecar_path, verify

from .capabilities import calibration_cache_version

log = logging.getLogger("fer_edge.build")
HEADER_RE = re.compile(r"^TRT-(\d+)-(\w+)$")
ALGORITHM = "EntropyCalibration2"


def check_calibration_cache(path: Path, trt_version: str, onnx_sha256: Optional[str] = None) -> bytes:
    """Read ``path``, check its header against this TensorRT and its manifest against the ONNX; return bytes.

    Returns the raw bytes; warnings (version or algorithm mismatch) go to the log, a file that is not
    a calibration cache, or one made from another model, is refused.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"--calib-cache {path}: file not found; `fer-edge calibrate` writes it next to "
                        "the INT8 model")
    data = path.read_bytes()
    lines = data.decode("ascii", errors="replace").splitlines()
    match = HEADER_RE.match(lines[0].strip()) if lines else None
    if match is None or len(lines) < 2:
        raise DataError(f"--calib-cache {path}: not a TensorRT calibration cache (expected a first line like "
                        f"TRT-{calibration_cache_version(trt_version)}-{ALGORITHM} and tensor lines)")
    version, algorithm = match.groups()
    expected = calibration_cache_version(trt_version)
    if version != expected:
        log.warning("calibration cache %s was written for TensorRT %s, this is %s (%s); TensorRT may ignore "
                    "it and build INT8 without ranges — re-write it for this version with `fer-edge calibrate`",
                    path, version, expected, trt_version)
    if algorithm != ALGORITHM:
        log.warning("calibration cache %s is for %s, fer-edge's calibrator is %s; TensorRT may ignore it",
                    path, algorithm, ALGORITHM)
    if onnx_sha256 and sidecar_path(path).is_file():
        manifest = verify(path, kinds=["calibration_cache"])
        recorded = [v for k, v in manifest.inputs.items() if "onnx" in k]
        if recorded and onnx_sha256 not in recorded:
            raise ManifestError(f"--calib-cache {path} was made from another model (sha256 "
                                f"{recorded[0][:12]}…, this ONNX is {onnx_sha256[:12]}…); pass the cache "
                                "`fer-edge calibrate` wrote for this model")
    elif onnx_sha256:
        log.warning("calibration cache %s has no manifest; cannot check that it belongs to this model", path)
    return data


def make_calibrator(trt: Any, cache: bytes) -> Any:
    """An ``IInt8EntropyCalibrator2`` that serves ``cache`` and never asks for images."""

    class CacheOnlyCalibrator(trt.IInt8EntropyCalibrator2):  # type: ignore[name-defined, misc]
        """TensorRT reads the cache first; with a valid cache ``get_batch`` is never called."""

        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self._cache = cache

        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names: List[str]) -> None:
            # No images on the device: returning None tells TensorRT there is no more data.
            return None

        def read_calibration_cache(self) -> bytes:
            return self._cache

        def write_calibration_cache(self, cache: Any) -> None:
            # Never overwrite the user's cache with whatever TensorRT re-serialises.
            return None

    return CacheOnlyCalibrator()
