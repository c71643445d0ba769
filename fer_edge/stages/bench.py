"""``bench:`` → the call of :func:`fer_edge.evaluation.bench.run_bench` (``fer-edge bench`` and the pipeline)."""
from __future__ import annotations

from typing import Any, Optional, Sequence

from .call import StageCall, pick


def from_config(cfg: Any, *, compare: Optional[Sequence[str]] = None, warmup: Optional[int] = None,
                iters: Optional[int] = None, batches: Optional[Sequence[int]] = None,
                video_frames: Optional[int] = None) -> StageCall:
    b = cfg.bench
    return StageCall("bench", "fer_edge.evaluation.bench:run_bench", {
        "compare": list(pick(compare, b.compare)), "warmup": int(pick(warmup, b.warmup)),
        "iters": int(pick(iters, b.iters)), "batches": list(pick(batches, b.batches)),
        "video_frames": int(pick(video_frames, b.video_frames))})
