"""Classification metrics in plain numpy: works on a device that has no torch and no scikit-learn.

Conventions (the same as scikit-learn's ``zero_division=0``): a class that is never predicted has
precision 0, a class absent from the truth has recall 0, and F1 is 0 when precision + recall is 0.
Macro-F1 averages over the classes that occur in the truth *or* the predictions, so a 7-class model
evaluated on a test set without ``fear`` is not rewarded or punished for a class nobody asked about,
unless it wrongly predicts it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

#: Intensity at or above which a labelled expression counts as "strong".
INTENSITY_THRESHOLD = 0.5


def _as_labels(y: Any, name: str) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D class indices, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integer class indices, got {arr.dtype}")
    return arr.astype(np.int64)


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
    t, p = _as_labels(y_true, "y_true"), _as_labels(y_pred, "y_pred")
    return float(np.mean(t == p)) if t.size else float("nan")


@dataclass
class ClassScores:
    """Per-class precision, recall, F1 and support (number of true samples)."""

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


def macro_f1(cm: np.ndarray) -> float:
    """Mean F1 over classes present in the truth or the predictions (see the module docstring)."""
    cm = np.asarray(cm, dtype=np.int64)
    present = (cm.sum(axis=0) + cm.sum(axis=1)) > 0
    if not present.any():
        return float("nan")
    f1 = np.array([s.f1 for s in per_class_scores(cm)])
    return float(f1[present].mean())


def agreement(pred_a: Sequence[int], pred_b: Sequence[int]) -> float:
    """Fraction of samples on which two models' argmax predictions agree (e.g. FP32 vs INT8)."""
    a, b = _as_labels(pred_a, "pred_a"), _as_labels(pred_b, "pred_b")
    if a.shape != b.shape:
        raise ValueError(f"predictions differ in length ({a.size} vs {b.size})")
    return float(np.mean(a == b)) if a.size else float("nan")


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
            "macro_f1": macro_f1(cm) if n else float("nan"),
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
        "macro_f1": macro_f1(cm),
        "per_class": {lab: s.to_dict() for lab, s in zip(labels, per_class_scores(cm))},
        "confusion": cm.tolist(),
        "labels": labels,
    }
    if intensity is not None:
        report["intensity"] = intensity_breakdown(y_true, y_pred, intensity, labels, threshold)
    return report
