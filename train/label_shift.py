"""Label-shift diagnostics: estimate the target camera's class balance from unlabelled faces.

A driver-monitoring camera sees mostly neutral faces while web/studio training sets are balanced. If that
*prior shift* were the gap, a classifier could be fixed after training by adding ``log(π_t / π_s)`` to its
logits (the Bayes-optimal correction when only the class balance changes). Two label-free estimators of π_t:

* :func:`em_prior` — Saerens, Latinne & Decaestecker (2002): EM on the classifier's target posteriors.
  Consistent when the posteriors are calibrated, which a network under covariate shift is not.
* :func:`bbse_prior` — black-box shift estimation (Lipton, Wang & Smola, 2018): solve ``C w = μ`` with the
  source confusion matrix ``C`` (held-out labelled source) and the target's predicted-class frequencies ``μ``.
  Consistent under pure label shift, for any classifier whose ``C`` is invertible.

Both assume ``p(x | y)`` is the same on both cameras; a near-infrared camera changes it too. That is why
``benchmarks/posthoc_target.py`` scores them next to the correction with the *true* target prior (a bound
that uses target labels): when even the true prior gains little, the gap is in the features, not the balance.
Plain numpy, so it runs on a device without torch.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from fer_edge.runtime.metrics import confusion_matrix


def _prior(p: Sequence[float], k: int, name: str) -> np.ndarray:
    arr = np.asarray(p, dtype=np.float64).reshape(-1)
    if arr.shape != (k,) or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"{name} must be {k} positive finite class frequencies, got {arr.tolist()}")
    return arr / arr.sum()


def _probs(probs: np.ndarray) -> np.ndarray:
    arr = np.asarray(probs, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] == 0 or not np.all(np.isfinite(arr)):
        raise ValueError(f"probs must be a non-empty finite N×K array, got shape {arr.shape}")
    return arr


def em_prior(probs: np.ndarray, source_prior: Sequence[float], iters: int = 200, tol: float = 1e-7) -> np.ndarray:
    """Target class prior by EM on target posteriors ``probs`` (N×K, computed under ``source_prior``).

    E-step re-weights each posterior by ``π_t / π_s`` and renormalises; M-step sets ``π_t`` to their mean.
    """
    p = _probs(probs)
    pi_s = _prior(source_prior, p.shape[1], "source_prior")
    pi = pi_s.copy()
    for _ in range(int(iters)):
        q = p * (pi / pi_s)
        q /= np.clip(q.sum(axis=1, keepdims=True), 1e-300, None)
        new = q.mean(axis=0)
        if np.abs(new - pi).max() < tol:
            return new
        pi = new
    return pi


def shift_weights(confusion: np.ndarray, target_pred_freq: Sequence[float], floor: float = 1e-3) -> np.ndarray:
    """The BBSE solve: importance weights ``w = π_t / π_s`` with ``C w = μ``.

    ``C[i, j] = P_source(pred = i, y = j)``, ``μ[i] = P_target(pred = i)``; least squares, clipped at ``floor``
    (a noisy ``C`` can give negative weights). Shared by :func:`bbse_prior` and IWDAN's running estimate
    (``train.dann.prior_estimate: confusion``).
    """
    c = np.asarray(confusion, dtype=np.float64)
    mu = np.asarray(target_pred_freq, dtype=np.float64).reshape(-1)
    return np.clip(np.linalg.lstsq(c, mu, rcond=None)[0], floor, None)


def bbse_prior(source_pred: Sequence[int], source_true: Sequence[int], target_pred: Sequence[int],
               num_classes: int, floor: float = 1e-3) -> np.ndarray:
    """Target class prior by black-box shift estimation: :func:`shift_weights` from held-out labelled source
    faces' confusion and the target's predicted-class frequencies, then ``π_t ∝ w · π_s``."""
    sp, st, tp = (np.asarray(a, dtype=np.int64).reshape(-1) for a in (source_pred, source_true, target_pred))
    if sp.shape != st.shape or sp.size == 0 or tp.size == 0:
        raise ValueError("bbse_prior: need equally long, non-empty source predictions and labels, "
                         "and target predictions")
    k = int(num_classes)
    for name, a in (("source_pred", sp), ("source_true", st), ("target_pred", tp)):
        if a.min() < 0 or a.max() >= k:
            raise ValueError(f"bbse_prior: {name} holds a class index outside 0..{k - 1}")
    c = confusion_matrix(st, sp, k).T / sp.size  # rows: prediction, columns: truth
    w = shift_weights(c, np.bincount(tp, minlength=k) / tp.size, floor)
    pi = w * np.bincount(st, minlength=k) / st.size
    return pi / pi.sum()


def prior_adjustment(target_prior: Sequence[float], source_prior: Sequence[float]) -> np.ndarray:
    """Logit offsets ``log(π_t / π_s)``: add them to the logits (or to the last layer's bias) to re-balance."""
    t = np.asarray(target_prior, dtype=np.float64).reshape(-1)
    pi_t = _prior(np.clip(t, 1e-6, None), t.size, "target_prior")
    pi_s = _prior(source_prior, pi_t.size, "source_prior")
    return np.log(pi_t / pi_s)
