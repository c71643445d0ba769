"""Per-epoch metrics on disk: ``metrics.csv`` (rewritten atomically each epoch) and PNG curves."""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Dict, List, Mapping, Sequence

from fer_edge.runtime.atomic import atomic_path, atomic_write

ACC_KEYS = ("train_src_acc", "source_val_acc", "source_test_acc", "target_test_acc")


def write_csv(path: Path, history: Sequence[Mapping[str, float]]) -> None:
    keys: List[str] = []
    for h in history:
        keys += [k for k in h if k not in keys]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    w.writeheader()
    for h in history:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in h.items()})
    atomic_write(path, buf.getvalue())


def _series(history: Sequence[Mapping[str, float]], key: str) -> List[float]:
    return [float(h.get(key, math.nan)) for h in history]


def plot_curves(path: Path, history: Sequence[Mapping[str, float]], title: str = "") -> None:
    """Three panels: training losses, accuracies (target-test shown, never used to select), disc acc."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [int(h["epoch"]) for h in history]
    loss_keys = [k for k in history[-1] if k.startswith("loss_")]
    disc_keys = [k for k in history[-1] if k.startswith("train_disc_acc")]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for k in loss_keys:
        axes[0].plot(epochs, _series(history, k), marker=".", label=k[5:])
    axes[0].set_title("training losses")
    for k in ACC_KEYS:
        if k in history[-1]:
            axes[1].plot(epochs, _series(history, k), marker=".", label=k)
    axes[1].set_title("accuracy")
    axes[1].set_ylim(0, 1)
    for k in disc_keys:
        axes[2].plot(epochs, _series(history, k), marker=".", label=k[6:])
    axes[2].axhline(0.5, color="grey", lw=0.8, ls="--")
    axes[2].set_ylim(0, 1)
    axes[2].set_title("discriminator accuracy (0.5 = chance)")
    for ax in axes:
        ax.set_xlabel("epoch")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)


def mean_logs(logs: Sequence[Mapping[str, float]]) -> Dict[str, float]:
    """Average each key over the steps that reported a finite value."""
    out: Dict[str, float] = {}
    keys: List[str] = []
    for d in logs:
        keys += [k for k in d if k not in keys]
    for k in keys:
        vals = [d[k] for d in logs if k in d and not math.isnan(d[k])]
        out[k] = sum(vals) / len(vals) if vals else math.nan
    return out
