"""Evaluate one artefact (checkpoint, ONNX, INT8 ONNX, engine) on a labelled dataset.

The dataset is preprocessed with the *model's* contract (its ``PreprocessSpec``), never the
config's: an artefact is judged exactly as it will be fed in deployment. Dataset labels are mapped
onto the model's label order by name, so a loader that spells ``happy`` or orders classes
alphabetically still scores correctly; samples of a class the model does not know (``contempt``
for a 7-class model) are counted and left out, never silently scored as wrong.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from fer_edge.runtime import metrics
from fer_edge.runtime.atomic import atomic_write
from fer_edge.runtime.batches import predict_in_batches
from fer_edge.runtime.contract import canonical_label
from fer_edge.runtime.errors import DataError, ModelError
from fer_edge.runtime.manifest import sha256_file

from .loading import open_model

log = logging.getLogger(__name__)


@dataclass
class EvalResult:
    """What ``metrics.json`` holds. ``per_class`` maps label → precision/recall/f1/support."""

    model: str
    model_sha256: str
    backend: str
    precision: str
    dataset: str
    labels: List[str]
    n: int
    accuracy: float
    macro_f1: float
    per_class: Dict[str, Dict[str, Any]]
    confusion: List[List[int]]
    intensity: Optional[Dict[str, Any]] = None
    skipped: Dict[str, int] = field(default_factory=dict)
    reference: Optional[Dict[str, Any]] = None
    seconds: float = 0.0
    images_per_s: float = 0.0
    backend_info: Dict[str, Any] = field(default_factory=dict)
    detection: Optional[Dict[str, int]] = None

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def label_mapping(dataset_labels: Sequence[str], model_labels: Sequence[str]) -> np.ndarray:
    """``m[i]`` = index in the model's labels of the dataset's class ``i`` (by canonical name), or -1."""
    model_canon = [canonical_label(n) or str(n).lower() for n in model_labels]
    out = []
    for name in dataset_labels:
        canon = canonical_label(name) or str(name).lower()
        out.append(model_canon.index(canon) if canon in model_canon else -1)
    return np.asarray(out, dtype=np.int64)


def predict(backend: Any, x: np.ndarray, batch_size: int = 64, progress: bool = False) -> np.ndarray:
    """Probabilities ``N x K`` from ``backend.infer`` in batches (a progress bar when asked)."""
    def bar(starts):
        try:
            from tqdm import tqdm

            return tqdm(starts, desc=f"eval {backend.name}", unit="batch", leave=False)
        except ImportError:  # pragma: no cover - tqdm ships with the train extra
            return starts

    k = len(backend.contract.labels)
    probs = predict_in_batches(backend.infer, x, batch_size, num_outputs=k, wrap=bar if progress else None)
    if probs.shape != (len(x), k):
        raise ModelError(f"{backend.name}: returned probabilities of shape {probs.shape}, expected {(len(x), k)}")
    return probs


def _max_batch(backend: Any, wanted: int) -> int:
    try:
        info = backend.info() or {}
    except Exception:  # noqa: BLE001 - info() is diagnostics only
        info = {}
    limit = info.get("max_batch")
    if limit is None and isinstance(info.get("batch_range"), (list, tuple)) and len(info["batch_range"]) == 2:
        limit = info["batch_range"][1]          # TensorRT: the engine profile's largest batch
    return min(wanted, int(limit)) if isinstance(limit, int) and limit > 0 else wanted


def prepare(dataset: Any, backend: Any, progress: bool = False) -> Dict[str, Any]:
    """Inputs, model-space truth and intensity for the labelled samples the model can score."""
    x, keep = dataset.arrays(backend.contract.preprocess, progress=progress)
    mapping = label_mapping(dataset.labels, backend.contract.labels)
    raw = dataset.label_array(keep)
    y = np.where(raw >= 0, mapping[np.clip(raw, 0, None)], -2) if len(raw) else raw
    scored = y >= 0
    skipped = {"unreadable": len(dataset.records) - len(keep), "unlabelled": int(np.sum(y == -2)),
               "unknown_label": int(np.sum(y == -1))}
    if not scored.any():
        raise DataError(f"{dataset.name or dataset.root}: no labelled sample the model can score "
                        f"(skipped: {skipped}); evaluation needs a labelled test set whose classes "
                        f"include some of {list(backend.contract.labels)}")
    idx = keep[scored]
    return {"x": x[scored], "y": y[scored], "intensity": dataset.field_array("intensity", idx),
            "paths": [dataset.records[i].path for i in idx], "skipped": skipped}


def evaluate(model_path: Union[str, Path], dataset: Any, out_dir: Union[str, Path, None] = None,
             backend: str = "auto", batch_size: int = 64, reference: Union[str, Path, None] = None,
             threshold: float = metrics.INTENSITY_THRESHOLD, fmt: str = "auto", detect: bool = False,
             progress: bool = False) -> EvalResult:
    """Run ``model_path`` on ``dataset``; write metrics/confusion files to ``out_dir`` when given.

    ``dataset`` is a FaceDataset or a path for the loaders (``fmt``; ``detect`` for footage, cropped
    with the model's own crop policy). ``reference`` (e.g. the FP32 ONNX when evaluating INT8) is run
    on the same inputs and its accuracy and argmax agreement with the model are recorded.
    """
    model_path = Path(model_path)
    be = open_model(model_path, backend=backend)
    try:
        return _evaluate(be, model_path, dataset, out_dir, batch_size, reference, threshold, fmt, detect, progress)
    finally:
        close_backend(be)


def close_backend(be: Any) -> None:
    """Release what a backend holds (TensorRT device buffers and context); a no-op for the others."""
    close = getattr(be, "close", None)
    if callable(close):
        close()


def _evaluate(be: Any, model_path: Path, dataset: Any, out_dir: Union[str, Path, None], batch_size: int,
              reference: Union[str, Path, None], threshold: float, fmt: str, detect: bool,
              progress: bool) -> EvalResult:
    if isinstance(dataset, (str, Path)):
        from .data import load_eval_dataset

        dataset = load_eval_dataset(dataset, be.contract, fmt=fmt, detect=detect)
    data = prepare(dataset, be, progress=progress)
    t0 = time.perf_counter()
    probs = predict(be, data["x"], _max_batch(be, batch_size), progress=progress)
    seconds = time.perf_counter() - t0
    pred = probs.argmax(axis=1)
    labels = list(be.contract.labels)
    report = metrics.classification_report(data["y"], pred, labels, data["intensity"], threshold)
    info = be.info() if hasattr(be, "info") else {}
    ref = None
    if reference is not None:
        ref = _reference(reference, dataset, pred, data, batch_size, progress)
    result = EvalResult(
        model=str(model_path), model_sha256=sha256_file(model_path), backend=be.name,
        precision=str(info.get("precision", "")), dataset=str(dataset.name or dataset.root), labels=labels,
        n=report["n"], accuracy=report["accuracy"], macro_f1=report["macro_f1"],
        per_class=report["per_class"], confusion=report["confusion"], intensity=report.get("intensity"),
        skipped=data["skipped"], reference=ref, seconds=seconds,
        images_per_s=len(pred) / seconds if seconds > 0 else 0.0, backend_info=_jsonable(info),
        detection=dict(getattr(dataset, "counts", {}) or {}) or None)
    log.info("eval %s on %s [%s]: accuracy %.4f, macro-F1 %.4f (n=%d)", model_path.name, result.dataset,
             be.name, result.accuracy, result.macro_f1, result.n)
    if out_dir is not None:
        write_outputs(result, Path(out_dir), data["paths"], data["y"], probs)
    return result


def _reference(path: Union[str, Path], dataset: Any, pred: np.ndarray, data: Dict[str, Any],
               batch_size: int, progress: bool) -> Dict[str, Any]:
    ref_be = open_model(path)
    try:
        ref_data = prepare(dataset, ref_be, progress=progress)
        if len(ref_data["y"]) != len(pred) or not np.array_equal(ref_data["y"], data["y"]):
            raise ModelError(f"{path}: the reference model scores a different set of samples (labels or "
                             "preprocessing differ); compare artefacts of the same model")
        ref_pred = predict(ref_be, ref_data["x"], _max_batch(ref_be, batch_size)).argmax(axis=1)
    finally:
        close_backend(ref_be)
    return {"model": str(path), "backend": ref_be.name, "accuracy": metrics.accuracy(ref_data["y"], ref_pred),
            "agreement": metrics.agreement(pred, ref_pred)}


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


def write_outputs(result: EvalResult, out_dir: Path, paths: Sequence[str], y: np.ndarray,
                  probs: np.ndarray) -> Dict[str, Path]:
    """``metrics.json``, ``confusion.json``, ``confusion.png`` and ``predictions.csv`` (all atomic)."""
    from .plots import confusion_png

    out_dir.mkdir(parents=True, exist_ok=True)
    written = {"metrics": atomic_write(out_dir / "metrics.json",
                                       json.dumps(result.to_dict(), indent=2, allow_nan=True) + "\n")}
    cm = np.asarray(result.confusion, dtype=np.int64)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)
    written["confusion_json"] = atomic_write(out_dir / "confusion.json", json.dumps(
        {"labels": result.labels, "rows": "true", "columns": "predicted", "matrix": result.confusion,
         "normalized": np.round(norm, 6).tolist()}, indent=2) + "\n")
    png = confusion_png(cm, result.labels, out_dir / "confusion.png",
                        title=f"{Path(result.model).name} [{result.backend}] acc {result.accuracy:.3f}")
    if png is not None:
        written["confusion_png"] = png
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["path", "true", "pred", "confidence"])
    pred = probs.argmax(axis=1)
    for p, t, k, c in zip(paths, y, pred, probs.max(axis=1)):
        w.writerow([p, result.labels[t], result.labels[k], f"{c:.5f}"])
    written["predictions"] = atomic_write(out_dir / "predictions.csv", buf.getvalue())
    return written
