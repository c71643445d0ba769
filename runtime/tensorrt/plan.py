"""Decide, before touching TensorRT, which network flags, builder flags and profile a build uses.

One pure function turns (what the user asked, what this TensorRT can do, what the ONNX holds) into a
:class:`BuildPlan`. The builder applies the plan to the real API and the trtexec printer renders the
same plan as a command line, so both always agree. Every refusal here is a :class:`ModelError` that
says what to pass instead; nothing is silently downgraded (a change like "DLA needs static shapes"
is a warning in the plan that the builder logs).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from fer_edge.runtime.backends.base import INPUT_NAME
from fer_edge.runtime.errors import ConfigError, ModelError

from .capabilities import Capabilities
from .onnx_model import OnnxModelInfo

PRECISIONS = ("best", "int8", "fp16", "fp32")
#: DLA limits (TensorRT "DLA layer restrictions" page): static shapes, batch ≤ 4096.
DLA_MAX_BATCH = 4096
Shape = Tuple[int, ...]


def parse_batch(batch: Sequence[int] | str) -> Tuple[int, int, int]:
    """``"1,8,32"`` / ``[1, 8, 32]`` → (min, opt, max); one value → static; two → (min, max, max)."""
    if isinstance(batch, str):
        try:
            values = [int(v) for v in batch.replace(" ", "").split(",") if v]
        except ValueError as exc:
            raise ConfigError(f"--batch {batch!r}: expected integers like 1,8,32") from exc
    else:
        values = [int(v) for v in batch]
    if not 1 <= len(values) <= 3:
        raise ConfigError(f"--batch {batch!r}: give 1 to 3 sizes (min,opt,max), e.g. 1,8,32")
    if len(values) == 1:
        values = values * 3
    elif len(values) == 2:
        values = [values[0], values[1], values[1]]
    lo, opt, hi = values
    if lo < 1 or not lo <= opt <= hi:
        raise ConfigError(f"--batch {batch!r}: need 1 ≤ min ≤ opt ≤ max")
    return lo, opt, hi


@dataclass(frozen=True)
class BuildOptions:
    """What the user asked for (CLI flags or the ``build:`` config section)."""

    precision: str = "best"
    batch: Tuple[int, int, int] = (1, 8, 32)
    workspace_mb: int = 1024
    timing_cache: Optional[Path] = None
    dla_core: Optional[int] = None
    gpu_fallback: bool = False
    calib_cache: Optional[Path] = None
    strongly_typed: bool = False     # 10.x only: build Q/DQ models as strongly typed networks

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ConfigError(f"--precision {self.precision!r} is not one of {list(PRECISIONS)}")
        if self.workspace_mb < 1:
            raise ConfigError(f"--workspace-mb {self.workspace_mb}: must be ≥ 1")
        if self.dla_core is not None and self.dla_core < 0:
            raise ConfigError(f"--dla-core {self.dla_core}: must be ≥ 0")
        if self.gpu_fallback and self.dla_core is None:
            raise ConfigError("--gpu-fallback only applies to DLA builds; add --dla-core N")
        object.__setattr__(self, "batch", parse_batch(self.batch))


@dataclass
class BuildPlan:
    """The flags and shapes one build uses; names are TensorRT enum member names."""

    generation: str
    network_flags: Tuple[str, ...]
    builder_flags: Tuple[str, ...]
    strongly_typed: bool
    precision: str                          # what the engine computes in: fp32, fp16 or int8
    input_name: str
    profile: Dict[str, Tuple[Shape, Shape, Shape]]
    workspace_mb: int
    timing_cache: Optional[Path] = None
    calib_cache: Optional[Path] = None      # only when an implicit-INT8 calibrator reads it
    dla_core: Optional[int] = None
    warnings: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    def shapes(self) -> Tuple[Shape, Shape, Shape]:
        return self.profile[self.input_name]


def _refuse(msg: str) -> None:
    raise ModelError(msg)


def _precision_flags(opts: BuildOptions, model: OnnxModelInfo, plan_notes: List[str]) -> Tuple[List[str], str, bool]:
    """Weakly typed builds (8.x, 10.x): (builder flags, engine precision, needs calibrator)."""
    p = opts.precision
    if model.qdq:
        if p in ("fp16", "fp32"):
            _refuse(f"{model.path} is an INT8 Q/DQ model; for --precision {p} pass the FP32 ONNX from "
                    "`fer-edge export` instead")
        # TensorRT runs Q/DQ layers in INT8 only with the INT8 flag set; FP16 lets the rest use halves.
        return (["INT8", "FP16"] if p == "best" else ["INT8"]), "int8", False
    has_cache = opts.calib_cache is not None
    if p == "fp32":
        return [], "fp32", False
    if p == "fp16":
        return ["FP16"], "fp16", False
    if p == "int8" and not has_cache:
        _refuse(f"INT8 from the FP32 model {model.path} needs its ranges: pass --calib-cache (written by "
                "`fer-edge calibrate`) or build the Q/DQ model (model.int8.onnx) instead")
    if p == "best" and not has_cache:
        plan_notes.append("precision best → FP16: the model has no Q/DQ nodes and no --calib-cache was given")
        return ["FP16"], "fp16", False
    return (["INT8", "FP16"] if p == "best" else ["INT8"]), "int8", True


def make_plan(opts: BuildOptions, caps: Capabilities, model: OnnxModelInfo) -> BuildPlan:
    """Turn options + capabilities + model into flags and shapes, or refuse with what to do instead."""
    notes: List[str] = []
    warnings: List[str] = []
    lo, opt, hi = opts.batch
    dla = opts.dla_core is not None
    calib_cache = opts.calib_cache

    if caps.strongly_typed_only:
        if calib_cache is not None:
            _refuse(f"TensorRT {caps.version} has no INT8 calibrators, so --calib-cache cannot be used; build "
                    "the Q/DQ model written by `fer-edge calibrate` (model.int8.onnx) instead")
        if dla:
            _refuse(f"DLA builds on TensorRT {caps.version} need a strongly typed FP16/INT8 network, which "
                    "fer-edge does not produce; build for DLA with TensorRT 8.6/10.x (JetPack 6)")
        if opts.precision == "int8" and not model.qdq:
            _refuse(f"TensorRT {caps.version} quantizes only through Q/DQ nodes; pass the Q/DQ model written by "
                    "`fer-edge calibrate` (model.int8.onnx) for INT8")
        if opts.precision == "fp16":
            _refuse(f"TensorRT {caps.version} takes precision from the ONNX tensor types and has no FP16 flag; "
                    "fer-edge exports FP32/INT8 models, so use --precision best (or fp32)")
        if opts.precision == "fp32" and model.qdq:
            _refuse(f"{model.path} is an INT8 Q/DQ model; for --precision fp32 pass the FP32 ONNX instead")
        if opts.strongly_typed:
            notes.append("networks are always strongly typed on this TensorRT")
        network_flags: Tuple[str, ...] = ()
        builder_flags: List[str] = []
        strongly_typed = True
        precision = "int8" if model.qdq else "fp32"
        if not model.qdq:
            notes.append(f"TensorRT {caps.version}: precision follows the ONNX types, so this FP32 model builds an "
                         "FP32 engine; build the Q/DQ model from `fer-edge calibrate` for INT8")
    else:
        if dla and model.qdq:
            _refuse(f"{model.path} is a Q/DQ model, which DLA cannot run; pass the FP32 ONNX from "
                    "`fer-edge export` with --calib-cache (the cache written by `fer-edge calibrate`)")
        if dla and opts.precision == "fp32":
            _refuse("DLA runs FP16 or INT8 only; use --precision fp16, int8 or best")
        use_strong = opts.strongly_typed and caps.strongly_typed_flag and not dla
        if opts.strongly_typed and not caps.strongly_typed_flag:
            _refuse(f"--strongly-typed needs TensorRT 10 or newer; this is {caps.version}")
        if opts.strongly_typed and dla:
            _refuse("--strongly-typed and --dla-core do not go together; DLA needs a weakly typed build")
        if use_strong:
            if not model.qdq and opts.precision not in ("best", "fp32"):
                _refuse(f"a strongly typed build takes precision from the ONNX; {model.path} is FP32, so "
                        f"--precision {opts.precision} cannot apply (drop --strongly-typed)")
            if calib_cache is not None:
                _refuse("--calib-cache needs a weakly typed build; drop --strongly-typed")
            network_flags = ("STRONGLY_TYPED",)
            builder_flags, precision, needs_calib = [], ("int8" if model.qdq else "fp32"), False
            if not model.qdq:
                notes.append("strongly typed: precision follows the ONNX types, so this FP32 model builds FP32")
        else:
            network_flags = ("EXPLICIT_BATCH",) if caps.explicit_batch_flag and not caps.strongly_typed_flag else ()
            builder_flags, precision, needs_calib = _precision_flags(opts, model, notes)
        strongly_typed = use_strong
        if calib_cache is not None and not needs_calib:
            warnings.append(f"--calib-cache {calib_cache} is not used: "
                            + ("the model carries its own Q/DQ scales" if model.qdq
                               else f"precision {precision} needs no INT8 ranges"))
            calib_cache = None
        if needs_calib and not caps.int8_calibrator:
            _refuse(f"TensorRT {caps.version} has no IInt8EntropyCalibrator2; build the Q/DQ model instead")
        if needs_calib and caps.strongly_typed_flag:
            warnings.append("implicit INT8 calibration is deprecated since TensorRT 10.1; prefer the Q/DQ model")

    if dla:
        if not caps.dla:
            _refuse(f"TensorRT {caps.version} has no DLA device type; drop --dla-core")
        if (lo, opt, hi) != (opt, opt, opt):
            warnings.append(f"DLA needs static shapes: building batch {opt} only (min = opt = max), "
                            f"not {lo},{opt},{hi}; pass --batch N to choose")
            lo = hi = opt
        if opt > DLA_MAX_BATCH:
            _refuse(f"DLA batch {opt} exceeds {DLA_MAX_BATCH}; pass a smaller --batch")
        if opts.gpu_fallback:
            builder_flags = list(builder_flags) + ["GPU_FALLBACK"]

    c, h, w = model.input_chw
    profile = {INPUT_NAME: ((lo, c, h, w), (opt, c, h, w), (hi, c, h, w))}
    return BuildPlan(generation=caps.generation, network_flags=tuple(network_flags),
                     builder_flags=tuple(builder_flags), strongly_typed=strongly_typed, precision=precision,
                     input_name=INPUT_NAME, profile=profile, workspace_mb=opts.workspace_mb,
                     timing_cache=opts.timing_cache, calib_cache=calib_cache, dla_core=opts.dla_core,
                     warnings=warnings, notes=notes)
