"""Config section ``calibrate:`` (fer-edge calibrate). Standard library only."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional


@dataclass
class CalibrateConfig:
    #: minmax: with CLAHE crops entropy (KL) ranges moved INT8 accuracy away from FP32 by -9.7..+9.4 pt on four
    #: models where minmax stayed within 0.4 pt (docs/calibration.md)
    method: Literal["entropy", "minmax", "percentile"] = "minmax"
    num_images: int = 500
    min_images: int = 100
    # The gate is label-free: INT8 (every flavour) must agree with FP32 on the top-1 class of at least this
    # percentage of held-out unlabelled target faces (up to gate_images of them; never calibration images).
    min_agreement: float = 99.0
    #: 1000: one face is 0.1 point of agreement. At 200 the 99 % threshold allowed two flips, and the main job's
    #: model swung between 97.0 and 99.5 % as single layers went to float -- noise the fallback search chased.
    gate_images: int = 1000
    # With a labelled validation set (`eval`, never the split a report quotes) its accuracy drop is reported;
    # set max_drop (points) to gate on it as well.
    max_drop: Optional[float] = None
    detect: bool = False
    eval: Optional[str] = None
    compare_source: Optional[str] = None
    trt_version: str = "10.3.0"
    max_fallback_layers: int = 16  # the gate keeps at most this many layers in float
    seed: int = 0  # which images are picked when a folder holds more than num_images
    cpu: bool = True  # also write model.int8-cpu.onnx: ONNX Runtime's fast x86 layout (U8 activations, S8 weights)
    cpu_reduce_range: bool = False  # 7-bit weights in the CPU model: only for x86 CPUs without VNNI
