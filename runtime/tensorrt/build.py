"""Build a TensorRT engine from a fer-edge ONNX model, on the device that will run it (or print the trtexec line).

The two entry points other stages call: :func:`build_engine` and :func:`trtexec_command`. Both take
a :class:`BuildOptions` or its fields as keywords (``precision="best", batch=[1, 8, 32]``).

The flow Polygraphy and trtexec follow: parse the ONNX into a network, configure the builder from a
:class:`~fer_edge.runtime.tensorrt.plan.BuildPlan` (flags, one optimization profile, workspace,
timing cache, DLA, calibrator), ``build_serialized_network``, then write the pure engine bytes and a
JSON sidecar. Everything version-specific was decided in the plan from detected capabilities; this
module only applies it, and logs each step so a failed build on a Jetson says where it failed.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from fer_edge.runtime.atomic import atomic_write
from fer_edge.runtime.errors import BackendUnavailable, ModelError
from fer_edge.runtime.manifest import Manifest, sha256_bytes, write_manifest

from .calib_cache import check_calibration_cache, make_calibrator
from .capabilities import Capabilities, import_tensorrt
from .onnx_model import OnnxModelInfo, read_onnx_model
from .plan import BuildOptions, BuildPlan, make_plan
from .progress import make_progress_monitor
from .sidecar import DeviceInfo, detect_device, engine_manifest
from .trtexec import format_command, trtexec_argv

log = logging.getLogger("fer_edge.build")


@dataclass
class BuildResult:
    """What a build produced: the engine, its manifest, the plan it followed and how long it took."""

    engine: Path
    manifest: Manifest
    plan: BuildPlan
    seconds: float
    size_bytes: int
    dla_gpu_layers: List[str] = field(default_factory=list)

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready summary for reports (the full record is the engine's sidecar)."""
        extra = self.manifest.extra
        return {"engine": str(self.engine), "manifest": f"{self.engine}.json", "size_bytes": self.size_bytes,
                "seconds": round(self.seconds, 3), "precision": self.plan.precision,
                "tensorrt_version": extra.get("tensorrt_version"), "device": extra.get("device"),
                "profile": extra.get("profile"), "builder_flags": list(self.plan.builder_flags),
                "network_flags": list(self.plan.network_flags), "dla_gpu_layers": list(self.dla_gpu_layers),
                "warnings": list(self.plan.warnings), "notes": list(self.plan.notes)}


def _resolve_options(options: Optional[BuildOptions], overrides: Dict[str, Any]) -> BuildOptions:
    if options is None:
        return BuildOptions(**overrides)
    return dataclasses.replace(options, **overrides) if overrides else options


def _flags_value(enum: Any, names) -> int:
    value = 0
    for name in names:
        value |= 1 << int(getattr(enum, name))
    return value


def _parse(trt: Any, network: Any, logger: Any, model: OnnxModelInfo) -> None:
    parser = trt.OnnxParser(network, logger)
    log.info("parsing %s", model.path)
    if not parser.parse_from_file(str(model.path)):
        errors = [f"  [{i}] {parser.get_error(i)}" for i in range(parser.num_errors)]
        raise ModelError(f"TensorRT's ONNX parser rejected {model.path} with {len(errors)} error(s):\n"
                         + "\n".join(errors) + "\nexport it again with `fer-edge export` (opset and ops "
                         "checked for TensorRT) or update TensorRT")


def _check_input(network: Any, plan: BuildPlan, model: OnnxModelInfo) -> None:
    inputs = {network.get_input(i).name: network.get_input(i) for i in range(network.num_inputs)}
    if plan.input_name not in inputs:
        raise ModelError(f"{model.path}: the network has inputs {sorted(inputs)}, not {plan.input_name!r}; "
                         "re-export it with `fer-edge export`")
    dims = tuple(inputs[plan.input_name].shape)
    want = plan.shapes()[1]
    if len(dims) != len(want) or any(d not in (-1, w) for d, w in zip(dims[1:], want[1:])):
        raise ModelError(f"{model.path}: input {plan.input_name!r} has shape {dims}, but its contract says "
                         f"N×{'×'.join(map(str, want[1:]))}; re-export the model")
    batches = {shape[0] for shape in plan.shapes()}
    if dims[0] != -1 and batches != {dims[0]}:
        raise ModelError(f"{model.path}: the ONNX has a fixed batch of {dims[0]}; pass --batch {dims[0]} or "
                         "re-export it with a dynamic batch (`fer-edge export` does by default)")


