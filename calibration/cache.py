"""TensorRT calibration cache (``IInt8EntropyCalibrator2`` text format): write from Q/DQ scales, read back.

Users on TensorRT 8.x-10.x who build with implicit quantization (``trtexec --int8 --calib=FILE``)
need a cache, not a Q/DQ model. Both come from the same activation ranges here: each line holds the
per-tensor scale ``amax / 127`` that the Q/DQ model's QuantizeLinear uses for that tensor, so the
two INT8 paths quantize identically. Format (as NVIDIA's qdq-translator writes it; the version integer
as in TensorRT's NvInferRuntimeBase.h):

    TRT-<version>-EntropyCalibration2
    <tensor name>: <float32 bits of the scale as big-endian hex, lowercase, no 0x, no zero padding>

``<version>`` is ``major*1000 + minor*100 + patch`` for TensorRT 8.x (8.6.1 → 8601) and
``major*10000 + minor*100 + patch`` from 10.x on (10.3.0 → 100300). TensorRT skips a cache whose
header does not match the build, so write the header for the TensorRT that will read it.
"""
from __future__ import annotations

import math
import os
import re
import struct
from pathlib import Path
from typing import Dict, Mapping, Tuple, Union

from fer_edge.runtime.atomic import atomic_write
from fer_edge.runtime.errors import ConfigError, ModelError

CALIBRATOR = "EntropyCalibration2"
INT8_MAX = 127.0
_HEADER = re.compile(r"^TRT-(\d+)-(\w+)$")


def trt_version_int(version: str) -> int:
    """``"10.3.0"`` → 100300, ``"8.6.1"`` → 8601 (the integer TensorRT writes into the cache header)."""
    parts = str(version).strip().split(".")
    try:
        major, minor, patch = (int(p) for p in (parts + ["0", "0"])[:3])
    except ValueError:
        raise ConfigError(f"TensorRT version {version!r}: expected MAJOR.MINOR[.PATCH], e.g. 10.3.0") from None
    if major < 8:
        raise ConfigError(f"TensorRT version {version!r}: caches are written for TensorRT 8.x and later")
    return major * (1000 if major < 10 else 10000) + minor * 100 + patch


def cache_header(version: str, calibrator: str = CALIBRATOR) -> str:
    return f"TRT-{trt_version_int(version)}-{calibrator}"


def scale_to_hex(scale: float) -> str:
    """float32 bits of ``scale`` as MSB-first lowercase hex without leading zeros (1/127 → ``3c010204``)."""
    bits = struct.unpack(">I", struct.pack(">f", float(scale)))[0]
    return format(bits, "x")


def hex_to_scale(text: str) -> float:
    bits = int(text.strip(), 16)
    if not 0 <= bits <= 0xFFFFFFFF:
        raise ValueError(f"{text!r} is not a 32-bit value")
    return struct.unpack(">f", struct.pack(">I", bits))[0]


def format_cache(scales: Mapping[str, float], version: str, calibrator: str = CALIBRATOR) -> str:
    """The cache text for per-tensor ``scales`` (tensor name → amax/127); names keep the given order."""
    lines = [cache_header(version, calibrator)]
    for name, scale in scales.items():
        if not math.isfinite(scale) or scale < 0:
            raise ModelError(f"calibration cache: tensor {name!r} has an invalid scale {scale!r}")
        if ":" in name and name.rsplit(":", 1)[1].strip() == "":
            raise ModelError(f"calibration cache: tensor name {name!r} cannot be written")
        lines.append(f"{name}: {scale_to_hex(scale)}")
    return "\n".join(lines) + "\n"


def write_cache(path: Union[str, os.PathLike], scales: Mapping[str, float], version: str,
                calibrator: str = CALIBRATOR) -> Path:
    """Write the cache atomically; returns its path."""
    return atomic_write(path, format_cache(scales, version, calibrator))


def parse_cache(text: str, where: str = "calibration cache") -> Tuple[int, str, Dict[str, float]]:
    """(version int, calibrator name, tensor name → scale) from cache text; a bad line is a ModelError."""
    lines = [ln.rstrip("\r") for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise ModelError(f"{where}: empty calibration cache")
    m = _HEADER.match(lines[0].strip())
    if not m:
        raise ModelError(f"{where}: first line {lines[0][:60]!r} is not a TensorRT cache header "
                         "like 'TRT-100300-EntropyCalibration2'")
    scales: Dict[str, float] = {}
    for i, line in enumerate(lines[1:], start=2):
        name, sep, value = line.rpartition(":")
        try:
            if not sep or not name.strip():
                raise ValueError("expected 'tensor_name: hex'")
            scales[name.strip()] = hex_to_scale(value)
        except ValueError as exc:
            raise ModelError(f"{where}: line {i} {line[:80]!r}: {exc}") from exc
    return int(m.group(1)), m.group(2), scales


def read_cache(path: Union[str, os.PathLike]) -> Tuple[int, str, Dict[str, float]]:
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"{p}: calibration cache not found")
    return parse_cache(p.read_text(encoding="utf-8", errors="strict"), where=str(p))


def scales_to_ranges(scales: Mapping[str, float]) -> Dict[str, float]:
    """Scale → symmetric range ``amax = scale × 127`` (what ORT's TensorRT EP does with a cache)."""
    return {k: float(v) * INT8_MAX for k, v in scales.items()}


def scale_overrides(scales: Mapping[str, float]) -> Dict[str, list]:
    """Cache scales as ``TensorQuantOverrides`` for ``quantize_static`` (zero-point 0): cache → Q/DQ."""
    import numpy as np

    return {k: [{"scale": np.float32(v), "zero_point": np.int8(0)}] for k, v in scales.items()}
