"""A tiny FP32 model and its faces for the calibration tests (``test_calibration*.py``).

The fixtures ``plain`` and ``sensitive`` (tests/conftest.py) build them once per module. ``plain``: a
well-behaved model, calibrated once (with a labelled eval set and a source comparison); ``sensitive``: a
model whose head input carries one huge, ignored feature, so INT8 collapses until the gate keeps that layer
in float.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from fer_edge.calibration.quantize import calibrate
from fer_edge.export.images import synthetic_faces
from fer_edge.export.onnx import export_onnx
from fer_edge.runtime.contract import LABELS, PreprocessSpec, preprocess
from fer_edge.train.checkpoint import save_checkpoint
from fer_edge.train.models import FerNet, ModelSpec

SPEC = PreprocessSpec(size=32)


def _net(seed: int, sensitive: bool = False) -> FerNet:
    torch.manual_seed(seed)
    net = FerNet(ModelSpec(backbone="tiny", feature_dim=32, width=0.5)).eval()
    with torch.no_grad():
        net.head.weight.mul_(20.0)  # confident, varied predictions
        net.head.bias.zero_()
        if sensitive:
            # One feature carries a huge constant the head ignores: harmless in float, but its range sets the
            # per-tensor INT8 scale of the head's input, so every real feature quantizes to zero.
            net.backbone.proj.bias[0] = 1e4
            net.head.weight[:, 0] = 0.0
    return net


def _write_faces(folder: Path, faces, labels=None) -> None:
    for i, f in enumerate(faces):
        d = folder / (LABELS[labels[i]] if labels is not None else "")
        d.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(d / f"{i:03d}.png"), f)


def _world(root: Path, sensitive: bool):
    """FP32 ONNX + 80 unlabelled calibration faces + 60 eval faces labelled with FP32's own predictions
    (so FP32 scores 100 % and the INT8 accuracy equals its agreement with FP32)."""
    net = _net(0, sensitive)
    save_checkpoint(root / "m.pt", net, LABELS, SPEC, {})
    export_onnx(root / "m.pt", root / "m.onnx")
    faces = synthetic_faces(140, 32, seed=3)
    with torch.no_grad():
        pred = net(torch.from_numpy(np.stack([preprocess(f, SPEC) for f in faces]))).argmax(1).numpy()
    _write_faces(root / "calib", faces[:80])
    _write_faces(root / "eval", faces[80:], pred[80:])
    return root / "m.onnx"


def plain_world(root: Path):
    """The ``plain`` fixture's contents: a well-behaved model calibrated once, with eval set and source comparison."""
    model = _world(root, sensitive=False)
    src = root / "source"
    _write_faces(src, synthetic_faces(60, 48, seed=9))
    res = calibrate(model, root / "calib", root / "m.int8.onnx", method="minmax", num_images=80, min_images=50,
                    eval_data=root / "eval", max_drop=100.0, compare_source=src)
    return root, model, res
