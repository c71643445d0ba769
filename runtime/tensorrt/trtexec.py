"""Render a :class:`BuildPlan` as the equivalent ``trtexec`` command.

So that nothing blocks a user whose Python cannot import TensorRT (a container without the bindings,
a JetPack whose python3 differs from the venv): the same plan the builder would apply, as a
command for the ``trtexec`` binary that ships with every TensorRT (``/usr/src/tensorrt/bin`` on
Jetson). Flags by generation: 8.x ``--int8/--fp16``; 10.x the same, or ``--stronglyTyped``;
11.x neither (networks are always strongly typed and the precision flags are gone).
"""
from __future__ import annotations

import shlex
from pathlib import Path
from typing import List, Union

from .capabilities import Capabilities
from .plan import BuildPlan

TRTEXEC_HINT = "/usr/src/tensorrt/bin/trtexec"   # where JetPack installs it


def _shape(s) -> str:
    return "x".join(str(d) for d in s)


def trtexec_argv(model: Union[str, Path], out: Union[str, Path], plan: BuildPlan, caps: Capabilities,
                    trtexec: str = "trtexec") -> List[str]:
    """The argv of the ``trtexec`` run equivalent to building ``plan`` with TensorRT ``caps``."""
    cmd = [trtexec, f"--onnx={model}", f"--saveEngine={out}"]
    if plan.strongly_typed and caps.strongly_typed_flag and not caps.strongly_typed_only:
        cmd.append("--stronglyTyped")
    flag_map = {"INT8": "--int8", "FP16": "--fp16"}
    cmd += [flag_map[f] for f in plan.builder_flags if f in flag_map]
    lo, opt, hi = plan.shapes()
    name = plan.input_name
    cmd += [f"--minShapes={name}:{_shape(lo)}", f"--optShapes={name}:{_shape(opt)}",
            f"--maxShapes={name}:{_shape(hi)}"]
    # 8.x reads the pool size in MiB without a suffix; 10.x+ documents the B/K/M/G suffixes.
    unit = "" if caps.generation == "8.x" else "M"
    cmd.append(f"--memPoolSize=workspace:{plan.workspace_mb}{unit}")
    if plan.timing_cache is not None:
        cmd.append(f"--timingCacheFile={plan.timing_cache}")
    if plan.calib_cache is not None:
        cmd.append(f"--calib={plan.calib_cache}")
    if plan.dla_core is not None:
        cmd.append(f"--useDLACore={plan.dla_core}")
        if "GPU_FALLBACK" in plan.builder_flags:
            cmd.append("--allowGPUFallback")
    return cmd


def format_command(argv: List[str]) -> str:
    """One shell-quoted line, ready to paste."""
    return shlex.join(argv)
