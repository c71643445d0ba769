"""Classification metrics in plain numpy: the one place accuracy, macro-F1 and agreement are defined.

Every stage scores with these functions -- the trainer's logs and label-free selection, the INT8 gate,
``fer-edge eval`` and the benchmarks -- so a number means the same thing wherever it is printed. They live
in the runtime because a device (no torch, no scikit-learn) scores its own results with them too.

Units: every function returns a *fraction* in [0, 1]; multiply by 100 (:func:`percent`) only where a number
is shown to a person.

Conventions (scikit-learn's ``zero_division=0``): a class that is never predicted has precision 0, a class
absent from the truth has recall 0, and F1 is 0 when precision + recall is 0. Macro-F1 averages over the
classes that occur in the truth *or* the predictions, so a 7-class model evaluated on a test set without
``fear`` is not rewarded or punished for a class nobody asked about, unless it wrongly predicts it. A truth
of ``-1`` (a face without a label) counts for neither accuracy nor F1.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

#: Intensity at or above which a labelled expression counts as "strong".
INTENSITY_THRESHOLD = 0.5
#: The label of a face whose expression is unknown.
UNLABELLED = -1


def _as_labels(y: Any, name: str) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D class indices, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integer class indices, got {arr.dtype}")
    return arr.astype(np.int64)


def _labelled(y_true: Any, y_pred: Any) -> tuple:
    """``(truth, prediction)`` as int arrays of equal length, faces without a label dropped."""
    t, p = _as_labels(y_true, "y_true"), _as_labels(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length ({t.size} vs {p.size})")
    keep = t != UNLABELLED
    return t[keep], p[keep]


def percent(fraction: Optional[float]) -> Optional[float]:
    """``0.731`` → ``73.1``: for what a person reads (tables, log lines); ``None`` stays ``None``."""
    return None if fraction is None else 100.0 * float(fraction)


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> np.ndarray:
    """``C[i, j]`` = number of samples of true class ``i`` predicted as ``j`` (rows: truth)."""
    t, p = _as_labels(y_true, "y_true"), _as_labels(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length ({t.size} vs {p.size})")
    if t.size and (t.min() < 0 or p.min() < 0 or t.max() >= num_classes or p.max() >= num_classes):
        raise ValueError(f"class indices must lie in 0..{num_classes - 1}")
    return np.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes).astype(np.int64)


def accuracy(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    """Fraction of labelled faces whose prediction is their label (NaN when there are none)."""
    t, p = _labelled(y_true, y_pred)
    return float(np.mean(t == p)) if t.size else float("nan")


@dataclass
class ClassScores:
    """Per-class precision, recall, F1 (fractions) and support (number of true samples)."""

    precision: float
    recall: float
    f1: float
    support: int

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    out = np.zeros_like(num)
    np.divide(num, den, out=out, where=den > 0)
    return out


def per_class_scores(cm: np.ndarray) -> List[ClassScores]:
    """Precision/recall/F1/support of each class from a confusion matrix (rows: truth)."""
    cm = np.asarray(cm, dtype=np.int64)
    tp = np.diag(cm)
    precision = _safe_div(tp, cm.sum(axis=0))
    recall = _safe_div(tp, cm.sum(axis=1))
    f1 = _safe_div(2 * precision * recall, precision + recall)
    return [ClassScores(float(precision[k]), float(recall[k]), float(f1[k]), int(cm[k].sum()))
            for k in range(cm.shape[0])]


def macro_f1_of(cm: np.ndarray) -> float:
    """Macro-F1 of a confusion matrix: mean F1 over the classes present in the truth or the predictions."""
    cm = np.asarray(cm, dtype=np.int64)
    present = (cm.sum(axis=0) + cm.sum(axis=1)) > 0
    if not present.any():
        return float("nan")
    f1 = np.array([s.f1 for s in per_class_scores(cm)])
    return float(f1[present].mean())


def macro_f1(y_true: Sequence[int], y_pred: Sequence[int], num_classes: Optional[int] = None) -> float:
    """Macro-F1 of labelled faces' predictions (NaN when there are none).

    ``num_classes`` only sizes the confusion matrix; classes that occur nowhere do not enter the mean, so
    the value is the same for any ``num_classes`` large enough to hold every index.
    """
    t, p = _labelled(y_true, y_pred)
    if not t.size:
        return float("nan")
    k = int(num_classes) if num_classes is not None else int(max(t.max(), p.max())) + 1
    return macro_f1_of(confusion_matrix(t, p, k))


def agreement(pred_a: Sequence[int], pred_b: Sequence[int]) -> float:
    """Fraction of samples on which two models' argmax predictions agree (e.g. FP32 vs INT8)."""
    a, b = _as_labels(pred_a, "pred_a"), _as_labels(pred_b, "pred_b")
    if a.shape != b.shape:
        raise ValueError(f"predictions differ in length ({a.size} vs {b.size})")
    return float(np.mean(a == b)) if a.size else float("nan")


