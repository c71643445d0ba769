"""``fer-edge info``: what this machine offers fer-edge (versions, backends, devices).

Never imports torch unless it is installed, and then only to report it; never imports a stage. What it
reports is :func:`fer_edge.evaluation.machine.collect`, which ``fer-edge bench`` records with every run.
"""
from __future__ import annotations

import argparse
import json

from fer_edge.evaluation.machine import collect

HELP = "show versions, backends and devices available on this machine"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")


def run(args: argparse.Namespace) -> int:
    info = collect()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    rows = [
        ("fer-edge", info["fer_edge"]), ("python", info["python"]), ("platform", info["platform"]),
        ("cpu", f"{info['cpu']['model']} ({info['cpu']['cores']} cores)"),
        ("numpy", info["numpy"]), ("opencv", info["opencv"]), ("onnx", info["onnx"]),
        ("onnxruntime", info["onnxruntime"]),
        ("  providers", ", ".join(info["onnxruntime_providers"]) or None),
        ("torch", info["torch"]), ("tensorrt", info["tensorrt"]), ("pycuda", info["pycuda"]),
        ("cuda device", info["cuda_device"]),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value if value is not None else '— not available'}")
    return 0