def _configure_dla(trt: Any, builder: Any, network: Any, config: Any, plan: BuildPlan) -> List[str]:
    cores = int(getattr(builder, "num_DLA_cores", 0))
    if plan.dla_core is None:
        return []
    if plan.dla_core >= cores:
        raise ModelError(f"--dla-core {plan.dla_core}: this device has {cores} DLA core(s); "
                         + ("use 0.." + str(cores - 1) if cores else "drop --dla-core"))
    config.default_device_type = trt.DeviceType.DLA
    config.DLA_core = plan.dla_core
    gpu_layers = [network.get_layer(i).name for i in range(network.num_layers)
                  if not config.can_run_on_DLA(network.get_layer(i))]
    if gpu_layers:
        what = ("will run on the GPU (GPU_FALLBACK)" if "GPU_FALLBACK" in plan.builder_flags
                else "cannot run on DLA and the build will fail without --gpu-fallback")
        log.warning("%d of %d layers %s: %s", len(gpu_layers), network.num_layers, what, ", ".join(gpu_layers))
    log.info("DLA core %d (%d on this device), GPU fallback %s", plan.dla_core, cores,
             "on" if "GPU_FALLBACK" in plan.builder_flags else "off")
    return gpu_layers


def _timing_cache(config: Any, path: Optional[Path]) -> Any:
    if path is None:
        return None
    data = Path(path).read_bytes() if Path(path).is_file() else b""
    cache = config.create_timing_cache(data)
    if not config.set_timing_cache(cache, False):
        log.warning("timing cache %s does not match this device/TensorRT; starting a new one", path)
        cache = config.create_timing_cache(b"")
        config.set_timing_cache(cache, False)
    log.info("timing cache %s (%s)", path, f"{len(data)} bytes loaded" if data else "new")
    return cache


def _warn_slow_precision(builder: Any, caps: Capabilities, plan: BuildPlan) -> None:
    if not caps.platform_fast_queries:
        return
    for flag, attr in (("INT8", "platform_has_fast_int8"), ("FP16", "platform_has_fast_fp16")):
        if flag in plan.builder_flags and not getattr(builder, attr):
            log.warning("%s requested but this GPU has no fast %s; the engine may be slower than FP32", flag, flag)


