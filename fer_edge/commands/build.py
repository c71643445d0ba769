"""``fer-edge build``: TensorRT engine + sidecar manifest from a fer-edge ONNX model, on the device.

Runs with only the runtime extra and TensorRT installed (never imports torch). Without TensorRT,
``--print-trtexec`` prints the equivalent ``trtexec`` command, so nothing blocks the user.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from fer_edge.cli import add_config_arguments, load_args_config

HELP = "build a TensorRT engine from an ONNX model (run it on the device)"
DESCRIPTION = """Build a TensorRT engine (plus a .json sidecar manifest) from a fer-edge ONNX model.

examples:
  fer-edge build --model model.int8.onnx --out model.engine
  fer-edge build --model model.onnx --precision fp16 --batch 1,8,32 --timing-cache trt.cache
  fer-edge build --model model.onnx --calib-cache model.calib --dla-core 0 --gpu-fallback --batch 8
  fer-edge build --model model.int8.onnx --print-trtexec --trt-version 8.6   # no TensorRT needed
"""
log = logging.getLogger("fer_edge.build")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="ONNX from `fer-edge export` or `fer-edge calibrate` (with .json)")
    p.add_argument("--out", default=None, help="engine path (default: the model path with .engine)")
    p.add_argument("--precision", choices=["best", "int8", "fp16", "fp32"], default=None,
                   help="best: INT8 where the model has Q/DQ or a calibration cache, else FP16 (default: config)")
    p.add_argument("--batch", default=None, metavar="MIN,OPT,MAX",
                   help="optimization profile batch sizes, e.g. 1,8,32 (one value = static)")
    p.add_argument("--workspace-mb", type=int, default=None, help="builder workspace pool in MiB")
    p.add_argument("--timing-cache", default=None, metavar="FILE", help="load and save a TensorRT timing cache")
    p.add_argument("--dla-core", type=int, default=None, metavar="N", help="build for DLA core N (Jetson Orin)")
    p.add_argument("--gpu-fallback", action="store_true", default=None,
                   help="with --dla-core: let layers DLA cannot run fall back to the GPU")
    p.add_argument("--calib-cache", default=None, metavar="FILE",
                   help="TensorRT calibration cache from `fer-edge calibrate` (implicit INT8 on 8.6/10.x)")
    p.add_argument("--strongly-typed", action="store_true", default=None,
                   help="TensorRT 10.x: strongly typed network (precision from the Q/DQ model)")
    p.add_argument("--print-trtexec", action="store_true",
                   help="print the equivalent trtexec command and exit (works without TensorRT)")
    p.add_argument("--trt-version", default=None, metavar="X.Y",
                   help="with --print-trtexec: target TensorRT version (default: the installed one, else 10.3)")
    add_config_arguments(p)


def stage_call(args: argparse.Namespace):
    """The ``build:`` section with this command line's flags on top (the pipeline builds the same call)."""
    from fer_edge.stages import build

    return build.from_config(load_args_config(args), precision=args.precision, batch=args.batch,
                             workspace_mb=args.workspace_mb, timing_cache=args.timing_cache, dla_core=args.dla_core,
                             gpu_fallback=args.gpu_fallback, calib_cache=args.calib_cache,
                             strongly_typed=args.strongly_typed)


def _print_trtexec(args: argparse.Namespace, call, out: Path) -> int:
    from fer_edge.stages.build import trtexec_line

    line = trtexec_line(call, args.model, out, trt_version=args.trt_version)
    log.info("run it on the device. Its engine has no fer-edge sidecar, so `fer-edge run` will not load it: "
             "use `fer-edge build` where TensorRT's Python bindings exist")
    print(line)
    return 0


def run(args: argparse.Namespace) -> int:
    from fer_edge.runtime.artefacts import engine_path

    call = stage_call(args)
    model = Path(args.model)
    out = Path(args.out) if args.out else engine_path(model)
    if args.print_trtexec:
        return _print_trtexec(args, call, out)
    result = call(model, out)
    extra = result.manifest.extra
    print(f"engine {result.engine} ({result.size_bytes / 1e6:.2f} MB, {result.plan.precision}, "
          f"TensorRT {extra['tensorrt_version']}, {extra['device']['name']}) built in {result.seconds:.1f} s; "
          f"manifest {result.engine}.json")
    return 0
