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
