"""Build half of the fake TensorRT: network, ONNX parser, builder config, profile, timing cache, builder.

See :mod:`fakes.tensorrt_fake` for what the fake promises; ``st`` carries the options and the call log.
"""
from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

from .fake_common import MAGIC, NETWORK_FLAGS, Strict


def add_builder_api(trt: Any, st: Any) -> None:
    """Define the build-side classes of generation ``st.gen`` on the module ``trt``."""
    calls, error, gen, ver, F = st.calls, st.error, st.gen, st.ver, trt.NetworkDefinitionCreationFlag
    flag_names, dla_unsupported, dla_cores = st.flag_names, st.dla_unsupported, st.dla_cores
    parser_errors, fast_fp16 = st.parser_errors, st.fast_fp16
    # ---- network + parser -------------------------------------------------------------------
    class Tensor:
        def __init__(self, name: str, shape: Tuple[int, ...]) -> None:
            self.name, self.shape = name, shape

    class Layer:
        def __init__(self, name: str, op: str) -> None:
            self.name, self.type = name, op

    class INetworkDefinition(Strict):
        def __init__(self, flags: int) -> None:
            self._flags = flags
            self._inputs: List[Tensor] = []
            self._outputs: List[Tensor] = []
            self._layers: List[Layer] = []
            self._onnx = b""

        @property
        def num_inputs(self) -> int:
            return len(self._inputs)

        @property
        def num_outputs(self) -> int:
            return len(self._outputs)

        @property
        def num_layers(self) -> int:
            return len(self._layers)

        def get_input(self, i: int) -> Tensor:
            return self._inputs[i]

        def get_output(self, i: int) -> Tensor:
            return self._outputs[i]

        def get_layer(self, i: int) -> Layer:
            return self._layers[i]

        def get_flag(self, flag: Any) -> bool:
            return bool(self._flags & (1 << int(flag)))

    class ParserError:
        def __init__(self, msg: str, node: int) -> None:
            self.msg, self._node = msg, node

        def desc(self) -> str:
            return self.msg

        def node(self) -> int:
            return self._node

        def __str__(self) -> str:
            return f"In node {self._node} (parseGraph): INVALID_NODE: {self.msg}"

    class OnnxParser:
        def __init__(self, network: INetworkDefinition, logger: Any) -> None:
            self.network = network
            self._errors: List[ParserError] = []

        @property
        def num_errors(self) -> int:
            return len(self._errors)

        def get_error(self, i: int) -> ParserError:
            return self._errors[i]

        def parse_from_file(self, path: str) -> bool:
            calls.append(("OnnxParser.parse_from_file", path))
            with open(path, "rb") as fh:
                return self.parse(fh.read(), path)

        def parse(self, data: bytes, path: Optional[str] = None) -> bool:
            import onnx

            net = self.network
            if gen == "8.6" and not net.get_flag(F.EXPLICIT_BATCH):
                self._errors.append(ParserError("ONNX models require an explicit batch network "
                                                "(NetworkDefinitionCreationFlag::kEXPLICIT_BATCH)", 0))
            for i, msg in enumerate(parser_errors):
                self._errors.append(ParserError(msg, i))
            if self._errors:
                return False
            model = onnx.load_from_string(data)
            init = {t.name for t in model.graph.initializer}

            def dims(v: Any) -> Tuple[int, ...]:
                return tuple(d.dim_value if d.HasField("dim_value") else -1 for d in v.type.tensor_type.shape.dim)

            net._inputs = [Tensor(v.name, dims(v)) for v in model.graph.input if v.name not in init]
            net._outputs = [Tensor(v.name, dims(v)) for v in model.graph.output]
            net._layers = [Layer(n.name or f"{n.op_type}_{i}", n.op_type) for i, n in enumerate(model.graph.node)]
            net._onnx = data
            net._qdq = any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node)
            return True

    trt.INetworkDefinition, trt.OnnxParser = INetworkDefinition, OnnxParser

    # ---- builder, config, profile, timing cache -----------------------------------------------
    class IOptimizationProfile(Strict):
        def __init__(self) -> None:
            self._shapes: Dict[str, Tuple[Tuple[int, ...], ...]] = {}

        def set_shape(self, name: str, min: Sequence[int], opt: Sequence[int], max: Sequence[int]) -> None:  # noqa: A002
            shapes = (tuple(min), tuple(opt), tuple(max))
            calls.append(("IOptimizationProfile.set_shape", (name, shapes)))
            self._shapes[name] = shapes

        def get_shape(self, name: str) -> Tuple[Tuple[int, ...], ...]:
            return self._shapes[name]

    class ITimingCache:
        def __init__(self, data: bytes) -> None:
            self._entries = int(data.decode().split(":")[1]) if data else 0

        def serialize(self) -> bytes:
            calls.append(("ITimingCache.serialize", self._entries))
            return f"FAKECACHE:{self._entries}".encode()

    class IProgressMonitor:
        def __init__(self) -> None:
            calls.append(("IProgressMonitor.__init__", None))

    class IInt8EntropyCalibrator2:
        def __init__(self) -> None:
            calls.append(("IInt8EntropyCalibrator2.__init__", None))

    class IBuilderConfig(Strict):
        def __init__(self) -> None:
            self._flags: Set[str] = set()
            self._profiles: List[IOptimizationProfile] = []
            self._pool: Dict[str, int] = {}
            self._timing: Optional[ITimingCache] = None
            self._calibrator: Any = None
            self._calib_profile: Any = None
            self._device_type = trt.DeviceType.GPU
            self._dla_core = -1
            self._progress: Any = None

        @property
        def progress_monitor(self) -> Any:
            return self._progress

        @progress_monitor.setter
        def progress_monitor(self, monitor: Any) -> None:
            calls.append(("IBuilderConfig.progress_monitor", type(monitor).__name__))
            if not isinstance(monitor, trt.IProgressMonitor):
                raise TypeError("progress_monitor: incompatible type")
            self._progress = monitor

        def set_flag(self, flag: Any) -> None:
            calls.append(("IBuilderConfig.set_flag", flag_names[int(flag)]))
            self._flags.add(flag_names[int(flag)])

        def get_flag(self, flag: Any) -> bool:
            return flag_names[int(flag)] in self._flags

        def set_memory_pool_limit(self, pool: Any, size: int) -> None:
            calls.append(("IBuilderConfig.set_memory_pool_limit", (pool.name, size)))
            self._pool[pool.name] = size

        def add_optimization_profile(self, profile: IOptimizationProfile) -> int:
            calls.append(("IBuilderConfig.add_optimization_profile", dict(profile._shapes)))
            self._profiles.append(profile)
            return len(self._profiles) - 1

        def create_timing_cache(self, data: bytes) -> ITimingCache:
            calls.append(("IBuilderConfig.create_timing_cache", bytes(data)))
            return ITimingCache(bytes(data))

        def set_timing_cache(self, cache: ITimingCache, ignore_mismatch: bool) -> bool:
            calls.append(("IBuilderConfig.set_timing_cache", ignore_mismatch))
            self._timing = cache
            return True

        def get_timing_cache(self) -> Optional[ITimingCache]:
            return self._timing

        @property
        def int8_calibrator(self) -> Any:
            return self._calibrator

        @int8_calibrator.setter
        def int8_calibrator(self, calibrator: Any) -> None:
            calls.append(("IBuilderConfig.int8_calibrator", type(calibrator).__name__))
            if not isinstance(calibrator, trt.IInt8EntropyCalibrator2):
                raise TypeError("int8_calibrator: incompatible type")
            self._calibrator = calibrator

        def set_calibration_profile(self, profile: IOptimizationProfile) -> bool:
            calls.append(("IBuilderConfig.set_calibration_profile", dict(profile._shapes)))
            self._calib_profile = profile
            return True

        @property
        def default_device_type(self) -> Any:
            return self._device_type

        @default_device_type.setter
        def default_device_type(self, value: Any) -> None:
            calls.append(("IBuilderConfig.default_device_type", value.name))
            self._device_type = value

        @property
        def DLA_core(self) -> int:  # noqa: N802 - TensorRT's name
            return self._dla_core

        @DLA_core.setter
        def DLA_core(self, value: int) -> None:  # noqa: N802
            calls.append(("IBuilderConfig.DLA_core", value))
            self._dla_core = value

        def can_run_on_DLA(self, layer: Layer) -> bool:  # noqa: N802
            calls.append(("IBuilderConfig.can_run_on_DLA", layer.name))
            return layer.type not in dla_unsupported

    class Builder(Strict):
        def __init__(self, logger: Any) -> None:
            calls.append(("Builder", None))

        @property
        def platform_has_fast_fp16(self) -> bool:
            return fast_fp16

        @property
        def platform_has_fast_int8(self) -> bool:
            return True

        @property
        def num_DLA_cores(self) -> int:  # noqa: N802
            return dla_cores

        def create_network(self, flags: int = 0) -> INetworkDefinition:
            calls.append(("Builder.create_network", int(flags)))
            known = 0
            for v in NETWORK_FLAGS[gen].values():
                known |= 1 << v
            if int(flags) & ~known:
                raise TypeError(f"create_network: unknown flag bits {int(flags):#x}")
            return INetworkDefinition(int(flags))

        def create_builder_config(self) -> IBuilderConfig:
            calls.append(("Builder.create_builder_config", None))
            return trt.IBuilderConfig()

        def create_optimization_profile(self) -> IOptimizationProfile:
            return IOptimizationProfile()

        def build_serialized_network(self, network: INetworkDefinition, config: IBuilderConfig) -> Any:
            calls.append(("Builder.build_serialized_network", sorted(config._flags)))
            return _build(network, config)

        def build_engine(self, network: INetworkDefinition, config: IBuilderConfig) -> Any:
            raise AssertionError("deprecated build_engine must not be used")

    def _build(network: INetworkDefinition, config: IBuilderConfig) -> Optional[bytes]:
        strongly = "STRONGLY_TYPED" in NETWORK_FLAGS[gen] and (
            gen == "11" or network.get_flag(F.STRONGLY_TYPED))
        flags = config._flags
        if strongly and flags & {"FP16", "INT8"}:
            return error("Error Code 3: API Usage Error (!config.getFlag(BuilderFlag::kFP16) strongly typed)")
        if network._qdq and not strongly and "INT8" not in flags:
            return error("Q/DQ network needs BuilderFlag::kINT8 on a weakly typed build")
        if len(config._profiles) != 1:
            return error(f"expected one optimization profile, got {len(config._profiles)}")
        shapes = config._profiles[0]._shapes
        for t in network._inputs:
            if t.name not in shapes:
                return error(f"input {t.name} has dynamic dims but no profile shape")
            lo, opt, hi = shapes[t.name]
            if not all(a <= b <= c for a, b, c in zip(lo, opt, hi)):
                return error(f"profile for {t.name}: min ≤ opt ≤ max violated")
            for s in (lo, opt, hi):
                if len(s) != len(t.shape) or any(d not in (-1, v) for d, v in zip(t.shape, s)):
                    return error(f"profile shape {s} incompatible with {t.name}{t.shape}")
        dla = config._device_type == trt.DeviceType.DLA
        if dla:
            if network._qdq:
                return error("DLA does not support explicit quantization (Q/DQ) layers")
            if not flags & {"FP16", "INT8"}:
                return error("DLA requires FP16 or INT8")
            if any(lo != hi for lo, _, hi in shapes.values()):
                return error("DLA requires min = opt = max (static shapes)")
            bad = [layer.name for layer in network._layers if layer.type in dla_unsupported]
            if bad and "GPU_FALLBACK" not in flags:
                return error(f"layers {bad} cannot run on DLA and GPU fallback is off")
        calibrated = False
        if "INT8" in flags and not network._qdq and config._calibrator is not None:
            cache = config._calibrator.read_calibration_cache()
            calls.append(("calibrator.read_calibration_cache", len(cache or b"")))
            if not cache:
                batch = config._calibrator.get_batch(["input"])
                calls.append(("calibrator.get_batch", batch))
                return error("Calibration failure: no calibration data")
            calibrated = True
        if config._progress is not None:
            monitor = config._progress
            monitor.phase_start("Building engine", None, len(network._layers))
            monitor.phase_start("Tactic timing", "Building engine", 1)
            monitor.phase_finish("Tactic timing")
            for step in range(len(network._layers)):
                if not monitor.step_complete("Building engine", step + 1):
                    monitor.phase_finish("Building engine")
                    return error("build cancelled by the progress monitor")
            monitor.phase_finish("Building engine")
            calls.append(("progress.phases_done", len(network._layers)))
        if config._timing is not None:
            config._timing._entries += len(network._layers)
        io = [{"name": t.name, "mode": "INPUT", "shape": list(t.shape)} for t in network._inputs]
        io += [{"name": t.name, "mode": "OUTPUT", "shape": list(t.shape)} for t in network._outputs]
        header = {"version": ver, "profile": {k: [list(s) for s in v] for k, v in shapes.items()}, "io": io,
                  "flags": sorted(flags), "strongly_typed": strongly, "dla_core": config._dla_core if dla else None,
                  "calibrated": calibrated}
        blob = json.dumps(header).encode()
        return MAGIC + len(blob).to_bytes(4, "little") + blob + network._onnx

    trt.Builder, trt.IBuilderConfig, trt.IOptimizationProfile = Builder, IBuilderConfig, IOptimizationProfile
    trt.ITimingCache, trt.IInt8EntropyCalibrator2 = ITimingCache, IInt8EntropyCalibrator2
    trt.IProgressMonitor = IProgressMonitor

