"""``build:`` → the call of :func:`fer_edge.runtime.tensorrt.build_engine` (``fer-edge build`` and the pipeline).

The same :class:`~fer_edge.runtime.tensorrt.BuildOptions` also give the ``trtexec`` line where TensorRT is
absent, so the command the pipeline prints is the engine the verb would build.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence, Union

from .call import StageCall, pick


def from_config(cfg: Any, *, precision: Optional[str] = None, batch: Union[str, Sequence[int], None] = None,
                workspace_mb: Optional[int] = None, timing_cache: Optional[str] = None,
                dla_core: Optional[int] = None, gpu_fallback: Optional[bool] = None,
                calib_cache: Optional[str] = None, strongly_typed: Optional[bool] = None) -> StageCall:
    """Every key of ``build:`` in one ``BuildOptions``; a flag that is not ``None`` wins."""
    from fer_edge.runtime.tensorrt.plan import BuildOptions, parse_batch

    b = cfg.build
    timing, calib = pick(timing_cache, b.timing_cache), pick(calib_cache, b.calib_cache)
    options = BuildOptions(precision=pick(precision, b.precision), batch=parse_batch(pick(batch, b.batch)),
                           workspace_mb=int(pick(workspace_mb, b.workspace_mb)),
                           timing_cache=Path(timing) if timing else None, dla_core=pick(dla_core, b.dla_core),
                           gpu_fallback=bool(pick(gpu_fallback, b.gpu_fallback)),
                           calib_cache=Path(calib) if calib else None,
                           strongly_typed=bool(pick(strongly_typed, b.strongly_typed)))
    return StageCall("build", "fer_edge.runtime.tensorrt.build:build_engine", {"options": options})


def trtexec_line(call: StageCall, model: Union[str, Path], out: Union[str, Path], trt_version: Optional[str] = None
                 ) -> str:
    """The ``trtexec`` command equivalent to ``call`` (works without TensorRT)."""
    from fer_edge.runtime.tensorrt import trtexec_command

    return trtexec_command(model, out, call.settings["options"], trt_version=trt_version)
