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
