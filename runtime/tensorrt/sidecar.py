"""The engine's sidecar manifest, and the check that an engine belongs to this TensorRT and this GPU.

A serialized engine only runs with the TensorRT version that built it and is tuned for (and often
only valid on) the GPU it was built on. TensorRT's own error for a mismatch is cryptic, and a
mismatch that does load can be slow or wrong, so the sidecar records both and
:func:`check_engine` refuses a mismatch before deserializing, saying what to do.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Union

from fer_edge.runtime.errors import ManifestError
from fer_edge.runtime.manifest import Manifest, verify

from .onnx_model import OnnxModelInfo
from .plan import BuildPlan

log = logging.getLogger("fer_edge.build")
UNKNOWN = "unknown"
REBUILD = "rebuild with `fer-edge build` on this device"


@dataclass(frozen=True)
class DeviceInfo:
    """The CUDA device an engine is built for: its name and compute capability ("8.7" on Orin)."""

    name: str = UNKNOWN
    compute_capability: str = UNKNOWN

    @property
    def known(self) -> bool:
        return self.name != UNKNOWN and self.compute_capability != UNKNOWN

    def to_dict(self) -> Dict[str, str]:
        return asdict(self)


def detect_device(index: int = 0) -> DeviceInfo:
    """Name and compute capability of CUDA device ``index``, via pycuda or cuda-python; unknown if neither."""
    try:
        import pycuda.driver as cuda

        cuda.init()
        dev = cuda.Device(index)
        major, minor = dev.compute_capability()
        return DeviceInfo(str(dev.name()), f"{major}.{minor}")
    except Exception as exc:  # noqa: BLE001 - absent, or no driver: try the next way
        log.debug("pycuda cannot describe the device: %s", exc)
    try:
        from cuda.bindings import runtime as cudart

        err, props = cudart.cudaGetDeviceProperties(index)
        if int(err) == 0:
            name = props.name.decode(errors="replace") if isinstance(props.name, bytes) else str(props.name)
            return DeviceInfo(name.strip("\x00"), f"{props.major}.{props.minor}")
    except Exception as exc:  # noqa: BLE001
        log.debug("cuda-python cannot describe the device: %s", exc)
    return DeviceInfo()


def engine_manifest(model: OnnxModelInfo, plan: BuildPlan, trt_version: str, device: DeviceInfo,
                    extra: Optional[Dict[str, Any]] = None) -> Manifest:
    """The ``kind="engine"`` manifest: contract of the ONNX, TensorRT version, device, flags and shapes."""
    shapes = {name: {"min": list(s[0]), "opt": list(s[1]), "max": list(s[2])} for name, s in plan.profile.items()}
    info: Dict[str, Any] = {
        "tensorrt_version": trt_version,
        "device": device.to_dict(),
        "profile": shapes,
        "network_flags": list(plan.network_flags),
        "builder_flags": list(plan.builder_flags),
        "strongly_typed": plan.strongly_typed,
        "dla_core": plan.dla_core,
        "workspace_mb": plan.workspace_mb,
        "onnx_precision": model.precision,
        "onnx_qdq": model.qdq,
    }
    info.update(extra or {})
    return Manifest(kind="engine", precision=plan.precision, labels=list(model.contract.labels),
                    preprocess=model.contract.preprocess.to_dict(), crop=model.contract.to_dict()["crop"],
                    inputs={"onnx": model.sha256}, extra=info)


def check_engine(path: Union[str, Path], trt_module: Any = None, device: Optional[DeviceInfo] = None) -> Manifest:
    """Verify the engine's sidecar and refuse an engine built by another TensorRT or for another GPU.

    ``trt_module`` defaults to ``import tensorrt``; ``device`` to :func:`detect_device`. An unknown
    device on either side cannot be compared: that is logged, not refused.
    """
    manifest = verify(path, kinds=["engine"])
    if trt_module is None:
        from .capabilities import import_tensorrt

        trt_module = import_tensorrt()
    built_with = str(manifest.extra.get("tensorrt_version", UNKNOWN))
    here = str(getattr(trt_module, "__version__", UNKNOWN))
    if built_with != here:
        raise ManifestError(f"{path}: engine was built with TensorRT {built_with}, this is TensorRT {here}; "
                            f"{REBUILD}")
    recorded = manifest.extra.get("device") or {}
    built_for = DeviceInfo(str(recorded.get("name", UNKNOWN)), str(recorded.get("compute_capability", UNKNOWN)))
    device = device if device is not None else detect_device()
    if built_for.known and device.known:
        if built_for != device:
            raise ManifestError(f"{path}: engine was built for {built_for.name} (compute "
                                f"{built_for.compute_capability}), this is {device.name} (compute "
                                f"{device.compute_capability}); {REBUILD}")
    else:
        log.warning("%s: cannot compare devices (built for %s, running on %s); if inference fails, %s",
                    path, built_for.name, device.name, REBUILD)
    return manifest
