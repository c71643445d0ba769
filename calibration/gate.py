"""The INT8 gate: INT8 must behave like the FP32 model it came from — judged without target labels.

The default gate is label-free: on held-back unlabelled target faces (never the calibration images)
each INT8 flavour (TensorRT's Q/DQ model and the CPU one) is compared with FP32 by top-1 agreement,
mean KL(FP32 ‖ INT8) and the largest probability shift. It passes when every flavour agrees with FP32
on at least ``min_agreement`` % of the faces. A user rarely has labelled target faces; agreement with
the FP32 model that was validated is what "INT8 did not change the model" means.

With a labelled *validation* set (never the split a report quotes), FP32 and INT8 accuracy on it are
reported too, and ``max_drop`` (when set) must hold as well.

When a flavour fails, the sensitivity pass quantizes ONE candidate layer at a time (everything else
float) and scores it by the mean total-variation distance of its probabilities to FP32 on the gate
faces (label-free, smoother than agreement on a few hundred images). The worst layers are then kept in
float — in both flavours, so one decision serves both artefacts — one by one, re-quantizing with the
cached ranges, until every flavour passes or ``max_fallback`` layers are in float. Every kept layer is
reported; a model still failing is reported as failed and never written as if it were fine.
"""
from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from fer_edge.runtime.bars import bars_off
from fer_edge.runtime.metrics import Scores, percent
from fer_edge.runtime.metrics import agreement as top1_agreement
from fer_edge.runtime.metrics import score as score_probs

from .sessions import predict, session

log = logging.getLogger(__name__)

SENSITIVITY_MAX_IMAGES = 256

#: quantize_fn(out_path, flavour=..., nodes_to_exclude=..., nodes_to_quantize=...) writes a Q/DQ model.
QuantizeFn = Callable[..., Path]


@dataclass
class Agreement:
    """How far INT8's probabilities are from FP32's on the same images (no labels involved)."""

    n: int
    agreement: float  # percent of images with the same top-1 class (the unit of calibrate.min_agreement)
    mean_kl: float  # mean KL(p_fp32 ‖ p_int8), nats
    max_prob_shift: float  # largest |p_int8 − p_fp32| over all images and classes
    mean_tv: float  # mean total-variation distance ½·Σ|p_int8 − p_fp32|


def agreement(fp32: np.ndarray, int8: np.ndarray) -> Agreement:
    eps = 1e-7
    p, q = np.clip(fp32, eps, 1.0), np.clip(int8, eps, 1.0)
    return Agreement(n=len(fp32), agreement=percent(top1_agreement(fp32.argmax(1), int8.argmax(1))),
                     mean_kl=float(np.mean(np.sum(p * (np.log(p) - np.log(q)), axis=1))),
                     max_prob_shift=float(np.max(np.abs(fp32 - int8))) if len(fp32) else 0.0,
                     mean_tv=tv_distance(int8, fp32))


@dataclass
class FlavourCheck:
    """One INT8 flavour at one gate step."""

    flavour: str
    gate: Agreement
    passed: bool
    validation: Optional[Scores] = None  # with a labelled validation set: INT8 accuracy there (fractions)
    drop: Optional[float] = None  # FP32 − INT8 accuracy on the validation set, points (calibrate.max_drop's unit)


@dataclass
class GateStep:
    excluded: List[str]
    checks: Dict[str, FlavourCheck]
    passed: bool


@dataclass
class GateData:
    """The images the gate judges on: unlabelled gate faces, optionally a labelled validation set."""

    x: np.ndarray
    fp32_probs: np.ndarray
    val_x: Optional[np.ndarray] = None
    val_y: Optional[np.ndarray] = None
    val_fp32_probs: Optional[np.ndarray] = None

    @property
    def has_validation(self) -> bool:
        return self.val_x is not None and self.val_y is not None and len(self.val_x) > 0


@dataclass
class GateResult:
    passed: bool
    min_agreement: float
    max_drop: Optional[float]
    checks: Dict[str, FlavourCheck]
    fp32_validation: Optional[Scores] = None
    excluded: List[str] = field(default_factory=list)
    steps: List[GateStep] = field(default_factory=list)
    sensitivity: List[Dict[str, Any]] = field(default_factory=list)

    @property
    def agreement(self) -> float:
        """The lowest top-1 agreement over the flavours (what the threshold is applied to)."""
        return min(c.gate.agreement for c in self.checks.values())

    @property
    def drop(self) -> Optional[float]:
        """The largest validation accuracy drop over the flavours (None without a labelled set)."""
        drops = [c.drop for c in self.checks.values() if c.drop is not None]
        return max(drops) if drops else None

    def to_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        d["agreement"], d["drop"] = self.agreement, self.drop
        return d


