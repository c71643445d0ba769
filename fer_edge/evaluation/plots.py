"""PNG figures for evaluation and benchmarks (confusion matrix, latency and throughput charts).

Figures are drawn on a bare ``matplotlib.figure.Figure`` with the Agg canvas, never through pyplot:
no global state, no display needed, safe in threads and on a headless device. matplotlib is
imported lazily and a missing matplotlib skips the figure with a warning instead of failing a run
whose numbers are already written.
"""
from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Union

import numpy as np

from fer_edge.runtime.atomic import atomic_write

log = logging.getLogger(__name__)


def _figure(width: float, height: float) -> Optional[Any]:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        log.warning("matplotlib is not installed: figures skipped (`pip install matplotlib`)")
        return None
    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Union[str, Path]) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return atomic_write(path, buf.getvalue())


def confusion_png(cm: Any, labels: Sequence[str], path: Union[str, Path], title: str = "") -> Optional[Path]:
    """Row-normalised confusion matrix (recall per true class) with the raw counts in each cell."""
    fig = _figure(1.0 + 0.75 * len(labels), 0.6 + 0.7 * len(labels))
    if fig is None:
        return None
    cm = np.asarray(cm, dtype=np.float64)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=8,
                    color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="recall (row-normalised)")
    if title:
        ax.set_title(title)
    return _save(fig, path)


def bar_chart(values: Dict[str, float], path: Union[str, Path], ylabel: str, title: str = "",
              annotate: str = "{:.3g}") -> Optional[Path]:
    """One bar per path (``torch``, ``ort-fp32`` …), value written on top of each bar."""
    fig = _figure(1.5 + 1.1 * max(1, len(values)), 3.6)
    if fig is None or not values:
        return None
    ax = fig.add_subplot(1, 1, 1)
    names = list(values)
    bars = ax.bar(names, [values[n] for n in names], color="#4c72b0")
    for b, n in zip(bars, names):
        ax.annotate(annotate.format(values[n]), (b.get_x() + b.get_width() / 2, b.get_height()),
                    ha="center", va="bottom", fontsize=8)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return _save(fig, path)


def grouped_bars(series: Dict[str, Dict[str, float]], path: Union[str, Path], ylabel: str,
                 title: str = "", log_scale: bool = False) -> Optional[Path]:
    """``series[path][group]`` as grouped bars, e.g. throughput per path at batch 1/8/32."""
    groups = sorted({g for s in series.values() for g in s}, key=lambda g: (len(g), g))
    fig = _figure(2.0 + 1.2 * max(1, len(groups)), 3.8)
    if fig is None or not series or not groups:
        return None
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / len(series)
    x = np.arange(len(groups))
    for i, (name, vals) in enumerate(series.items()):
        ax.bar(x + i * width, [vals.get(g, 0.0) for g in groups], width, label=name)
    ax.set_xticks(x + width * (len(series) - 1) / 2)
    ax.set_xticklabels(groups)
    ax.set_ylabel(ylabel)
    if log_scale:
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return _save(fig, path)


def latency_histogram(samples_ms: Dict[str, Sequence[float]], path: Union[str, Path],
                      title: str = "batch-1 latency") -> Optional[Path]:
    """Overlaid histograms of per-call latency, one per path (log-spaced bins: paths differ 10×)."""
    fig = _figure(6.0, 3.6)
    data = {k: np.asarray(v, dtype=np.float64) for k, v in samples_ms.items() if len(v)}
    if fig is None or not data:
        return None
    lo = max(1e-3, min(float(v.min()) for v in data.values()))
    hi = max(float(v.max()) for v in data.values())
    bins = np.geomspace(lo, max(hi, lo * 1.01), 40)
    ax = fig.add_subplot(1, 1, 1)
    for name, v in data.items():
        ax.hist(v, bins=bins, alpha=0.55, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("ms per image (batch 1)")
    ax.set_ylabel("calls")
    ax.legend(fontsize=8)
    ax.set_title(title)
    return _save(fig, path)
