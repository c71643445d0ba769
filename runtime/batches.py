"""One batched-inference loop for every numpy-side caller (evaluation, the INT8 gate, benchmarks).

``predict_in_batches(infer, x, batch)`` runs ``infer`` over ``x`` in slices and stacks the results; a
model with a fixed batch size gets its last slice padded with copies of the last row (dropped again), so
a static-batch ONNX scores every face. Plain numpy: it runs on a device without torch.
"""
from __future__ import annotations

from typing import Callable, Iterable, Optional

import numpy as np


def predict_in_batches(infer: Callable[[np.ndarray], np.ndarray], x: np.ndarray, batch: int = 64,
                       fixed_batch: Optional[int] = None, num_outputs: int = 0,
                       wrap: Optional[Callable[[Iterable[int]], Iterable[int]]] = None) -> np.ndarray:
    """``infer`` over ``x`` in slices of ``fixed_batch or batch`` rows → ``N x K`` float32.

    ``num_outputs`` is ``K`` for an empty ``x``; ``wrap`` may decorate the slice starts (a progress bar).
    """
    if len(x) == 0:
        return np.zeros((0, num_outputs), np.float32)
    step = int(fixed_batch or max(1, batch))
    starts: Iterable[int] = range(0, len(x), step)
    if wrap is not None:
        starts = wrap(starts)
    out = []
    for s in starts:
        xb = x[s:s + step]
        n = len(xb)
        if fixed_batch and n < fixed_batch:
            xb = np.concatenate([xb, np.repeat(xb[-1:], fixed_batch - n, axis=0)])
        out.append(np.asarray(infer(np.ascontiguousarray(xb)), dtype=np.float32)[:n])
    return np.concatenate(out)