def tv_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Mean total-variation distance between two batches of probability vectors."""
    return float(np.mean(0.5 * np.abs(p - q).sum(axis=1)))


def accuracy_drop(fp32: Scores, int8: Scores) -> float:
    """Points of accuracy lost by INT8 (negative when INT8 happens to score higher)."""
    return percent(fp32.accuracy) - percent(int8.accuracy)


def check(path: Union[str, os.PathLike], flavour: str, data: GateData, min_agreement: float,
          max_drop: Optional[float], fp32_val: Optional[Scores]) -> FlavourCheck:
    """Judge one INT8 model: agreement on the gate faces, and the validation drop when labels were given."""
    sess = session(path)
    agree = agreement(data.fp32_probs, predict(sess, data.x))
    res = FlavourCheck(flavour, agree, passed=agree.agreement >= min_agreement)
    if data.has_validation and fp32_val is not None:
        res.validation = score_probs(predict(sess, data.val_x), data.val_y, reference=data.val_fp32_probs)
        res.drop = accuracy_drop(fp32_val, res.validation)
        if max_drop is not None and res.drop > max_drop:
            res.passed = False
    return res


def sensitivity(quantize_fn: QuantizeFn, candidates: Sequence[str], flavours: Sequence[str], x: np.ndarray,
                fp32_probs: np.ndarray, workdir: Union[str, os.PathLike]) -> List[Tuple[str, float]]:
    """(node, score) worst first: score = the largest TV distance to FP32 over ``flavours`` with only that
    node quantized."""
    from tqdm import tqdm

    scores = []
    tmp = Path(workdir) / "sensitivity.onnx"
    for node in tqdm(candidates, desc="sensitivity", leave=False, disable=len(candidates) < 8 or bars_off()):
        worst = 0.0
        for flavour in flavours:
            quantize_fn(tmp, flavour=flavour, nodes_to_quantize=[node])
            worst = max(worst, tv_distance(predict(session(tmp), x), fp32_probs))
        scores.append((node, worst))
    scores.sort(key=lambda s: -s[1])
    return scores


def _step(quantize_fn: QuantizeFn, paths: Mapping[str, Path], excluded: List[str], data: GateData,
          min_agreement: float, max_drop: Optional[float], fp32_val: Optional[Scores]) -> GateStep:
    checks = {}
    for flavour, path in paths.items():
        quantize_fn(path, flavour=flavour, nodes_to_exclude=list(excluded))
        checks[flavour] = check(path, flavour, data, min_agreement, max_drop, fp32_val)
    return GateStep(list(excluded), checks, all(c.passed for c in checks.values()))


def _log_step(step: GateStep, min_agreement: float) -> None:
    for c in step.checks.values():
        extra = f", validation drop {c.drop:.2f} pt" if c.drop is not None else ""
        log.info("gate %s: top-1 agreement with FP32 %.2f %% on %d faces (needs %.2f), mean KL %.5f, "
                 "max prob shift %.3f%s — %s", c.flavour, c.gate.agreement, c.gate.n, min_agreement,
                 c.gate.mean_kl, c.gate.max_prob_shift, extra, "ok" if c.passed else "FAILS")


def run_gate(quantize_fn: QuantizeFn, paths: Mapping[str, Path], candidates: Sequence[str], data: GateData,
             min_agreement: float, max_drop: Optional[float], max_fallback: int,
             workdir: Union[str, os.PathLike]) -> GateResult:
    """Quantize every flavour in ``paths``, judge it; when one fails, keep the most sensitive layers in float
    (in every flavour) until all pass. On return each path holds the last model tried."""
    fp32_val = score_probs(data.val_fp32_probs, data.val_y) if data.has_validation else None
    step = _step(quantize_fn, paths, [], data, min_agreement, max_drop, fp32_val)
    _log_step(step, min_agreement)
    result = GateResult(passed=step.passed, min_agreement=min_agreement, max_drop=max_drop, checks=step.checks,
                        fp32_validation=fp32_val, steps=[step])
    if step.passed or max_fallback <= 0 or not candidates:
        return result
    failing = [f for f, c in step.checks.items() if not c.passed]
    n_sens = min(len(data.x), SENSITIVITY_MAX_IMAGES)
    log.info("gate: %s below the gate; per-layer sensitivity on %d faces over %d layers", ", ".join(failing),
             n_sens, len(candidates))
    ranked = sensitivity(quantize_fn, candidates, failing, data.x[:n_sens], data.fp32_probs[:n_sens], workdir)
    result.sensitivity = [{"node": n, "score": s} for n, s in ranked]
    excluded: List[str] = []
    for node, score in ranked[:max_fallback]:
        excluded.append(node)
        step = _step(quantize_fn, paths, excluded, data, min_agreement, max_drop, fp32_val)
        result.steps.append(step)
        log.info("gate: keeping %s in float (sensitivity %.4f)", node, score)
        _log_step(step, min_agreement)
        if step.passed:
            break
    if step.passed and len(excluded) > 1:
        step, excluded = _prune(quantize_fn, paths, step, excluded, data, min_agreement, max_drop, fp32_val, result)
    result.checks, result.excluded, result.passed = step.checks, excluded, step.passed
    if step is not result.steps[-1]:  # the files hold the last model tried: write the kept one again
        _step(quantize_fn, paths, excluded, data, min_agreement, max_drop, fp32_val)
    return result


def _prune(quantize_fn: QuantizeFn, paths: Mapping[str, Path], step: GateStep, excluded: List[str], data: GateData,
           min_agreement: float, max_drop: Optional[float], fp32_val: Optional[Scores],
           result: GateResult) -> Tuple[GateStep, List[str]]:
    """Quantize again each float layer the passing set does not need (greedy order adds some that did not help:
    sensitivity is measured one layer at a time). Every float layer costs speed, on the CPU most of all."""
    for node in list(excluded[:-1]):
        trial = [n for n in excluded if n != node]
        attempt = _step(quantize_fn, paths, trial, data, min_agreement, max_drop, fp32_val)
        result.steps.append(attempt)
        if attempt.passed:
            log.info("gate: %s quantized again — the gate still passes without it in float", node)
            step, excluded = attempt, trial
    return step, excluded
