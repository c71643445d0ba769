"""Artefacts for the evaluation/benchmark tests, built on the fly: checkpoint, FP32 ONNX, INT8 ONNX, dataset.

A tiny FerNet is saved as a checkpoint with ``save_checkpoint``, exported with the legacy exporter
(contract in ``metadata_props``, manifest sidecar recording the checkpoint's hash) and quantized
with ONNX Runtime's ``quantize_static`` (Q/DQ) — the same three files the real pipeline makes.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Tuple

import cv2
import numpy as np
import pytest
from runtime_fixtures import add_contract, export_net

from fer_edge.runtime.backends.base import (
    INPUT_NAME,
)
from fer_edge.runtime.contract import LABELS, PreprocessSpec
from fer_edge.runtime.manifest import Manifest, sha256_file, write_manifest

SPEC = PreprocessSpec(size=32, colour="gray", mean=(0.5,), std=(0.25,))
CROP = {"detector": "haar", "min_face": 24, "margin": 0.2, "square": True, "select": "largest",
        "clahe": False, "align": False}


@dataclass
class Artefacts:
    checkpoint: Path
    onnx: Path
    int8: Path


def make_artefacts(folder: Path, backbone: str = "tiny", seed: int = 0) -> Artefacts:
    import torch
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from fer_edge.train.checkpoint import save_checkpoint
    from fer_edge.train.models import FerNet, ModelSpec

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    net = FerNet(ModelSpec(backbone=backbone, in_channels=1, num_classes=len(LABELS), feature_dim=16,
                           width=0.5, dropout=0.0)).eval()
    ckpt = folder / "best.pt"
    save_checkpoint(ckpt, net, LABELS, SPEC, CROP)
    onnx_path = add_contract(export_net(net, folder / "model.onnx", SPEC), LABELS, SPEC, CROP, "fp32")
    write_manifest(onnx_path, Manifest(kind="onnx", precision="fp32", labels=list(LABELS),
                                       preprocess=SPEC.to_dict(), crop=CROP,
                                       inputs={"checkpoint": sha256_file(ckpt)}))

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            rng = np.random.default_rng(seed)
            self.items = iter([{INPUT_NAME: rng.standard_normal((1, *SPEC.input_shape)).astype(np.float32)}
                               for _ in range(8)])

        def get_next(self):
            return next(self.items, None)

    int8 = folder / "model.int8.onnx"
    quantize_static(str(onnx_path), str(int8), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    write_manifest(int8, Manifest(kind="int8_onnx", precision="int8", labels=list(LABELS),
                                  preprocess=SPEC.to_dict(), crop=CROP,
                                  inputs={"fp32_onnx": sha256_file(onnx_path)}))
    return Artefacts(ckpt, onnx_path, int8)


def make_face_folder(root: Path, n_per_class: int = 3, labels: Tuple[str, ...] = LABELS,
                     seed: int = 0) -> List[Tuple[str, int, float]]:
    """PNG crops under ``root``; returns (relative path, label index into ``labels``, intensity)."""
    rng = np.random.default_rng(seed)
    rows = []
    root.mkdir(parents=True, exist_ok=True)
    for k, _ in enumerate(labels):
        for i in range(n_per_class):
            img = rng.integers(0, 256, size=(40, 40), dtype=np.uint8)
            rel = f"c{k}_{i}.png"
            cv2.imwrite(str(root / rel), img)
            rows.append((rel, k, float(rng.uniform(0, 1))))
    return rows


_SHARED: dict = {}


def shared_artefacts(tmp_path_factory) -> Artefacts:
    """Build the artefacts once per test session, whichever eval/bench test module asks first."""
    if "tiny" not in _SHARED:
        _SHARED["tiny"] = make_artefacts(tmp_path_factory.mktemp("eval_models"))
    return _SHARED["tiny"]


@pytest.fixture(scope="session")
def artefacts(tmp_path_factory) -> Artefacts:
    return shared_artefacts(tmp_path_factory)


def test_support_artefacts_carry_contract(artefacts):
    """The fixtures themselves: manifests verify and the contract is readable without torch."""
    from fer_edge.runtime.model import describe_onnx

    assert describe_onnx(artefacts.onnx).contract.preprocess == SPEC
    info = describe_onnx(artefacts.int8)
    assert info.precision == "int8" and list(info.contract.labels) == list(LABELS)
