"""``fer-edge bench``: every inference path side by side in one run, against the machine's GEMM peak."""
from __future__ import annotations

import argparse
import logging
import shlex

HELP = "benchmark torch eager, ORT FP32, ORT INT8 and TensorRT side by side (latency, throughput, RSS, MACs)"
DESCRIPTION = """\
Measure, in ONE run, each path in its own process and all paths interleaved (a slice of every
path per round, so a load change on a shared machine hits all paths alike): batch-1 latency
p50/p95/p99, throughput at batch 1/8/32, peak RSS, model size, MACs per image (from the ONNX
graph), achieved GMAC/s as a fraction of this machine's FP32/INT8 GEMM peak (measured in the same
run), and the end-to-end runtime FPS on a synthetic video. Writes bench.json, bench.md (Markdown
table) and PNG charts to --out. The headline is the ratios (INT8 vs torch eager, INT8 vs FP32):
absolute times vary by machine.

On the CPU the ort-int8 path runs MODEL.int8-cpu.onnx (ONNX Runtime's U8S8 layout, calibrated with
MODEL.int8.onnx from the same ranges) when calibrate wrote it, as the runtime does; the report's node
profile shows how many nodes ran int8 kernels for that file and for the TensorRT Q/DQ model as given.
--accuracy-data scores the FP32 and INT8 paths on a labelled folder in the same run.

--int8 defaults to MODEL.int8.onnx next to MODEL or an INT8 nearby whose manifest names MODEL as
its parent; --checkpoint to the .pt nearby whose hash MODEL's manifest records. Paths that cannot
run here (no TensorRT) are listed as skipped, with the reason.

examples:
  fer-edge bench --model runs/default/export/model.onnx --out runs/bench
  fer-edge bench --model model.onnx --int8 model.int8.onnx --checkpoint best.pt --compare torch,ort-int8
  fer-edge bench --model model.onnx --engine model.engine --out runs/bench   # on the device
"""

log = logging.getLogger("fer_edge.bench")


def _csv_ints(text: str):
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from exc


def add_arguments(p: argparse.ArgumentParser) -> None:
    from fer_edge.cli import add_config_arguments

    p.add_argument("--model", default=None, help="FP32 ONNX model (from `fer-edge export`)")
    p.add_argument("--int8", default=None, help="INT8 ONNX (default: MODEL.int8.onnx when it exists)")
    p.add_argument("--checkpoint", default=None, help="checkpoint for the torch eager path (default: found "
                                                      "next to MODEL by its manifest)")
    p.add_argument("--engine", default=None, help="TensorRT engine for the trt path (device only)")
    p.add_argument("--compare", default=None,
                   help="comma-separated paths out of torch,ort-fp32,ort-int8,trt (default: bench.compare)")
    p.add_argument("--out", required=True, help="output folder for bench.json, bench.md and charts")
    p.add_argument("--iters", type=int, default=None, help="timed batch-1 calls (default: bench.iters)")
    p.add_argument("--warmup", type=int, default=None, help="untimed warm-up calls (default: bench.warmup)")
    p.add_argument("--batches", type=_csv_ints, default=None, help="throughput batch sizes (default: 1,8,32)")
    p.add_argument("--video-frames", type=int, default=None,
                   help="frames of the synthetic video for end-to-end FPS; 0 skips (default: bench.video_frames)")
    p.add_argument("--peak-size", type=int, default=1024, help="GEMM size for the peak measurement (default 1024)")
    p.add_argument("--rounds", type=int, default=5,
                   help="paths are measured interleaved, a slice each per round (default 5 rounds)")
    p.add_argument("--threads", type=int, default=None, help="threads for every path (default: all cores)")
    p.add_argument("--accuracy-data", default=None, metavar="LABELLED_DIR",
                   help="also score ort-fp32 and ort-int8 on this labelled folder (accuracy, INT8 drop)")
    p.add_argument("--profile-runs", type=int, default=10,
                   help="runs of ONNX Runtime's profiler per ORT model for the node profile (0: none)")
    p.add_argument("--doc", default=None,
                   help="also write the Markdown into this file between bench markers, keeping the rest "
                        "(e.g. docs/results/backend-speed.md; used by `make bench`)")
    p.add_argument("--in-process", action="store_true",
                   help="measure every path in this process (faster; peak RSS is then not per path)")
    add_config_arguments(p)


