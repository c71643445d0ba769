"""``fer-edge calibrate``: FP32 ONNX → INT8 Q/DQ ONNX (TensorRT + CPU) on target-domain faces, behind a gate.

  fer-edge calibrate --model model.onnx --images data/target/unlabelled --out model.int8.onnx
  fer-edge calibrate --model model.onnx --images cabin_frames/ --detect --gate-images cabin_val/ \\
      --eval data/target/val --max-drop 0.5 --compare-source data/source/train

Writes model.int8.onnx (TensorRT's Q/DQ, + .json manifest), model.int8-cpu.onnx (ONNX Runtime's CPU
layout, same ranges), model.int8.cache (TensorRT calibration cache) and the report model.int8.json /
model.int8.md. The gate needs no labels: INT8 must agree with FP32 on the top-1 class of at least
--min-agreement % of held-out target faces (--gate-images, or a quarter of --images held back before
calibration). With --eval (a labelled validation set, never your test split) the accuracy drop is
reported, and gated with --max-drop. A model that fails even after keeping the most sensitive layers
in float is NOT written (exit 1).
"""
from __future__ import annotations

import argparse

from fer_edge.cli import add_config_arguments, load_args_config

HELP = "quantize an ONNX model to INT8 (Q/DQ) on target images; TensorRT cache; accuracy gate"
DESCRIPTION = __doc__


def config_default(section: str, key: str) -> str:
    """The shipped default config's value of ``section.key`` for a help text (never a hard-coded copy)."""
    try:
        from fer_edge.config import load_config

        return repr(getattr(getattr(load_config(None), section), key)).strip("'")
    except Exception:  # noqa: BLE001 - a help text must never fail; say where the value lives instead
        return f"see {section}.{key} in configs/default.yaml"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p)
    p.add_argument("--model", required=True, help="FP32 ONNX from `fer-edge export`")
    p.add_argument("--images", required=True, metavar="DIR",
                   help="unlabelled target-domain face crops (or frames with --detect)")
    p.add_argument("--out", default=None, help="INT8 ONNX to write (default: <model>.int8.onnx)")
    p.add_argument("--method", choices=("entropy", "minmax", "percentile"), default=None,
                   help="range calibration (default: the config's calibrate.method; "
                        f"{config_default('calibrate', 'method')} in the default config)")
    p.add_argument("--num-images", type=int, default=None, help="use at most this many images (default: "
                   f"calibrate.num_images, {config_default('calibrate', 'num_images')})")
    p.add_argument("--min-images", type=int, default=None, help="refuse fewer usable images (default: "
                   f"calibrate.min_images, {config_default('calibrate', 'min_images')})")
    p.add_argument("--gate-images", default=None, metavar="DIR",
                   help="held-out unlabelled target faces for the label-free gate (default: a quarter of --images, "
                        "held back before calibration)")
    p.add_argument("--min-agreement", type=float, default=None,
                   help="gate: INT8 top-1 agreement with FP32 in percent (default: calibrate.min_agreement, "
                        f"{config_default('calibrate', 'min_agreement')})")
    p.add_argument("--eval", default=None, metavar="LABELLED_DIR",
                   help="labelled validation faces (class-named folders; never the test split you report): "
                        "accuracy drop reported")
    p.add_argument("--max-drop", type=float, default=None,
                   help="also gate on the --eval accuracy drop, in points (default: report only)")
    p.add_argument("--no-cpu", action="store_true", help="do not write the CPU INT8 model (model.int8-cpu.onnx)")
    p.add_argument("--detect", action="store_true", default=None,
                   help="images are full frames: crop faces with the runtime's detector")
    p.add_argument("--compare-source", default=None, metavar="SOURCE_DIR",
                   help="also calibrate on source images and report both side by side")
    p.add_argument("--trt-version", default=None, help="TensorRT version for the cache header (default 10.3.0)")


def stage_call(args: argparse.Namespace):
    """The ``calibrate:`` section with this command line's flags on top (the pipeline builds the same call)."""
    from fer_edge.stages import calibrate

    return calibrate.from_config(load_args_config(args), method=args.method, num_images=args.num_images,
                                 min_images=args.min_images, eval=args.eval, max_drop=args.max_drop,
                                 detect=args.detect, compare_source=args.compare_source,
                                 trt_version=args.trt_version, min_agreement=args.min_agreement,
                                 cpu=False if args.no_cpu else None)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fer_edge.runtime.artefacts import int8_path

    call = stage_call(args)
    model = Path(args.model)
    out = args.out or str(int8_path(model))
    result = call(model, args.images, out, gate_images=args.gate_images)
    print(result.report_paths["markdown"].read_text(encoding="utf-8"))
    cpu = f", {result.cpu_path.name}" if result.cpu_path else ""
    print(f"wrote {result.path}{cpu}, {result.cache_path.name} and {result.report_paths['json'].name}")
    return 0
