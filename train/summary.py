"""Per-epoch evaluation records, ``summary.json`` and the ``features.npz`` embedding sample.

Which split feeds what is spelled out here: selector scores come from ``target_val`` (unlabelled)
and ``source_val``; ``target_test`` and ``source_test`` accuracies are recorded for the report and
for the *oracle* (best-in-hindsight) column only — never for selection.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Mapping, Optional, Sequence

import numpy as np
import torch

from fer_edge.runtime.metrics import accuracy, macro_f1

from .evaluation import per_sample_ce, predict
from .models import FerNet
from .selection import SELECTORS, label_free_scores, select_epoch
from .splits_prep import SplitTensors

NAN = float("nan")


RECALL = "target_test_recall_"


def epoch_record(epoch: int, train_logs: Mapping[str, float], net: FerNet, splits: Mapping[str, SplitTensors],
                 device: torch.device, labels: Sequence[str]) -> Dict[str, float]:
    """One epoch's row of ``metrics.csv``, target-test recall per class (of ``labels``) included: a domain
    gap is rarely spread evenly (the cabin's neutral drivers read as angry), and the report shows where a
    method gains or loses."""
    rec: Dict[str, float] = {"epoch": epoch}
    for k, v in train_logs.items():
        if k.endswith("acc"):
            rec[f"train_{k}"] = v
        elif k == "lambda":
            rec["lambda"] = v
        else:
            rec[f"loss_{k}"] = v
    sv, tv = splits["source_val"], splits["target_val"]
    sv_probs, sv_feats = predict(net, sv.x, device)
    tv_probs, tv_feats = predict(net, tv.x, device)
    if len(sv) and len(tv):
        sv_y = sv.y.numpy()
        rec["source_val_acc"] = accuracy(sv_y, sv_probs.argmax(1))
        losses = per_sample_ce(sv_probs, sv_y)
        rec["source_val_loss"] = float(losses.mean())
        rec.update(label_free_scores(tv_probs, losses, sv_feats, tv_feats, rec["source_val_acc"]))
    rec["target_val_confidence"] = float(tv_probs.max(1).mean()) if len(tv) else NAN
    for role in ("source_test", "target_test"):
        if role in splits and splits[role].labelled:
            d = splits[role]
            known = d.y >= 0
            probs, _ = predict(net, d.x[known], device)
            y = d.y[known].numpy()
            pred = probs.argmax(1)
            rec[f"{role}_acc"] = accuracy(y, pred)
            rec[f"{role}_macro_f1"] = macro_f1(y, pred, len(labels))
            if role == "target_test":
                for k, name in enumerate(labels):
                    rec[RECALL + name] = float((pred[y == k] == k).mean()) if (y == k).any() else NAN
    return rec


def make_summary(method: str, selector: str, history: Sequence[Mapping[str, float]], seconds: float,
                 extra: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    sel = select_epoch(history, selector)
    h = history[sel]
    tt = [r.get("target_test_acc", NAN) for r in history]
    oracle = int(np.nanargmax(tt)) if not all(math.isnan(v) for v in tt) else sel
    return {
        "method": method, "selector": selector, "selected_epoch": int(h["epoch"]),
        "target_test_accuracy": h.get("target_test_acc", NAN),
        "target_test_macro_f1": h.get("target_test_macro_f1", NAN),
        "source_test_accuracy": h.get("source_test_acc", NAN),
        "source_val_accuracy": h.get("source_val_acc", NAN),
        "oracle_selected_target_accuracy": history[oracle].get("target_test_acc", NAN),
        "oracle_epoch": int(history[oracle]["epoch"]),
        "last_epoch_target_accuracy": history[-1].get("target_test_acc", NAN),
        "target_test_per_class_recall": {k[len(RECALL):]: v for k, v in h.items() if k.startswith(RECALL)},
        "selector_scores": {s: h.get(f"score_{s}", NAN) for s in SELECTORS if s != "last"},
        "selected_epoch_by": {s: int(history[select_epoch(history, s)]["epoch"]) for s in SELECTORS},
        "final_disc_acc": history[-1].get("train_disc_acc", NAN),
        "train_seconds": float(seconds),
        **dict(extra or {}),
    }


def features_npz(net: FerNet, splits: Mapping[str, SplitTensors], device: torch.device, n: int, seed: int
                 ) -> Dict[str, np.ndarray]:
    """Features of ``n`` source-test and ``n`` target-test faces (fallback: source_val / target_val).

    ``domain`` is 0 for source and 1 for target; ``label`` is -1 where unknown.
    """
    feats, dom, lab = [], [], []
    for d, roles in enumerate((("source_test", "source_val"), ("target_test", "target_val"))):
        role = next((r for r in roles if r in splits and len(splits[r])), None)
        if role is None:
            continue
        s = splits[role].head(n, seed)
        _, f = predict(net, s.x, device)
        feats.append(f)
        dom.append(np.full(len(f), d, np.int64))
        lab.append(s.y.numpy())
    if not feats:
        return {"feats": np.zeros((0, net.spec.feature_dim), np.float32), "domain": np.zeros(0, np.int64),
                "label": np.zeros(0, np.int64)}
    return {"feats": np.concatenate(feats), "domain": np.concatenate(dom), "label": np.concatenate(lab)}
