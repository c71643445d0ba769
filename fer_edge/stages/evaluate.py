"""``eval:`` → the call of :func:`fer_edge.evaluation.evaluate.evaluate` (``fer-edge eval`` and the pipeline)."""
from __future__ import annotations

from typing import Any, Optional

from .call import StageCall, pick


def from_config(cfg: Any, *, batch_size: Optional[int] = None) -> StageCall:
    return StageCall("eval", "fer_edge.evaluation.evaluate:evaluate",
                     {"batch_size": int(pick(batch_size, cfg.eval.batch_size))})
