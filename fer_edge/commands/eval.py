"""``fer-edge eval``: accuracy of any artefact (checkpoint, ONNX, INT8 ONNX, engine) on a labelled dataset."""
from __future__ import annotations

import argparse
import logging

HELP = "evaluate a checkpoint, ONNX, INT8 ONNX or engine on a labelled dataset"
DESCRIPTION = """\
Evaluate one artefact on a labelled dataset and write metrics.json (accuracy, macro-F1, per-class
precision/recall/F1, weak-vs-strong expressions where intensity is known), confusion.json,
confusion.png and predictions.csv to --out.

The data is preprocessed with the MODEL's contract (labels, preprocessing, crop policy), exactly
as deployment will feed it. Dataset labels are matched to the model's by name.

examples:
  fer-edge eval --model runs/default/train/dann/best.pt --data TEST_FOLDER --out runs/eval/pt
  fer-edge eval --model model.int8.onnx --reference model.onnx --data TEST_FOLDER --out runs/eval/int8
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


def run(args: argparse.Namespace) -> int:
    from fer_edge.cli import load_args_config
    from fer_edge.evaluation.evaluate import evaluate

    cfg = load_args_config(args)
    batch = args.batch_size or cfg.eval.batch_size
    log.info("eval started: %s on %s", args.model, args.data)
    res = evaluate(args.model, args.data, out_dir=args.out, backend=args.backend, batch_size=batch,
                   reference=args.reference, threshold=args.threshold, fmt=args.format, detect=args.detect,
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
    skipped = {k: v for k, v in res.skipped.items() if v}
    if skipped:
        print(f"skipped samples: {skipped}")
    print(f"wrote {args.out}/metrics.json, confusion.json, confusion.png, predictions.csv")
    return 0