def build_engine(model_path: Union[str, Path], out_path: Union[str, Path], options: Optional[BuildOptions] = None,
                 *, trt: Any = None, device: Optional[DeviceInfo] = None, **overrides: Any) -> BuildResult:
    """Build ``out_path`` (engine bytes only) and ``out_path.json`` (manifest) from a fer-edge ONNX model.

    ``options`` and/or keyword fields of :class:`BuildOptions`; ``trt`` defaults to ``import tensorrt``
    (tests pass a fake); ``device`` to the current CUDA device. Raises :class:`ModelError` /
    :class:`DataError` for a refusal, :class:`BackendUnavailable` without TensorRT.
    """
    options = _resolve_options(options, overrides)
    trt = trt if trt is not None else import_tensorrt()
    caps = Capabilities.detect(trt)
    model = read_onnx_model(model_path)
    plan = make_plan(options, caps, model)
    out = Path(out_path)
    device = device if device is not None else detect_device()
    if not device.known:
        log.warning("cannot tell which GPU this is (install pycuda): the sidecar records 'unknown', so the "
                    "runtime cannot check that the engine runs on the GPU it was built for")
    log.info("build started: %s → %s with TensorRT %s (%s API) on %s (compute %s)", model.path, out,
             caps.version, caps.generation, device.name, device.compute_capability)
    for note in plan.notes:
        log.info("%s", note)
    for warning in plan.warnings:
        log.warning("%s", warning)

    # TensorRT's own log goes to stderr; `fer-edge -v build` lets its INFO lines through too.
    logger = trt.Logger(trt.Logger.INFO if log.isEnabledFor(logging.DEBUG) else trt.Logger.WARNING)
    builder = trt.Builder(logger)
    _warn_slow_precision(builder, caps, plan)
    network = builder.create_network(_flags_value(trt.NetworkDefinitionCreationFlag, plan.network_flags))
    log.info("network flags: %s", ", ".join(plan.network_flags) or "none (0)")
    _parse(trt, network, logger, model)
    _check_input(network, plan, model)

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, plan.workspace_mb << 20)
    for name in plan.builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, name))
    log.info("builder flags: %s; precision %s; workspace %d MiB", ", ".join(plan.builder_flags) or "none",
             plan.precision, plan.workspace_mb)
    profile = builder.create_optimization_profile()
    lo, opt, hi = plan.shapes()
    profile.set_shape(plan.input_name, lo, opt, hi)
    config.add_optimization_profile(profile)
    log.info("profile %s: min %s opt %s max %s", plan.input_name, lo, opt, hi)

    extra = {"gpu_fallback": "GPU_FALLBACK" in plan.builder_flags, "tensorrt_api": caps.generation}
    calibrator = None  # held here until the build ends: the config does not keep the Python object alive
    if plan.calib_cache is not None:
        cache = check_calibration_cache(plan.calib_cache, caps.version, model.sha256)
        calibrator = make_calibrator(trt, cache)
        config.int8_calibrator = calibrator
        if caps.calibration_profile:
            config.set_calibration_profile(profile)
        extra["calibration_cache_sha256"] = sha256_bytes(cache)
        log.info("INT8 ranges from calibration cache %s", plan.calib_cache)
    timing = _timing_cache(config, plan.timing_cache)
    gpu_layers = _configure_dla(trt, builder, network, config, plan)

    progress = make_progress_monitor(trt) if caps.progress_monitor else None
    if progress is not None:
        config.progress_monitor = progress
    log.info("building the engine (minutes on a Jetson; TensorRT times every tactic)…")
    start = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - start
    del calibrator
    if progress is not None and progress.cancelled:
        raise KeyboardInterrupt
    if serialized is None:
        raise ModelError(f"TensorRT could not build an engine from {model.path} (see its log above); "
                         "try --precision fp16/fp32, a larger --workspace-mb, or --gpu-fallback on DLA")
    engine_bytes = bytes(serialized)
    atomic_write(out, engine_bytes)
    if timing is not None:
        saved = config.get_timing_cache() if hasattr(config, "get_timing_cache") else timing
        atomic_write(plan.timing_cache, bytes(saved.serialize()))
        log.info("timing cache saved to %s", plan.timing_cache)
    extra.update({"build_seconds": round(seconds, 3), "engine_bytes": len(engine_bytes),
                  "dla_gpu_layers": gpu_layers})
    manifest = engine_manifest(model, plan, caps.version, device, extra)
    write_manifest(out, manifest)
    log.info("built %s (%.2f MB) in %.1f s; sidecar %s.json", out, len(engine_bytes) / 1e6, seconds, out.name)
    return BuildResult(engine=out, manifest=manifest, plan=plan, seconds=seconds, size_bytes=len(engine_bytes),
                       dla_gpu_layers=gpu_layers)


def trtexec_command(model_path: Union[str, Path], out_path: Union[str, Path],
                    options: Optional[BuildOptions] = None, *, trt_version: Optional[str] = None, trt: Any = None,
                    **overrides: Any) -> str:
    """The ``trtexec`` line equivalent to :func:`build_engine` (same plan, same refusals); needs no TensorRT.

    Targets ``trt_version`` when given, else the installed (or passed) TensorRT, else 10.3 (JetPack 6.1/6.2).
    """
    options = _resolve_options(options, overrides)
    if trt_version:
        caps = Capabilities.assumed_for(trt_version)
    else:
        try:
            caps = Capabilities.detect(trt if trt is not None else import_tensorrt())
        except BackendUnavailable:
            caps = Capabilities.assumed_for("10.3")
            log.info("TensorRT is not installed here; trtexec line for TensorRT 10.3 (JetPack 6.1/6.2) — "
                     "pass --trt-version 8.6 or 11 for another device")
    model = read_onnx_model(model_path)
    plan = make_plan(options, caps, model)
    for note in plan.notes:
        log.info("%s", note)
    for warning in plan.warnings:
        log.warning("%s", warning)
    return format_command(trtexec_argv(model.path, out_path, plan, caps))
