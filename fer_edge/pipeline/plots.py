"""The report's own figures (the stages draw theirs: training curves, confusion matrices).

matplotlib with the Agg backend, imported inside each function so importing the pipeline stays cheap.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from fer_edge.runtime.atomic import atomic_path


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return path


def pca_2d(feats: np.ndarray) -> np.ndarray:
    """Project rows onto their first two principal components (numpy SVD; no sklearn needed)."""
    x = feats.astype(np.float64) - feats.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    return (x @ vt[:2].T).astype(np.float32)


def feature_projection(panels: Sequence[Tuple[str, Path]], labels: Sequence[str], out: Path) -> Optional[Path]:
    """Side-by-side 2-D PCA of source and target features, coloured by domain and by class.

    ``panels`` are (title, features.npz) with arrays ``feats``, ``domain`` (0 source, 1 target), ``label``.
    One shared projection per panel: a model that aligned the domains shows target points among source points.
    """
    panels = [(t, Path(p)) for t, p in panels if Path(p).is_file()]
    if not panels:
        return None
    plt = _plt()
    fig, axes = plt.subplots(2, len(panels), figsize=(5 * len(panels), 9), squeeze=False)
    cmap = plt.get_cmap("tab10")
    for j, (title, path) in enumerate(panels):
        data = np.load(path)
        xy = pca_2d(data["feats"])
        dom, lab = data["domain"].astype(int), data["label"].astype(int)
        ax = axes[0, j]
        for d, name, c in ((0, "source", "tab:blue"), (1, "target", "tab:orange")):
            m = dom == d
            ax.scatter(xy[m, 0], xy[m, 1], s=6, alpha=0.5, c=c, label=name)
        ax.set_title(f"{title}: by domain")
        ax.legend(markerscale=3)
        ax = axes[1, j]
        for k, name in enumerate(labels):
            m = lab == k
            if m.any():
                ax.scatter(xy[m, 0], xy[m, 1], s=6, alpha=0.6, color=cmap(k % 10), label=name)
        ax.set_title(f"{title}: by class")
        ax.legend(markerscale=3, fontsize=7)
    return _save(fig, out)


def per_class_bars(series: Dict[str, Dict[str, float]], labels: Sequence[str], out: Path,
                   title: str = "per-class accuracy (recall)") -> Optional[Path]:
    """Grouped bars: one group per class, one bar per model (e.g. FP32 vs INT8)."""
    if not series:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 3.8))
    n = len(series)
    width = 0.8 / n
    x = np.arange(len(labels))
    for i, (name, vals) in enumerate(series.items()):
        ax.bar(x + i * width - 0.4 + width / 2, [vals.get(lab, 0.0) for lab in labels], width, label=name)
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=20)
    ax.set_ylim(0, 1.05)
    ax.set_title(title)
    ax.legend()
    return _save(fig, out)


def latency_histogram(results_jsonl: Path, out: Path) -> Optional[Path]:
    """Histogram of per-frame end-to-end latency from the runtime's JSONL (sum of its stage latencies)."""
    lat: List[float] = []
    if not Path(results_jsonl).is_file():
        return None
    with open(results_jsonl, encoding="utf-8") as fh:
        for line in fh:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            stages = rec.get("latency_ms") or {}
            if isinstance(stages, dict) and stages:
                lat.append(float(sum(v for v in stages.values() if isinstance(v, (int, float)))))
    if not lat:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.hist(lat, bins=40, color="tab:green")
    p50, p99 = np.percentile(lat, [50, 99])
    for v, name in ((p50, "p50"), (p99, "p99")):
        ax.axvline(v, color="k", ls="--", lw=1)
        ax.text(v, ax.get_ylim()[1] * 0.9, f" {name} {v:.1f} ms", fontsize=8)
    ax.set_xlabel("frame latency (ms)")
    ax.set_ylabel("frames")
    ax.set_title(f"runtime frame latency ({len(lat)} frames)")
    return _save(fig, out)


def frame_strip(frames: Sequence[np.ndarray], out: Path, captions: Sequence[str] = ()) -> Optional[Path]:
    """A horizontal strip of annotated frames (BGR or gray uint8)."""
    import cv2

    frames = [f for f in frames if isinstance(f, np.ndarray) and f.size]
    if not frames:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(frames), figsize=(3.2 * len(frames), 2.8), squeeze=False)
    for i, f in enumerate(frames):
        img = cv2.cvtColor(f, cv2.COLOR_BGR2RGB) if f.ndim == 3 else f
        axes[0, i].imshow(img, cmap=None if f.ndim == 3 else "gray")
        axes[0, i].axis("off")
        if i < len(captions):
            axes[0, i].set_title(captions[i], fontsize=8)
    return _save(fig, out)
