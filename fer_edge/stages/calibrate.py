"""``calibrate:`` → the call of :func:`fer_edge.calibration.quantize.calibrate` (``fer-edge calibrate``, pipeline)."""
from __future__ import annotations

from typing import Any, Optional

from .call import StageCall, pick, refuse_in_pipeline

#: Keys that name data of their own. The pipeline decides these from its splits (the gate on target_val,
#: no source comparison, faces already cut), so it refuses a config that sets them rather than ignore it.
PIPELINE_DECIDES = ("eval", "compare_source", "detect")


def from_config(cfg: Any, *, method: Optional[str] = None, num_images: Optional[int] = None,
                min_images: Optional[int] = None, eval: Optional[str] = None, max_drop: Optional[float] = None,
                detect: Optional[bool] = None, compare_source: Optional[str] = None,
                trt_version: Optional[str] = None, min_agreement: Optional[float] = None,
                cpu: Optional[bool] = None, for_pipeline: bool = False) -> StageCall:
    """Every key of ``calibrate:`` as a keyword of ``calibrate``; a flag that is not ``None`` wins.

    ``for_pipeline``: the keys in :data:`PIPELINE_DECIDES` are refused when set, and ``eval_data`` is left
    to the pipeline to pass (its target_val split, when labelled).
    """
    c = cfg.calibrate
    settings = {
        "method": pick(method, c.method), "num_images": int(pick(num_images, c.num_images)),
        "min_images": int(pick(min_images, c.min_images)), "eval_data": pick(eval, c.eval),
        "max_drop": pick(max_drop, c.max_drop), "detect": bool(pick(detect, c.detect)),
        "compare_source": pick(compare_source, c.compare_source), "trt_version": pick(trt_version, c.trt_version),
        "max_fallback_layers": int(c.max_fallback_layers), "seed": int(c.seed),
        "min_agreement": float(pick(min_agreement, c.min_agreement)), "gate_max_images": int(c.gate_images),
        "cpu": bool(pick(cpu, c.cpu)), "cpu_reduce_range": bool(c.cpu_reduce_range)}
    if for_pipeline:
        refuse_in_pipeline(c, "calibrate", PIPELINE_DECIDES,
                           "it calibrates on the target split's faces, gates on target_val and reports its drop")
        del settings["eval_data"]
    return StageCall("calibrate", "fer_edge.calibration.quantize:calibrate", settings)
