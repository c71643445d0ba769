"""Config sections owned by the runtime stage: ``runtime:`` (fer-edge run) and ``build:`` (fer-edge build).

Plain dataclasses with no imports beyond the standard library, so any verb can load the whole config
without importing a stage.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Literal, Optional


@dataclass
class RuntimeConfig:
    """``fer-edge run``: capture → detect → track → classify → smooth → results."""

    backend: Literal["auto", "tensorrt", "onnxruntime"] = "auto"
    detect_every: int = 5
    detect_mode: Literal["auto", "sync", "async"] = "auto"
    rescan_every: int = 30
    max_frames: Optional[int] = None
    queue_size: int = 4
    drop_policy: Literal["auto", "drop_oldest", "block"] = "auto"
    ema_alpha: float = 0.3
    hysteresis_margin: float = 0.1
    hysteresis_frames: int = 3
    track_iou: float = 0.3
    track_max_age: int = 10
    detect_width: int = 640
    reconnect_retries: int = 5
    reconnect_backoff_s: float = 0.5
    threads: int = 0
    stall_timeout_s: float = 2.0
    stall_give_up_s: float = 30.0
    video_fps: float = 25.0
    #: a track a detection pass did not confirm is no longer reported; after this many such passes in a row
    #: it is forgotten (until then a re-detection at the same place keeps its id and smoothed label)
    track_max_misses: int = 1
    #: between detections a tracked face is reported only while its box still looks like the face the
    #: detector confirmed (normalised correlation of a small grey patch); below this, detection runs now
    track_min_similarity: float = 0.5

    #: ``field: (lowest allowed, what it means)`` — checked by :meth:`validate`.
    _LIMITS = {"detect_every": (1, "frames between detections"), "rescan_every": (1, "frames between full scans"),
               "queue_size": (1, "frames"), "hysteresis_frames": (1, "frames"), "track_max_age": (0, "frames"),
               "track_max_misses": (0, "detection passes"), "detect_width": (0, "pixels (0 = full size)"),
               "reconnect_retries": (0, "retries"), "threads": (0, "threads (0 = ONNX Runtime's default)"),
               "max_frames": (1, "frames (leave it unset for the whole source)"),
               "reconnect_backoff_s": (0, "seconds"), "stall_timeout_s": (1e-3, "seconds"),
               "stall_give_up_s": (1e-3, "seconds"), "video_fps": (1e-3, "frames per second")}

    def validate(self) -> RuntimeConfig:
        """Refuse values that would make a run do nothing or misbehave (``max_frames: -1``, ``threads: -2``)."""
        from .errors import ConfigError

        for name, (low, unit) in self._LIMITS.items():
            value = getattr(self, name)
            if value is None and name == "max_frames":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low:
                raise ConfigError(f"runtime.{name}: {value!r} must be a number >= {low:g} ({unit})")
        for name in ("ema_alpha",):
            if not 0.0 < float(getattr(self, name)) <= 1.0:
                raise ConfigError(f"runtime.{name}: {getattr(self, name)!r} must be in (0, 1]")
        for name in ("track_iou", "track_min_similarity", "hysteresis_margin"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise ConfigError(f"runtime.{name}: {getattr(self, name)!r} must be in [0, 1]")
        return self


@dataclass
class BuildConfig:
    """``fer-edge build``: TensorRT engine from an ONNX model, on the device."""

    precision: Literal["best", "int8", "fp16", "fp32"] = "best"
    batch: List[int] = field(default_factory=lambda: [1, 8, 32])
    workspace_mb: int = 1024
    timing_cache: Optional[str] = None
    dla_core: Optional[int] = None
    gpu_fallback: bool = False
    calib_cache: Optional[str] = None
    #: TensorRT 10.x only: build Q/DQ models as strongly typed networks (off by default: weakly typed
    #: INT8|FP16 is the path that also works on DLA and avoids NVIDIA/TensorRT#4832 on Orin).
    strongly_typed: bool = False
