"""Accuracy, macro-F1 and argmax agreement, and ONNX Runtime inference over a batch of inputs.

Written out (no scikit-learn on a device): macro-F1 averages per-class F1 over the classes that
occur in the labels or the predictions, as scikit-learn's ``f1_score(average="macro")`` does.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional, Union

import numpy as np

from fer_edge.evaluation.metrics import confusion_matrix
from fer_edge.evaluation.metrics import macro_f1 as _macro_f1_cm
from fer_edge.runtime.backends.base import INPUT_NAME, OUTPUT_PROBS


@dataclass
class Metrics:
    n: int
    accuracy: float  # percent
    macro_f1: float  # percent
    agreement: Optional[float] = None  # percent of samples whose argmax equals the reference model's

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(y_true == y_pred)) * 100.0 if len(y_true) else float("nan")


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Macro-F1 in percent, the evaluation stage's definition (classes in the truth or the predictions)."""
    y_true, y_pred = np.asarray(y_true).astype(np.int64), np.asarray(y_pred).astype(np.int64)
    known = y_true >= 0  # -1: an image without a label counts for neither side
    y_true, y_pred = y_true[known], y_pred[known]
    if not len(y_true):
        return float("nan")
    k = int(max(y_true.max(), y_pred.max())) + 1
    return _macro_f1_cm(confusion_matrix(y_true, y_pred, k)) * 100.0


def evaluate(probs: np.ndarray, y_true: np.ndarray, reference: Optional[np.ndarray] = None) -> Metrics:
    pred = probs.argmax(1)
    agree = None if reference is None else float(np.mean(pred == reference.argmax(1))) * 100.0
    return Metrics(len(y_true), accuracy(y_true, pred), macro_f1(y_true, pred), agree)


def session(model: Union[str, os.PathLike, bytes], threads: int = 0):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")  # polite on a shared CPU
    if threads:
        opts.intra_op_num_threads = threads
    src = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(src, sess_options=opts, providers=["CPUExecutionProvider"])


def predict(sess, x: np.ndarray, batch: int = 64) -> np.ndarray:
    """probs for all of ``x``; a static-batch model gets padded batches (padding rows are dropped)."""
    shape0 = sess.get_inputs()[0].shape[0]
    fixed = shape0 if isinstance(shape0, int) and shape0 > 0 else None
    b = fixed or batch
    out = []
    for i in range(0, len(x), b):
        xb = x[i:i + b]
        n = len(xb)
        if fixed and n < fixed:
            xb = np.concatenate([xb, np.repeat(xb[-1:], fixed - n, axis=0)])
        out.append(sess.run([OUTPUT_PROBS], {INPUT_NAME: np.ascontiguousarray(xb)})[0][:n])
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)