@dataclass
class Scores:
    """Accuracy and macro-F1 of one model's probabilities on labelled faces, and optionally its argmax
    agreement with a reference model's probabilities on the same faces. Fractions."""

    n: int
    accuracy: float
    macro_f1: float
    agreement: Optional[float] = None

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def score(probs: np.ndarray, y_true: Sequence[int], reference: Optional[np.ndarray] = None) -> Scores:
    """:class:`Scores` of ``probs`` (N×K) against ``y_true``; ``reference`` (N×K) adds the agreement."""
    probs = np.asarray(probs)
    pred = probs.argmax(1)
    agree = None if reference is None else agreement(pred, np.asarray(reference).argmax(1))
    return Scores(len(y_true), accuracy(y_true, pred), macro_f1(y_true, pred, probs.shape[1]), agree)


def intensity_breakdown(y_true: Sequence[int], y_pred: Sequence[int], intensity: Sequence[float],
                        labels: Sequence[str], threshold: float = INTENSITY_THRESHOLD,
                        exclude: Sequence[str] = ("neutral",)) -> Optional[Dict[str, Any]]:
    """Accuracy on weak (< threshold) vs strong (>= threshold) expressions, where intensity is known.

    Neutral faces are excluded by default: their intensity is zero by definition, so counting them
    as "weak" would hide how often a faint smile or frown is missed. ``as_neutral`` is the share of
    the group predicted neutral — the usual failure of weak expressions on a driver camera.
    Returns ``None`` when no sample has a known intensity.
    """
    t, p = _as_labels(y_true, "y_true"), _as_labels(y_pred, "y_pred")
    inten = np.asarray(intensity, dtype=np.float64)
    if inten.shape != t.shape:
        raise ValueError("intensity must have one value per sample")
    skip = [labels.index(n) for n in exclude if n in labels]
    known = np.isfinite(inten) & ~np.isin(t, skip)
    if not known.any():
        return None
    neutral = labels.index("neutral") if "neutral" in labels else -1
    out: Dict[str, Any] = {"threshold": float(threshold), "excluded": [n for n in exclude if n in labels]}
    for name, mask in (("weak", known & (inten < threshold)), ("strong", known & (inten >= threshold))):
        n = int(mask.sum())
        cm = confusion_matrix(t[mask], p[mask], len(labels))
        out[name] = {
            "n": n,
            "accuracy": accuracy(t[mask], p[mask]),
            "macro_f1": macro_f1_of(cm) if n else float("nan"),
            "as_neutral": float(np.mean(p[mask] == neutral)) if n and neutral >= 0 else float("nan"),
        }
    return out


def classification_report(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str],
                          intensity: Optional[Sequence[float]] = None,
                          threshold: float = INTENSITY_THRESHOLD) -> Dict[str, Any]:
    """Everything ``metrics.json`` holds about predictions: accuracy, macro-F1, per class, confusion."""
    labels = list(labels)
    cm = confusion_matrix(y_true, y_pred, len(labels))
    report: Dict[str, Any] = {
        "n": int(cm.sum()),
        "accuracy": accuracy(y_true, y_pred),
        "macro_f1": macro_f1_of(cm),
        "per_class": {lab: s.to_dict() for lab, s in zip(labels, per_class_scores(cm))},
        "confusion": cm.tolist(),
        "labels": labels,
    }
    if intensity is not None:
        report["intensity"] = intensity_breakdown(y_true, y_pred, intensity, labels, threshold)
    return report


#: Two-sided 95 % Student-t quantiles by degrees of freedom (a normal 1.96 beyond the table).
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
        12: 2.179, 15: 2.131, 20: 2.086, 25: 2.060, 30: 2.042}


def t975(df: int) -> float:
    """The quantile for ``df``, rounded down to the nearest tabulated df (a slightly wider interval)."""
    return T975[max(k for k in T975 if k <= df)] if df <= 30 else 1.96


def paired_interval(a: Sequence[float], b: Sequence[float]) -> Optional[Dict[str, float]]:
    """Mean of the pairwise differences ``a - b`` with its 95 % t-interval, the pair count and how many pairs
    ``a`` wins; None below two pairs. Runs of one seed share data order and augmentation draws, so per-seed
    differences compare methods more fairly than two independent means; an interval holding 0 shows no gain."""
    d = [x - y for x, y in zip(a, b)]
    if len(d) < 2:
        return None
    m = statistics.mean(d)
    h = t975(len(d) - 1) * statistics.stdev(d) / math.sqrt(len(d))
    return {"mean": m, "low": m - h, "high": m + h, "n": len(d), "wins": sum(x > 0 for x in d)}
