"""Helpers for the runtime tests: tiny ONNX models with a contract, and frames/videos with faces.

Only the TESTS use torch (to export a tiny FerNet); the runtime under test never does. Models are
built in a temp folder once per session by the fixtures in ``tests/test_runtime_*.py`` via
:func:`make_onnx`.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Dict, Iterable, List, Sequence, Tuple

import cv2
import numpy as np

from fer_edge.runtime.backends.base import (
    INPUT_NAME,
    META_CONTRACT,
    META_PRECISION,
    META_PRODUCER_VERSION,
    OUTPUT_LOGITS,
    OUTPUT_PROBS,
)
from fer_edge.runtime.contract import LABELS, Contract, PreprocessSpec
from fer_edge.runtime.crop import CropPolicy
from fer_edge.runtime.manifest import Manifest, write_manifest

TEST_SPEC = PreprocessSpec(size=32, colour="gray", mean=(0.5,), std=(0.25,))
TEST_CROP = CropPolicy(detector="haar", min_face=24, margin=0.2, square=True)


def export_net(net, path: Path, spec: PreprocessSpec, dynamic: bool = True) -> Path:
    """``torch.onnx.export`` of a FerNet's ExportWrapper with the contract's I/O names (no metadata yet)."""
    import torch

    from fer_edge.train.models import ExportWrapper

    path.parent.mkdir(parents=True, exist_ok=True)
    kwargs = {"dynamic_axes": {INPUT_NAME: {0: "N"}, OUTPUT_LOGITS: {0: "N"}, OUTPUT_PROBS: {0: "N"}}} \
        if dynamic else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(ExportWrapper(net), torch.zeros(1, *spec.input_shape), str(path), input_names=[INPUT_NAME],
                          output_names=[OUTPUT_LOGITS, OUTPUT_PROBS], opset_version=17, dynamo=False, **kwargs)
    return path


def add_contract(path: Path, labels: Sequence[str], spec: PreprocessSpec, crop: Dict[str, Any],
                 precision: str = "fp32", contract: bool = True) -> Path:
    """Write the metadata_props export writes (contract JSON, precision, producer version) into ``path``."""
    import onnx

    model = onnx.load(str(path))
    props = {META_PRECISION: precision, META_PRODUCER_VERSION: "test"}
    if contract:
        props[META_CONTRACT] = json.dumps(Contract(labels=tuple(labels), preprocess=spec, crop=dict(crop)).to_dict())
    for k, v in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(model, str(path))
    return path


def make_onnx(path: Path, spec: PreprocessSpec = TEST_SPEC, crop: CropPolicy = TEST_CROP,
              contract: bool = True, manifest: bool = True, precision: str = "fp32",
              labels: Sequence[str] = LABELS, seed: int = 0, dynamic: bool = True) -> Path:
    """Export a tiny FerNet to ``path`` (contract in metadata_props, optional sidecar)."""
    import torch

    from fer_edge.train.models import FerNet, ModelSpec

    torch.manual_seed(seed)
    net = FerNet(ModelSpec(backbone="tiny", in_channels=spec.channels, num_classes=len(labels),
                           feature_dim=16, width=0.5, dropout=0.0)).eval()
    export_net(net, path, spec, dynamic)
    add_contract(path, labels, spec, crop.to_dict(), precision, contract)
    if manifest:
        write_manifest(path, Manifest(kind="int8_onnx" if precision == "int8" else "onnx", precision=precision,
                                      labels=list(labels), preprocess=spec.to_dict(), crop=crop.to_dict()))
    return path


def draw_face(img: np.ndarray, cx: int, cy: int, r: int, smile: bool = True) -> None:
    """A cartoon face Haar finds reliably enough for tests: bright oval, dark eyes, brows, mouth."""
    cv2.ellipse(img, (cx, cy), (int(r * 0.8), r), 0, 0, 360, (200, 200, 200), -1)
    ey = cy - r // 4
    for dx in (-r // 3, r // 3):
        cv2.ellipse(img, (cx + dx, ey), (r // 7, r // 10), 0, 0, 360, (30, 30, 30), -1)
        cv2.line(img, (cx + dx - r // 6, ey - r // 5), (cx + dx + r // 6, ey - r // 5), (40, 40, 40), max(1, r // 15))
    cv2.line(img, (cx, ey + r // 10), (cx, cy + r // 5), (120, 120, 120), max(1, r // 20))
    if smile:
        cv2.ellipse(img, (cx, cy + r // 3), (r // 3, r // 6), 0, 0, 180, (40, 40, 40), max(1, r // 12))
    else:
        cv2.line(img, (cx - r // 3, cy + r // 2), (cx + r // 3, cy + r // 2), (40, 40, 40), max(1, r // 12))


def synthetic_frames(n: int, size: Tuple[int, int] = (320, 240),
                     faces: Iterable[Tuple[int, int, int]] = ((160, 120, 50),), drift: int = 1) -> List[np.ndarray]:
    """``n`` BGR frames (w, h = ``size``) with cartoon faces drifting slowly to the right."""
    w, h = size
    out = []
    for i in range(n):
        img = np.full((h, w, 3), 90, np.uint8)
        for cx, cy, r in faces:
            draw_face(img, cx + drift * i, cy, r)
        out.append(img)
    return out


def write_video(path: Path, frames: Sequence[np.ndarray], fps: float = 25.0) -> Path:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert writer.isOpened()
    for f in frames:
        writer.write(f)
    writer.release()
    return path


def leave_and_return_clip(work: Path, n: int = 95) -> Tuple[List[np.ndarray], List[List[Tuple[int, int, int, int]]]]:
    """A clip of the project's synthetic world where the face walks out and comes back, with true boxes.

    The synth world's own video (``fer-edge data synth --kind video``, studio, one face) is slid
    sideways: still for 15 frames, out to the left at 20 px a frame, gone for 10 frames, back in from
    the right, still again, then cut away for 4 frames (gone between two detections) and back. The
    true boxes are the generator's, shifted the same way and clipped to the frame.
    """
    import json

    from fer_edge.data.synth import generate

    out = work / "studio-video-60"
    if not (out / "frames.jsonl").is_file():
        generate("studio", "video", out, 60, identities=20, seed=0, workers=1)
    meta = json.loads((out / "synth.json").read_text())
    cap = cv2.VideoCapture(str(out / meta.get("video", "video.mp4")))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    truth = [json.loads(x)["faces"] for x in (out / "frames.jsonl").read_text().splitlines()]

    def dx_at(i: int) -> int:
        if i < 15:
            return 0
        if i < 35:
            return -20 * (i - 14)
        if i < 45:
            return -700
        if i < 65:
            return 20 * (65 - i)
        if i < 80:
            return 0
        if i < 84:
            return -700  # a cut: gone from one frame to the next, between two detections
        return 0

    h, w = frames[0].shape[:2]
    clip, boxes = [], []
    for i in range(n):
        f, t, dx = frames[i % len(frames)], truth[i % len(frames)], dx_at(i)
        edge = np.concatenate([f[:5].reshape(-1, 3), f[-5:].reshape(-1, 3)])
        bg = tuple(int(v) for v in np.median(edge, axis=0))
        clip.append(cv2.warpAffine(f, np.float32([[1, 0, dx], [0, 1, 0]]), (w, h), borderMode=cv2.BORDER_CONSTANT,
                                   borderValue=bg))
        bb = []
        for face in t:
            x, y, bw, bh = face["bbox"]
            x0, x1 = max(0, x + dx), min(w, x + dx + bw)
            if x1 > x0:
                bb.append((x0, y, x1 - x0, bh))
        boxes.append(bb)
    return clip, boxes


def covered(box: Sequence[int], truths: Sequence[Sequence[int]]) -> float:
    """The largest share of ``box``'s area that one true (visible) face box covers: 0 = a box on nothing."""
    fx, fy, fw, fh = box
    best = 0.0
    for x, y, w, h in truths:
        inter = max(0, min(fx + fw, x + w) - max(fx, x)) * max(0, min(fy + fh, y + h) - max(fy, y))
        best = max(best, inter / float(fw * fh))
    return best
