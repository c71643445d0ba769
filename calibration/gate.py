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
float one by one, re-quantizing with the cached ranges, until the flavour passes or ``max_fallback``
layers are in float. Each flavour gets its own float layers: TensorRT's symmetric int8 and ONNX
Runtime's uint8 activations err on different layers, and a layer kept in float only because the other
flavour needed it costs the CPU model its speed (each one a DQ→float→Q round trip; the main job's
model once ran 11 float layers on the CPU, 0.8× FP32, where it needed none). A flavour that passes as
it is keeps every layer quantized. Every kept layer is reported; a model still failing is reported as
failed and never written as if it were fine.
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
    #: the layers each flavour keeps in float (flavour → node names; empty where it passed as it was)
    excluded: Dict[str, List[str]] = field(default_factory=dict)
    steps: List[GateStep] = field(default_factory=list)
    #: per searched flavour, its layers worst first
    sensitivity: Dict[str, List[Dict[str, Any]]] = field(default_factory=dict)

    @property
    def agreement(self) -> float:
        """The lowest top-1 agreement over the flavours (what the threshold is applied to)."""
        return min(c.gate.agreement for c in self.checks.values())

    @property
    def drop(self) -> Optional[float]:
        """The largest validation accuracy drop over the flavours (None without a labelled set)."""
        drops = [c.drop for c in self.checks.values() if c.drop is not None]
        return max(drops) if drops else None

    def excluded_for(self, flavour: str) -> List[str]:
        return list(self.excluded.get(flavour, []))

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


def sensitivity(quantize_fn: QuantizeFn, candidates: Sequence[str], flavour: str, x: np.ndarray,
                fp32_probs: np.ndarray, workdir: Union[str, os.PathLike]) -> List[Tuple[str, float]]:
    """(node, score) worst first: score = the TV distance to FP32 of ``flavour`` with only that node quantized."""
    from tqdm import tqdm

    scores = []
    tmp = Path(workdir) / f"sensitivity-{flavour}.onnx"
    for node in tqdm(candidates, desc=f"sensitivity {flavour}", leave=False,
                     disable=len(candidates) < 8 or bars_off()):
        quantize_fn(tmp, flavour=flavour, nodes_to_quantize=[node])
        scores.append((node, tv_distance(predict(session(tmp), x), fp32_probs)))
    scores.sort(key=lambda s: -s[1])
    return scores


def _step(quantize_fn: QuantizeFn, flavour: str, path: Path, excluded: List[str], data: GateData,
          min_agreement: float, max_drop: Optional[float], fp32_val: Optional[Scores]) -> GateStep:
    quantize_fn(path, flavour=flavour, nodes_to_exclude=list(excluded))
    c = check(path, flavour, data, min_agreement, max_drop, fp32_val)
    return GateStep(list(excluded), {flavour: c}, c.passed)


def _log_step(step: GateStep, min_agreement: float) -> None:
    for c in step.checks.values():
        extra = f", validation drop {c.drop:.2f} pt" if c.drop is not None else ""
        log.info("gate %s: top-1 agreement with FP32 %.2f %% on %d faces (needs %.2f), mean KL %.5f, "
                 "max prob shift %.3f%s — %s", c.flavour, c.gate.agreement, c.gate.n, min_agreement,
                 c.gate.mean_kl, c.gate.max_prob_shift, extra, "ok" if c.passed else "FAILS")


def run_gate(quantize_fn: QuantizeFn, paths: Mapping[str, Path], candidates: Sequence[str], data: GateData,
             min_agreement: float, max_drop: Optional[float], max_fallback: int,
             workdir: Union[str, os.PathLike]) -> GateResult:
    """Quantize every flavour in ``paths`` and judge it; a failing flavour keeps its most sensitive layers in
    float until it passes (each flavour its own search). On return each path holds that flavour's kept model."""
    fp32_val = score_probs(data.val_fp32_probs, data.val_y) if data.has_validation else None
    result = GateResult(passed=False, min_agreement=min_agreement, max_drop=max_drop, checks={},
                        fp32_validation=fp32_val)
    for flavour, path in paths.items():
        step = _search(quantize_fn, flavour, Path(path), candidates, data, min_agreement, max_drop, max_fallback,
                       fp32_val, workdir, result)
        result.checks[flavour] = step.checks[flavour]
        result.excluded[flavour] = list(step.excluded)
    result.passed = all(c.passed for c in result.checks.values())
    return result


def _search(quantize_fn: QuantizeFn, flavour: str, path: Path, candidates: Sequence[str], data: GateData,
            min_agreement: float, max_drop: Optional[float], max_fallback: int, fp32_val: Optional[Scores],
            workdir: Union[str, os.PathLike], result: GateResult) -> GateStep:
    """One flavour: as it is, else with the worst layers in float one by one (then pruned); the kept step."""
    def attempt(excluded: List[str]) -> GateStep:
        step = _step(quantize_fn, flavour, path, excluded, data, min_agreement, max_drop, fp32_val)
        result.steps.append(step)
        _log_step(step, min_agreement)
        return step

    step = attempt([])
    if step.passed or max_fallback <= 0 or not candidates:
        return step
    n_sens = min(len(data.x), SENSITIVITY_MAX_IMAGES)
    log.info("gate: %s below the gate; per-layer sensitivity on %d faces over %d layers", flavour, n_sens,
             len(candidates))
    ranked = sensitivity(quantize_fn, candidates, flavour, data.x[:n_sens], data.fp32_probs[:n_sens], workdir)
    result.sensitivity[flavour] = [{"node": n, "score": s} for n, s in ranked]
    excluded: List[str] = []
    for node, score in ranked[:max_fallback]:
        excluded.append(node)
        log.info("gate %s: keeping %s in float (sensitivity %.4f)", flavour, node, score)
        step = attempt(excluded)
        if step.passed:
            break
    if step.passed and len(excluded) > 1:
        step = _prune(attempt, step)
    if step is not result.steps[-1]:  # the file holds the last model tried: write the kept one again
        _step(quantize_fn, flavour, path, step.excluded, data, min_agreement, max_drop, fp32_val)
    return step


def _prune(attempt: Callable[[List[str]], GateStep], step: GateStep) -> GateStep:
    """Quantize again each float layer the passing set does not need (greedy order adds some that did not help:
    sensitivity is measured one layer at a time). Every float layer costs speed, on the CPU most of all."""
    for node in list(step.excluded[:-1]):
        trial = [n for n in step.excluded if n != node]
        tried = attempt(trial)
        if tried.passed:
            log.info("gate: %s quantized again — the gate still passes without it in float", node)
            step = tried
    return step
