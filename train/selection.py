"""Label-free model selection: scores computed WITHOUT target labels, higher is better.

Each validator is named for the split it reads, so target-test labels cannot leak into selection:
``im_score`` and ``snd_score`` read target-val predictions/features only; ``dev_score`` reads
source-val losses and features plus target-val features; ``source_val`` is plain source accuracy.
The trainer logs the target-test accuracy beside them but never passes it to any selector.
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

SELECTORS = ("im", "snd", "dev", "source_val", "last")
EPS = 1e-12


def _entropy(p: np.ndarray, axis: int = -1) -> np.ndarray:
    return -(p * np.log(p + EPS)).sum(axis=axis)


def _softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def im_score(probs: np.ndarray) -> float:
    """Information maximisation: entropy of the mean prediction − mean per-sample entropy.

    High when predictions are confident (low per-sample entropy) *and* spread over classes (high
    entropy of the mean) — a collapsed model that predicts one class confidently scores low.
    """
    probs = np.asarray(probs, dtype=np.float64)
    return float(_entropy(probs.mean(0)) - _entropy(probs).mean())


def snd_score(probs: np.ndarray, temperature: float = 0.05, max_n: int = 2000) -> float:
    """Soft neighbourhood density (Saito et al., 2021) on the target's softmax outputs.

    L2-normalise each row, take cosine similarities to all *other* samples, softmax them with
    temperature τ, and average the entropy of these neighbour distributions. High when each sample
    has many close neighbours — target predictions that form dense clusters. As in pytorch-adapt,
    the softmax outputs are the representation (``max_n`` rows keep the N×N matrix small).
    """
    x = np.asarray(probs, dtype=np.float64)[:max_n]
    x = x / (np.linalg.norm(x, axis=1, keepdims=True) + EPS)
    sim = x @ x.T
    np.fill_diagonal(sim, -np.inf)
    return float(_entropy(_softmax(sim / temperature, axis=1), axis=1).mean())


def _fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, iters: int = 300, lr: float = 0.5) -> np.ndarray:
    """Plain L2-regularised logistic regression by gradient descent (a bias column is appended)."""
    xb = np.hstack([x, np.ones((x.shape[0], 1))])
    w = np.zeros(xb.shape[1])
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(xb @ w, -30, 30)))
        grad = xb.T @ (p - y) / len(y) + l2 * np.r_[w[:-1], 0.0]
        w -= lr * grad
    return w


def dev_score(source_losses: np.ndarray, source_feats: np.ndarray, target_feats: np.ndarray,
              clip: float = 20.0) -> float:
    """Deep embedded validation (You et al., 2019), returned negated so that higher is better.

    A logistic domain classifier on standardised features estimates the density ratio
    ``w(x) = (n_s/n_t) · P(target|x) / P(source|x)`` at each source-val sample; the risk is the
    importance-weighted source-val loss with the paper's control variate:
    ``DEV = mean(w·L) + η·mean(w) − η``, ``η = −Cov(w·L, w)/Var(w)``.
    """
    ls = np.asarray(source_losses, dtype=np.float64)
    fs, ft = np.asarray(source_feats, np.float64), np.asarray(target_feats, np.float64)
    allf = np.vstack([fs, ft])
    mu, sd = allf.mean(0), allf.std(0) + 1e-6
    x = (allf - mu) / sd
    y = np.r_[np.zeros(len(fs)), np.ones(len(ft))]
    w_lr = _fit_logistic(x, y)
    pt = 1.0 / (1.0 + np.exp(-np.clip(np.hstack([x[:len(fs)], np.ones((len(fs), 1))]) @ w_lr, -30, 30)))
    w = np.clip(len(fs) / len(ft) * pt / (1.0 - pt + EPS), 0.0, clip)
    wl = w * ls
    var = w.var(ddof=1) if len(w) > 1 else 0.0
    eta = -np.cov(wl, w)[0, 1] / var if var > 1e-12 else 0.0
    return float(-(wl.mean() + eta * w.mean() - eta))


def select_epoch(history: Sequence[Mapping[str, float]], selector: str) -> int:
    """Index into ``history`` of the epoch the selector picks (first of ties; NaN never wins)."""
    if selector not in SELECTORS:
        raise ValueError(f"unknown selector {selector!r}; one of {SELECTORS}")
    if not history:
        raise ValueError("no epochs to select from")
    if selector == "last":
        return len(history) - 1
    return _argmax([h.get(f"score_{selector}", float("nan")) for h in history])


def select_run(summaries: Sequence[Mapping[str, object]], selector: str) -> int:
    """Across methods: index of the run whose *selected* checkpoint has the best label-free score.

    The scores of different models on the same unlabelled target_val split are comparable, which is
    what lets the pipeline choose among source-only and every adaptation method without labels.
    The target oracle (it used target labels) is never eligible, whatever the selector. Where no eligible run has
    a score (``last`` stores none; a run without a target), source-only is the safe choice, else the first
    eligible run; -1 only when every run is the oracle.
    """
    eligible = [i for i, s in enumerate(summaries) if s.get("method") != "target_oracle"]
    if not eligible:
        return -1
    vals: List[float] = []
    for i in eligible:
        scores = summaries[i].get("selector_scores") or {}
        v = scores.get(selector) if isinstance(scores, dict) else None  # type: ignore[union-attr]
        vals.append(float(v) if isinstance(v, (int, float)) else float("nan"))
    arr = np.asarray(vals, dtype=np.float64)
    if np.all(np.isnan(arr)):
        names = [summaries[i].get("method") for i in eligible]
        return eligible[names.index("source_only")] if "source_only" in names else eligible[0]
    return eligible[int(np.nanargmax(arr))]


def select_method(summaries: Mapping[str, Mapping[str, object]], selector: str) -> Optional[str]:
    """The method (key of ``summaries``) whose run :func:`select_run` picks, or ``None`` when only the oracle ran.

    ``fer-edge train --method all`` and the pipeline both choose the exported model with this one function.
    """
    names = list(summaries)
    i = select_run([{**s, "method": m} for m, s in summaries.items()], selector) if names else -1
    return names[i] if i >= 0 else None


def _argmax(vals: Sequence[float]) -> int:
    arr = np.asarray(vals, dtype=np.float64)
    if np.all(np.isnan(arr)):
        return len(arr) - 1
    return int(np.nanargmax(arr))


def label_free_scores(target_probs: np.ndarray, source_val_losses: np.ndarray, source_val_feats: np.ndarray,
                      target_feats: np.ndarray, source_val_acc: float) -> Dict[str, float]:
    """All selector scores of one checkpoint, keyed ``score_<selector>``."""
    return {"score_im": im_score(target_probs), "score_snd": snd_score(target_probs),
            "score_dev": dev_score(source_val_losses, source_val_feats, target_feats),
            "score_source_val": float(source_val_acc)}


__all__ = ["SELECTORS", "im_score", "snd_score", "dev_score", "select_epoch", "select_run", "select_method",
           "label_free_scores"]
