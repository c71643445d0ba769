"""``runtime:`` → the call of :meth:`fer_edge.runtime.pipeline.Pipeline.from_model` (``fer-edge run``, pipeline).

The whole validated ``runtime:`` section travels as ``config``; the verb's per-run options (detector,
frame limits) are inputs of the call. ``runtime.video_fps`` is the annotated video's frame rate.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Optional

from .call import StageCall, pick


def from_config(cfg: Any, *, backend: Optional[str] = None) -> StageCall:
    r = dataclasses.replace(cfg.runtime).validate()
    return StageCall("run", "fer_edge.runtime.pipeline:Pipeline.from_model",
                     {"backend": pick(backend, r.backend), "config": r})
