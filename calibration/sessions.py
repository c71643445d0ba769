"""ONNX Runtime sessions for the models calibration makes and judges (files or in-memory bytes, no manifest yet).

Accuracy and agreement come from the one metrics module, :mod:`fer_edge.runtime.metrics`; the batching from
:func:`fer_edge.runtime.batches.predict_in_batches`.
"""
from __future__ import annotations

import os
from typing import Union

import numpy as np

from fer_edge.runtime.backends.base import INPUT_NAME, OUTPUT_PROBS
from fer_edge.runtime.batches import predict_in_batches


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
    probs = predict_in_batches(lambda xb: sess.run([OUTPUT_PROBS], {INPUT_NAME: xb})[0], x, batch, fixed)
    return probs if len(x) else np.zeros((0, 0), np.float32)