_FLAGS = ("model", "int8", "checkpoint", "engine", "compare", "out", "iters", "warmup", "batches", "video_frames",
          "peak_size", "threads", "rounds", "accuracy_data", "profile_runs", "doc", "config")


def _command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this run (from the parsed options), for bench.md and BENCHMARKS.md."""
    parts = ["fer-edge", "bench"]
    for name in _FLAGS:
        value = getattr(args, name, None)
        if value is None or (name, value) in (("peak_size", 1024), ("rounds", 5), ("profile_runs", 10)):
            continue
        if isinstance(value, list):
            value = ",".join(map(str, value))
        parts += [f"--{name.replace('_', '-')}", shlex.quote(str(value))]
    if args.in_process:
        parts.append("--in-process")
    if args.overrides:
        parts += ["--set"] + [shlex.quote(o) for o in args.overrides]
    return " ".join(parts)


def check_models(args: argparse.Namespace) -> None:
    """Open every model the user named before anything is measured: a truncated or foreign file is one
    ``ModelError`` line now, not a 15 s run ending in a table of dashes."""
    from pathlib import Path

    from fer_edge.runtime.errors import ModelError
    from fer_edge.runtime.model import describe_onnx

    for flag, path in (("--model", args.model), ("--int8", args.int8)):
        if path is None:
            continue
        if not Path(path).is_file():
            raise ModelError(f"{flag} {path}: model file not found")
        describe_onnx(path)  # loads it in ONNX Runtime and reads its contract; a broken file raises ModelError
    if args.engine is not None and not Path(args.engine).is_file():
        raise ModelError(f"--engine {args.engine}: engine file not found")
    if args.checkpoint is not None and not Path(args.checkpoint).is_file():
        raise ModelError(f"--checkpoint {args.checkpoint}: checkpoint file not found")


def nothing_measured(res) -> str:
    """Why no path produced a figure (``""`` when at least one did): such a run must not exit 0."""
    paths = getattr(res, "paths", {}) or {}
    if any(r.status == "ok" for r in paths.values()):
        return ""
    return "; ".join(f"{name}: {r.status} ({r.reason})" for name, r in paths.items()) or "no path was requested"


def stage_call(args: argparse.Namespace):
    """The ``bench:`` section with this command line's flags on top (the pipeline builds the same call)."""
    from fer_edge.cli import load_args_config
    from fer_edge.stages import bench

    compare = [c.strip() for c in args.compare.split(",")] if args.compare else None
    return bench.from_config(load_args_config(args), compare=compare, warmup=args.warmup, iters=args.iters or None,
                             batches=args.batches or None, video_frames=args.video_frames)


def run(args: argparse.Namespace) -> int:
    from fer_edge.runtime.errors import ModelError

    call = stage_call(args)
    check_models(args)
    log.info("bench started: %s", ", ".join(call.settings["compare"]))
    res = call(model=args.model, int8=args.int8, checkpoint=args.checkpoint, engine=args.engine, out_dir=args.out,
               isolate=not args.in_process, peak_size=args.peak_size, threads=args.threads,
               command=_command_line(args), rounds=args.rounds, accuracy_data=args.accuracy_data,
               profile_runs=args.profile_runs)
    from fer_edge.evaluation.bench_report import markdown, update_doc

    print(markdown(res))
    print(f"wrote {args.out}/bench.json, bench.md and charts")
    why = nothing_measured(res)
    if why:
        raise ModelError(f"bench measured nothing — {why}; check the models with `fer-edge eval` or rerun with -v")
    if args.doc:
        update_doc(args.doc, markdown(res))
        print(f"updated {args.doc}")
    return 0
