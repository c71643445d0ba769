"""What the installed TensorRT can do, found by looking at the module rather than at its version string.

TensorRT 8.6, 10.x and 11.x differ in a handful of API names (see docs/jetson.md): the explicit-batch
network flag is gone in 11, ``STRONGLY_TYPED`` is new in 10, the INT8/FP16 builder flags and the
implicit calibrators are gone in 11. Asking the module whether a name exists is exactly the question
the builder needs answered, survives point releases we have never seen, and keeps version
comparisons out of the rest of the code. :meth:`Capabilities.assumed_for` is the one place that
maps a version to features, for ``--print-trtexec`` on a machine without TensorRT.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Dict, Tuple

from fer_edge.runtime.errors import BackendUnavailable

INSTALL_HINT = ("On Jetson TensorRT comes with JetPack (`sudo apt install python3-libnvinfer`, or use the "
                "system python3); on x86 `pip install tensorrt`. Without it, `fer-edge build … --print-trtexec` "
                "prints the equivalent trtexec command to run on the device.")


def import_tensorrt() -> Any:
    """``import tensorrt`` or a :class:`BackendUnavailable` that says how to get it."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise BackendUnavailable(f"TensorRT is not installed here ({exc}). {INSTALL_HINT}") from exc
    return trt


def version_tuple(version: str) -> Tuple[int, ...]:
    """``"8.6.1.6"`` → ``(8, 6, 1, 6)``; non-numeric parts are dropped (``"10.3.0.post1"`` → ``(10, 3, 0)``)."""
    return tuple(int(p) for p in re.findall(r"\d+", str(version).split("+")[0])[:4])


@dataclass(frozen=True)
class Capabilities:
    """Features of one TensorRT Python module that fer-edge's builder and backend depend on."""

    version: str
    explicit_batch_flag: bool        # NetworkDefinitionCreationFlag.EXPLICIT_BATCH (8.x, 10.x; gone in 11)
    strongly_typed_flag: bool        # NetworkDefinitionCreationFlag.STRONGLY_TYPED (10.x, 11.x)
    precision_flags: bool            # BuilderFlag.INT8 and BuilderFlag.FP16 (gone in 11)
    int8_calibrator: bool            # IInt8EntropyCalibrator2 (8.x, deprecated 10.1, gone in 11)
    calibration_profile: bool        # IBuilderConfig.set_calibration_profile
    platform_fast_queries: bool      # Builder.platform_has_fast_int8/_fp16 (gone in 11)
    memory_pool_limit: bool          # IBuilderConfig.set_memory_pool_limit (8.4+)
    dla: bool                        # DeviceType.DLA
    io_tensors_api: bool             # ICudaEngine.num_io_tensors / get_tensor_name (8.5+)
    execute_v3: bool                 # IExecutionContext.execute_async_v3 (8.5+)
    execute_v2: bool                 # IExecutionContext.execute_async_v2 (bindings; gone in 10)
    progress_monitor: bool = False   # IProgressMonitor + IBuilderConfig.progress_monitor (10.x+)

    @property
    def strongly_typed_only(self) -> bool:
        """True on TensorRT 11: tensor types decide precision; no INT8/FP16 flags, no calibrators."""
        return not self.precision_flags

    @property
    def generation(self) -> str:
        """A label for logs and the trtexec printer ("8.x", "10.x", "11.x"); never used for decisions."""
        if self.strongly_typed_only:
            return "11.x"
        return "10.x" if self.strongly_typed_flag else "8.x"

    def to_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        d["generation"] = self.generation
        return d

    @classmethod
    def detect(cls, trt: Any) -> Capabilities:
        """Look at the module ``trt`` (the real one or a test fake) and record what exists."""
        flags = getattr(trt, "NetworkDefinitionCreationFlag", None)
        bflags = getattr(trt, "BuilderFlag", None)
        config_cls = getattr(trt, "IBuilderConfig", None)
        engine_cls = getattr(trt, "ICudaEngine", None)
        ctx_cls = getattr(trt, "IExecutionContext", None)
        device_type = getattr(trt, "DeviceType", None)
        return cls(
            version=str(getattr(trt, "__version__", "0")),
            explicit_batch_flag=hasattr(flags, "EXPLICIT_BATCH"),
            strongly_typed_flag=hasattr(flags, "STRONGLY_TYPED"),
            precision_flags=hasattr(bflags, "INT8") and hasattr(bflags, "FP16"),
            int8_calibrator=hasattr(trt, "IInt8EntropyCalibrator2"),
            calibration_profile=hasattr(config_cls, "set_calibration_profile"),
            platform_fast_queries=hasattr(getattr(trt, "Builder", None), "platform_has_fast_int8"),
            memory_pool_limit=hasattr(config_cls, "set_memory_pool_limit") and hasattr(trt, "MemoryPoolType"),
            dla=hasattr(device_type, "DLA"),
            io_tensors_api=hasattr(engine_cls, "num_io_tensors"),
            execute_v3=hasattr(ctx_cls, "execute_async_v3"),
            execute_v2=hasattr(ctx_cls, "execute_async_v2"),
            progress_monitor=hasattr(trt, "IProgressMonitor") and hasattr(config_cls, "progress_monitor"),
        )

    @classmethod
    def assumed_for(cls, version: str) -> Capabilities:
        """Features a TensorRT ``version`` is documented to have (docs/jetson.md), for machines without it.

        Only ``--print-trtexec`` uses this: with TensorRT installed, :meth:`detect` is the truth.
        """
        major = (version_tuple(version) or (10,))[0]
        if major not in (8, 10, 11):
            raise BackendUnavailable(f"--trt-version {version}: fer-edge knows TensorRT 8.6, 10.x and 11.x")
        v8, v11 = major == 8, major == 11
        return cls(version=str(version), explicit_batch_flag=not v11, strongly_typed_flag=not v8,
                   precision_flags=not v11, int8_calibrator=not v11, calibration_profile=not v11,
                   platform_fast_queries=not v11, memory_pool_limit=True, dla=True, io_tensors_api=True,
                   execute_v3=True, execute_v2=v8, progress_monitor=not v8)


def calibration_cache_version(version: str) -> str:
    """The number TensorRT writes in a calibration-cache header (``TRT-<n>-EntropyCalibration2``).

    8.x: ``major*1000 + minor*100 + patch`` (8.6.1 → 8601); 10.x+: ``major*10000 + minor*100 + patch``
    (10.3.0 → 100300), from ``NV_TENSORRT_VERSION`` in the headers of each release.
    """
    parts = (version_tuple(version) + (0, 0, 0))[:3]
    major, minor, patch = parts
    if major < 10:
        return str(major * 1000 + minor * 100 + patch)
    return str(major * 10000 + minor * 100 + patch)
