"""Config section ``calibrate:`` (fer-edge calibrate). Standard library only."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional


@dataclass
class CalibrateConfig:
    method: Literal["entropy", "minmax", "percentile"] = "entropy"
    num_images: int = 500
    min_images: int = 100
    max_drop: float = 1.0
    detect: bool = False
    eval: Optional[str] = None
    compare_source: Optional[str] = None
    trt_version: str = "10.3.0"
    max_fallback_layers: int = 16  # the accuracy gate keeps at most this many layers in float
    seed: int = 0  # which images are picked when a folder holds more than num_images
