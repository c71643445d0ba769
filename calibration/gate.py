"""Accuracy gate with automatic float fallback: INT8 must not lose more than ``max_drop`` points.

INT8 usually costs a fraction of a point; when it costs more, a few layers are to blame (an
activation with a huge outlier range, a depthwise conv with tiny weights). The sensitivity pass
quantizes ONE candidate layer at a time (everything else float) and scores it by how far its
probabilities move from FP32 (mean total-variation distance ½·Σ|p_int8 − p_fp32| on the evaluation
images — smoother than accuracy on a few hundred images). The gate then keeps the worst layers in
float one by one, re-quantizing with the cached ranges and re-evaluating on the whole labelled set,
until the drop is within the gate or ``max_fallback`` layers are in float. Every kept layer is
reported; a model still over the gate is reported as failed and never written as if it were fine.
"""
from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence, Tuple, Union

import numpy as np

from fer_edge.runtime.bars import bars_off

from .metrics import Metrics, evaluate, predict, session

log = logging.getLogger(__name__)

SENSITIVITY_MAX_IMAGES = 256

#: quantize_fn(out_path, nodes_to_exclude=..., nodes_to_quantize=...) writes a Q/DQ model.
QuantizeFn = Callable[..., Path]


@dataclass
class GateStep:
    excluded: List[str]
    metrics: Metrics
    drop: float


@dataclass
class GateResult:
    passed: bool
    max_drop: float
    fp32: Metrics
    int8: Metrics
    drop: float
    excluded: List[str] = field(default_factory=list)
    steps: List[GateStep] = field(default_factory=list)
    sensitivity: List[Dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def tv_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Mean total-variation distance between two batches of probability vectors."""
    return float(np.mean(0.5 * np.abs(p - q).sum(axis=1)))


def accuracy_drop(fp32: Metrics, int8: Metrics) -> float:
    """Points of accuracy lost by INT8 (negative when INT8 happens to score higher)."""
    return fp32.accuracy - int8.accuracy


def sensitivity(quantize_fn: QuantizeFn, candidates: Sequence[str], x: np.ndarray, fp32_probs: np.ndarray,
                workdir: Union[str, os.PathLike]) -> List[Tuple[str, float]]:
    """(node, score) worst first: score = TV distance to FP32 with only that node quantized."""
    from tqdm import tqdm

    scores = []
    tmp = Path(workdir) / "sensitivity.onnx"
    for node in tqdm(candidates, desc="sensitivity", leave=False, disable=len(candidates) < 8 or bars_off()):
        quantize_fn(tmp, nodes_to_quantize=[node])
        scores.append((node, tv_distance(predict(session(tmp), x), fp32_probs)))
    scores.sort(key=lambda s: -s[1])
    return scores


def run_gate(quantize_fn: QuantizeFn, int8_path: Union[str, os.PathLike], candidates: Sequence[str],
             x: np.ndarray, y: np.ndarray, fp32_probs: np.ndarray, max_drop: float, max_fallback: int,
             workdir: Union[str, os.PathLike]) -> GateResult:
    """Evaluate ``int8_path``; when over the gate, keep the most sensitive layers in float until within it.

    On return ``int8_path`` holds the last model tried (the passing one when ``passed``).
    """
    fp32 = evaluate(fp32_probs, y)
    int8 = evaluate(predict(session(int8_path), x), y, reference=fp32_probs)
    drop = accuracy_drop(fp32, int8)
    result = GateResult(passed=drop <= max_drop, max_drop=max_drop, fp32=fp32, int8=int8, drop=drop,
                        steps=[GateStep([], int8, drop)])
    log.info("gate: FP32 %.2f %% vs INT8 %.2f %% (drop %.2f pt, limit %.2f)", fp32.accuracy, int8.accuracy, drop,
             max_drop)
    if result.passed or max_fallback <= 0 or not candidates:
        return result
    n_sens = min(len(x), SENSITIVITY_MAX_IMAGES)
    log.info("gate: drop over the limit; per-layer sensitivity on %d images over %d layers", n_sens, len(candidates))
    ranked = sensitivity(quantize_fn, candidates, x[:n_sens], fp32_probs[:n_sens], workdir)
    result.sensitivity = [{"node": n, "score": s} for n, s in ranked]
    excluded: List[str] = []
    for node, score in ranked[:max_fallback]:
        excluded.append(node)
        quantize_fn(int8_path, nodes_to_exclude=list(excluded))
        int8 = evaluate(predict(session(int8_path), x), y, reference=fp32_probs)
        drop = accuracy_drop(fp32, int8)
        result.steps.append(GateStep(list(excluded), int8, drop))
        log.info("gate: keeping %s in float (sensitivity %.4f) → INT8 %.2f %%, drop %.2f pt", node, score,
                 int8.accuracy, drop)
        if drop <= max_drop:
            break
    result.int8, result.drop, result.excluded = int8, drop, excluded
    result.passed = drop <= max_drop
    return result
