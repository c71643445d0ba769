"""``fer-edge eval``: accuracy of any artefact (checkpoint, ONNX, INT8 ONNX, engine) on a labelled dataset."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

HELP = "evaluate a checkpoint, ONNX, INT8 ONNX or engine on a labelled dataset"
DESCRIPTION = """\
Evaluate one artefact on a labelled dataset and write metrics.json (accuracy, macro-F1, per-class
precision/recall/F1, weak-vs-strong expressions where intensity is known), confusion.json,
confusion.png and predictions.csv to --out.

The data is preprocessed with the MODEL's contract (labels, preprocessing, crop policy), exactly
as deployment will feed it. Dataset labels are matched to the model's by name.

examples:
  fer-edge eval --model runs/default/train/pixel_da/best.pt --data TEST_FOLDER --out runs/eval/pt
  fer-edge eval --model runs/default/calibrate/model.int8.onnx --reference runs/default/export/model.onnx \\
      --data TEST_FOLDER --out runs/eval/int8
  fer-edge eval --model model.engine --data SCENES_OR_VIDEO_WITH_frames.jsonl --detect --out runs/eval/trt
"""

log = logging.getLogger("fer_edge.eval")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from fer_edge.cli import add_config_arguments

    p.add_argument("--model", required=True, help=".pt checkpoint, .onnx (FP32 or INT8) or TensorRT engine")
    p.add_argument("--data", required=True, help="labelled dataset (any loader format), or footage with --detect")
    p.add_argument("--out", required=True, help="output folder for metrics.json, confusion.{json,png}")
    p.add_argument("--format", default="auto", help="dataset format for the loader (default: auto-detect)")
    p.add_argument("--detect", action="store_true",
                   help="DATA is frames/video: detect and crop faces with the model's crop policy")
    p.add_argument("--backend", default="auto", choices=["auto", "torch", "onnxruntime", "tensorrt"],
                   help="inference backend (auto: torch for .pt, TensorRT for engines, else ONNX Runtime)")
    p.add_argument("--reference", default=None,
                   help="a second artefact of the same model (e.g. the FP32 ONNX) to report argmax agreement")
    p.add_argument("--batch-size", type=int, default=None, help="inference batch (default: eval.batch_size)")
    p.add_argument("--threshold", type=float, default=0.5,
                   help="intensity at or above which an expression counts as strong (default 0.5)")
    add_config_arguments(p)


def looks_like_frames(data: str, sample: int = 12) -> str:
    """Why the images of ``data`` look like whole camera frames rather than face crops ("" when they do not).

    A crop is about square and its face fills it; a frame is wide (4:3, 16:9) and large, or its face — when
    the runtime's detector finds one — covers a small part of it. Scored on an even sample of the folder.
    """
    import cv2

    from fer_edge.runtime.detect import HaarDetector
    from fer_edge.runtime.sources import list_images

    root = Path(data)
    if not root.is_dir():
        return ""
    files = list_images(root)
    if not files:
        return ""
    picked = [files[int(i)] for i in np.linspace(0, len(files) - 1, min(sample, len(files)))]
    detector = HaarDetector(min_face=20, detect_width=640)
    frame_like, seen, example = 0, 0, ""
    for path in dict.fromkeys(picked):
        img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if img is None:
            continue
        seen += 1
        h, w = img.shape[:2]
        wide = max(h, w) / max(1, min(h, w)) >= 1.25 and min(h, w) >= 200
        faces = [] if wide else detector.detect(img)
        small_face = bool(faces) and max(max(f.bbox[2], f.bbox[3]) for f in faces) < 0.45 * min(h, w)
        if wide or small_face:
            frame_like += 1
            example = example or f"{w}×{h}" + (", the face a small part of it" if small_face else "")
    if seen and frame_like * 2 > seen:
        return (f"{frame_like} of {seen} sampled images of {data} look like whole camera frames, not face crops "
                f"(e.g. {example}); they are scored as if each were a face — add --detect to cut the faces "
                "out first with the model's crop policy")
    return ""


def baseline_note(res) -> str:
    """A plain sentence when the accuracy is no better than always answering the commonest class, or chance."""
    support = {lab: int(v.get("support", 0)) for lab, v in (res.per_class or {}).items()}
    n = sum(support.values()) or int(res.n or 0)
    if not n:
        return ""
    major, count = max(support.items(), key=lambda kv: kv[1]) if support else ("", 0)
    majority = count / n
    chance = 1.0 / max(1, len(res.labels))
    if res.accuracy <= majority + 1e-9:
        return (f"note: accuracy {res.accuracy:.3f} is at or below the majority-class rate {majority:.3f} (always "
                f"answering {major!r} scores that) — the model does not beat guessing on this data")
    if res.accuracy <= chance + 1e-9:
        return (f"note: accuracy {res.accuracy:.3f} is at or below chance ({chance:.3f} for {len(res.labels)} "
                "classes) — the model does not beat guessing on this data")
    return ""


def stage_call(args: argparse.Namespace):
    """The ``eval:`` section with this command line's flags on top (the pipeline builds the same call)."""
    from fer_edge.cli import load_args_config
    from fer_edge.stages import evaluate

    return evaluate.from_config(load_args_config(args), batch_size=args.batch_size or None)


def run(args: argparse.Namespace) -> int:
    call = stage_call(args)
    if not args.detect:
        why = looks_like_frames(args.data)
        if why:
            log.warning(why)
    log.info("eval started: %s on %s", args.model, args.data)
    res = call(args.model, args.data, out_dir=args.out, backend=args.backend, reference=args.reference,
               threshold=args.threshold, fmt=args.format, detect=args.detect,
               progress=not getattr(args, "quiet", False))
    line = f"{res.backend}: accuracy {res.accuracy:.4f}  macro-F1 {res.macro_f1:.4f}  n={res.n}"
    if res.reference:
        line += f"  agreement with reference {res.reference['agreement']:.4f}"
    if res.intensity:
        line += (f"  weak {res.intensity['weak']['accuracy']:.3f} (n={res.intensity['weak']['n']})"
                 f" / strong {res.intensity['strong']['accuracy']:.3f} (n={res.intensity['strong']['n']})")
    print(line)
    if res.detection:
        d = res.detection
        missed = f", {d.get('missed', 0)} of {d['true_faces']} true faces missed" if "true_faces" in d else ""
        print(f"faces: {d.get('detected', 0)} detected and scored in {d.get('frames', 0)} frames{missed}")
    note = baseline_note(res)
    if note:
        print(note)
    skipped = {k: v for k, v in res.skipped.items() if v}
    if skipped:
        print(f"skipped samples: {skipped}")
    from fer_edge.data.sources import is_synthetic

    if is_synthetic(args.data):
        print("note: these are synthetic faces (the embedded synthetic world's cartoon heads) — the accuracy "
              "says nothing about real faces")
    print(f"wrote {args.out}/metrics.json, confusion.json, confusion.png, predictions.csv")
    return 0
