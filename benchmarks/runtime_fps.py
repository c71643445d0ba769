"""End-to-end FPS and frame latency of ``fer-edge run`` on 640x480 video with one face (ONNX Runtime, CPU).

    OMP_NUM_THREADS=1 python benchmarks/runtime_fps.py [--model FP32.onnx] [--int8 INT8.onnx] [--frames 600]

Without ``--model`` an untrained mobilenet (64x64 gray; the default's architecture until the tenth session, when
configs/default.yaml moved to resnet18 at half width on 48 px -- the published runtime figures were measured with
it, so it stays: pass ``--model`` for the shipped network) is exported and, without ``--int8``, quantized to
Q/DQ INT8 with ``onnxruntime.quantization`` on synthetic face crops: speed does not depend on the weights. The
clip is the synthetic studio world (one face, 640x480). Every combination of precision and detection
mode (sync: Haar in line every N frames; async: Haar in a background thread) runs the whole
pipeline — decode, detect, track, crop, preprocess, infer, smooth, JSONL line built — and reports
FPS (frames / wall time) and per-frame latency percentiles (capture + detect + preprocess + infer
+ post). Needs torch only to make the default model.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np


def make_default_models(work: Path, size: int = 64, backbone: str = "mobilenet") -> Dict[str, Path]:
    """FP32 ONNX (contract in metadata + sidecar) and a static Q/DQ INT8 copy of an untrained FerNet."""
    import warnings

    import onnx
    import torch
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from fer_edge.runtime.backends.base import (
        INPUT_NAME,
        META_CONTRACT,
        META_PRECISION,
        OUTPUT_LOGITS,
        OUTPUT_PROBS,
    )
    from fer_edge.runtime.contract import LABELS, Contract, PreprocessSpec
    from fer_edge.runtime.crop import CropPolicy
    from fer_edge.runtime.manifest import Manifest, write_manifest
    from fer_edge.train.models import ExportWrapper, FerNet, ModelSpec

    work.mkdir(parents=True, exist_ok=True)
    fp32, int8 = work / f"{backbone}{size}.onnx", work / f"{backbone}{size}.int8.onnx"
    spec = PreprocessSpec(size=size, colour="gray", mean=(0.5,), std=(0.25,))
    crop = CropPolicy()
    contract = Contract(labels=LABELS, preprocess=spec, crop=crop.to_dict())
    if not fp32.is_file():
        torch.manual_seed(0)
        net = FerNet(ModelSpec(backbone=backbone, in_channels=1, num_classes=7, feature_dim=128)).eval()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(ExportWrapper(net), torch.zeros(1, *spec.input_shape), str(fp32),
                              input_names=[INPUT_NAME], output_names=[OUTPUT_LOGITS, OUTPUT_PROBS], opset_version=17,
                              dynamo=False, dynamic_axes={INPUT_NAME: {0: "N"}, OUTPUT_LOGITS: {0: "N"},
                                                          OUTPUT_PROBS: {0: "N"}})
        _stamp(onnx, fp32, {META_CONTRACT: json.dumps(contract.to_dict()), META_PRECISION: "fp32"})
        write_manifest(fp32, Manifest(kind="onnx", precision="fp32", labels=list(LABELS),
                                      preprocess=spec.to_dict(), crop=crop.to_dict()))
    if not int8.is_file():
        rng = np.random.default_rng(0)

        class Reader(CalibrationDataReader):
            def __init__(self):
                self.batches = iter([{INPUT_NAME: rng.normal(0, 1, (8, *spec.input_shape)).astype(np.float32)}
                                     for _ in range(8)])

            def get_next(self):
                return next(self.batches, None)

        quantize_static(str(fp32), str(int8), Reader(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=True)
        _stamp(onnx, int8, {META_CONTRACT: json.dumps(contract.to_dict()), META_PRECISION: "int8"})
        write_manifest(int8, Manifest(kind="int8_onnx", precision="int8", labels=list(LABELS),
                                      preprocess=spec.to_dict(), crop=crop.to_dict()))
    return {"fp32": fp32, "int8": int8}


def _stamp(onnx, path: Path, props: Dict[str, str]) -> None:
    model = onnx.load(str(path))
    keep = [p for p in model.metadata_props if p.key not in props]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for k, v in props.items():
        e = model.metadata_props.add()
        e.key, e.value = k, v
    onnx.save(model, str(path))


def synthetic_clip(work: Path, frames: int, seed: int = 0) -> Path:
    """A 640x480 studio clip (the data stage's synthetic world; one face for seed 0), generated once.

    The same clip as ``runtime_accuracy.py --domain studio --frames N --seed S`` uses.
    """
    out = work / f"studio-video-{frames}-s{seed}"
    if not (out / "frames.jsonl").is_file():
        from fer_edge.data.synth import generate

        generate("studio", "video", out, frames, identities=20, seed=seed, workers=1)
    meta = json.loads((out / "synth.json").read_text())
    return out / meta.get("video", "video.mp4")


def bench_one(model: Path, video: Path, mode: str, detect_every: int, threads: int) -> Dict[str, object]:
    from fer_edge.runtime.pipeline import Pipeline

    pipe = Pipeline.from_model(model, detect_every=detect_every, detect_mode=mode, threads=threads)
    for _ in pipe.run(str(video), max_frames=30):  # warm-up: ORT arenas, cascades, decoder
        pass
    n = faces = 0
    for r in pipe.run(str(video)):
        r.to_json()  # what the JSONL writer does per frame
        n += 1
        faces += len(r.faces)
    s = pipe.stats.summary()
    lat = s["latency_ms"]
    return {"precision": pipe.backend.info()["precision"], "detect_mode": mode, "frames": n,
            "frames_with_face": s["frames_with_faces"], "detections": s["detections_run"], "fps": s["fps"],
            "p50_ms": lat["total"]["p50"], "p95_ms": lat["total"]["p95"], "p99_ms": lat["total"]["p99"],
            "stage_p50_ms": {k: v["p50"] for k, v in lat.items() if k != "total"},
            "stage_p99_ms": {k: v["p99"] for k, v in lat.items() if k != "total"}}


def detector_cpu_ms(video: Path, n: int = 60) -> Dict[str, float]:
    """CPU time (not wall) per full-frame Haar scan and per re-detection around a tracked face.

    Process CPU time is robust to other jobs sharing the cores, unlike the wall-clock figures.
    """
    import cv2

    from fer_edge.runtime.detect import HaarDetector, detect_near

    cv2.setNumThreads(1)
    cap = cv2.VideoCapture(str(video))
    frames = [f for ok, f in (cap.read() for _ in range(n)) if ok]
    cap.release()
    det = HaarDetector(min_face=40)
    found = next((d for f in frames for d in det.detect(f)), None)
    out = {}
    t = time.process_time()
    for f in frames:
        det.detect(f)
    out["full_scan_cpu_ms"] = round(1e3 * (time.process_time() - t) / len(frames), 2)
    if found is not None:
        t = time.process_time()
        for f in frames:
            detect_near(det, f, [found.bbox])
        out["near_scan_cpu_ms"] = round(1e3 * (time.process_time() - t) / len(frames), 2)
    cv2.setNumThreads(-1)
    return out


def markdown(rows: List[Dict[str, object]]) -> str:
    head = ("| precision | detection | FPS | p50 ms | p95 ms | p99 ms | frames with a face | detect p99 ms "
            "| infer p50 ms |")
    lines = [head, "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['precision']} | {r['detect_mode']} | {r['fps']:.0f} | {r['p50_ms']:.2f} | "
                     f"{r['p95_ms']:.2f} | {r['p99_ms']:.2f} | {r['frames_with_face']}/{r['frames']} | "
                     f"{r['stage_p99_ms']['detect']:.2f} | {r['stage_p50_ms']['infer']:.2f} |")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="FP32 ONNX (default: untrained default-architecture model)")
    ap.add_argument("--int8", default=None, help="INT8 ONNX (default: Q/DQ of --model's default model)")
    ap.add_argument("--video", default=None, help="640x480 clip (default: synthetic studio clip)")
    ap.add_argument("--frames", type=int, default=600)
    ap.add_argument("--detect-every", type=int, default=5)
    ap.add_argument("--modes", default="sync,async")
    ap.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    ap.add_argument("--work", default="runs/bench-runtime")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    work = Path(args.work)
    models = {}
    if args.model:
        models["fp32"] = Path(args.model)
        if args.int8:
            models["int8"] = Path(args.int8)
    else:
        models = make_default_models(work)
        if args.int8:
            models["int8"] = Path(args.int8)
    video = Path(args.video) if args.video else synthetic_clip(work, args.frames)
    rows = []
    for name, path in models.items():
        for mode in args.modes.split(","):
            t0 = time.perf_counter()
            row = bench_one(path, video, mode, args.detect_every, args.threads)
            row["model"] = str(path)
            rows.append(row)
            print(f"{name} {mode}: {row['fps']:.0f} FPS, p99 {row['p99_ms']:.2f} ms "
                  f"({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    cpu = detector_cpu_ms(video)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    out = {"video": str(video), "detect_every": args.detect_every, "threads": args.threads,
           "cpu_count": os.cpu_count(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
           "load_average": load, "detector_cpu_ms": cpu, "rows": rows}
    print(markdown(rows))
    print(f"\ndetector CPU time per frame (1 thread): {cpu}; load average {load}")
    if args.json:
        from fer_edge.runtime.atomic import atomic_write

        atomic_write(args.json, json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
