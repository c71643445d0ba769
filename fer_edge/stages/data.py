"""``data:`` and ``crop:`` → the datasets of every role (``fer-edge train`` and the pipeline's synth/train stages),
and ``data.synth`` → the call of :func:`fer_edge.data.synth.generate` (``fer-edge data synth``, the pipeline's video).
"""
from __future__ import annotations

from typing import Any, Optional

from .call import StageCall, pick


def splits_call(cfg: Any) -> StageCall:
    """``load_splits(data=…, crop=…)``: the dataset of each role named under ``data:`` (None when unset)."""
    return StageCall("synth", "fer_edge.data.sources:load_splits", {"data": cfg.data, "crop": cfg.crop})


def synth_call(cfg: Any, *, identities: Optional[int] = None, size: Optional[int] = None,
               seed: Optional[int] = None, workers: Optional[int] = None) -> StageCall:
    """``generate(domain, kind, out, count, …)`` with ``data.synth``'s settings; a flag that is not ``None`` wins."""
    s = cfg.data.synth
    return StageCall("synth", "fer_edge.data.synth:generate", {
        "identities": int(pick(identities, s.identities)), "size": int(pick(size, s.size)),
        "seed": int(pick(seed, s.seed)), "workers": int(pick(workers, s.workers))})
