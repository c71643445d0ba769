"""Fake ``tensorrt`` modules, one per API generation ("8.6", "10", "11"), that record every call.

Each generation exposes the names docs/jetson.md lists for it (from TensorRT's own pybind sources,
python/src/infer/pyCore.cpp at v8.6.1, v10.x and v11.0): an API that a
generation lacks raises ``AttributeError`` when touched, also on assignment (so ``config.int8_calibrator
= …`` on 11 fails as on the real module). Builds enforce the rules the real builder enforces and
that fer-edge must get right: the ONNX parser needs an explicit-batch network on 8.6, strongly typed
networks reject FP16/INT8 flags, Q/DQ needs INT8 on weakly typed builds, DLA needs static shapes,
FP16/INT8 and no Q/DQ. A build returns ``None`` on a violation, like TensorRT. A "serialized engine"
is a JSON header plus the ONNX bytes, and execution runs that ONNX with onnxruntime on the fake
pycuda device memory, so outputs are real numbers.
"""
from __future__ import annotations

import importlib.machinery
import json
import types
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

import numpy as np

MAGIC = b"FAKETRT1"
VERSIONS = {"8.6": "8.6.2.3", "10": "10.3.0.30", "11": "11.1.0.4"}

BUILDER_FLAGS = {
    "8.6": ["FP16", "INT8", "DEBUG", "GPU_FALLBACK", "REFIT", "DISABLE_TIMING_CACHE", "TF32", "SPARSE_WEIGHTS",
            "SAFETY_SCOPE", "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS", "DIRECT_IO",
            "REJECT_EMPTY_ALGORITHMS", "VERSION_COMPATIBLE", "EXCLUDE_LEAN_RUNTIME", "FP8"],
    "10": ["FP16", "BF16", "INT8", "DEBUG", "GPU_FALLBACK", "REFIT", "DISABLE_TIMING_CACHE", "TF32",
           "SPARSE_WEIGHTS", "SAFETY_SCOPE", "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS",
           "DIRECT_IO", "REJECT_EMPTY_ALGORITHMS", "VERSION_COMPATIBLE", "EXCLUDE_LEAN_RUNTIME", "FP8",
           "ERROR_ON_TIMING_CACHE_MISS", "DISABLE_COMPILATION_CACHE", "WEIGHTLESS", "STRIP_PLAN",
           "REFIT_IDENTICAL", "WEIGHT_STREAMING", "INT4"],
    "11": ["DEBUG", "GPU_FALLBACK", "REFIT", "DISABLE_TIMING_CACHE", "EDITABLE_TIMING_CACHE", "TF32",
           "SPARSE_WEIGHTS", "SAFETY_SCOPE", "DIRECT_IO", "VERSION_COMPATIBLE", "EXCLUDE_LEAN_RUNTIME",
           "ERROR_ON_TIMING_CACHE_MISS", "DISABLE_COMPILATION_CACHE", "STRIP_PLAN", "REFIT_IDENTICAL",
           "WEIGHT_STREAMING", "REFIT_INDIVIDUAL", "STRICT_NANS", "MONITOR_MEMORY", "DISTRIBUTIVE_INDEPENDENCE"],
}
NETWORK_FLAGS = {"8.6": {"EXPLICIT_BATCH": 0}, "10": {"EXPLICIT_BATCH": 0, "STRONGLY_TYPED": 1},
                 "11": {"STRONGLY_TYPED": 1}}
#: Members removed per generation: (class, attribute) pairs the generation does not have.
ABSENT = {
    "8.6": {("Builder", "build_engine_with_config"), ("IExecutionContext", "set_optimization_profile_async_v2")},
    "10": {("Builder", "build_engine"), ("ICudaEngine", "num_bindings"), ("ICudaEngine", "get_binding_name"),
           ("ICudaEngine", "binding_is_input"), ("ICudaEngine", "max_batch_size"),
           ("IExecutionContext", "execute_async_v2"), ("IExecutionContext", "set_binding_shape")},
    "11": {("Builder", "build_engine"), ("Builder", "platform_has_fast_int8"), ("Builder", "platform_has_fast_fp16"),
           ("IBuilderConfig", "int8_calibrator"), ("IBuilderConfig", "set_calibration_profile"),
           ("ICudaEngine", "num_bindings"), ("ICudaEngine", "get_binding_name"), ("ICudaEngine", "binding_is_input"),
           ("ICudaEngine", "max_batch_size"), ("ICudaEngine", "has_implicit_batch_dimension"),
           ("IExecutionContext", "execute_async_v2"), ("IExecutionContext", "set_binding_shape")},
}


class Member(int):
    """An enum member: an int with a name (``int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)``)."""

    def __new__(cls, value: int, name: str) -> Member:
        obj = int.__new__(cls, value)
        obj.name = name
        return obj

    def __repr__(self) -> str:
        return f"<{self.name}: {int(self)}>"


def enum(name: str, members: Sequence[str] | Dict[str, int]) -> type:
    items = members.items() if isinstance(members, dict) else ((m, i) for i, m in enumerate(members))
    return type(name, (), {m: Member(v, m) for m, v in items})


class Strict:
    """Assigning an attribute the class does not define raises AttributeError, as on pybind objects."""

    def __setattr__(self, key: str, value: Any) -> None:
        if not key.startswith("_") and not hasattr(type(self), key):
            raise AttributeError(f"'tensorrt.{type(self).__name__}' object has no attribute '{key}'")
        object.__setattr__(self, key, value)


def make_tensorrt(gen: str, gpu: Any = None, dla_cores: int = 2, dla_unsupported: Set[str] = frozenset(),
                  parser_errors: Sequence[str] = (), fast_fp16: bool = True, version: Optional[str] = None,
                  drop: Sequence[Tuple[str, str]] = ()) -> types.ModuleType:
    """A fake ``tensorrt`` for generation ``gen``; ``trt.calls`` lists ``(what, detail)`` in call order.

    ``gpu`` is the :class:`~fakes.pycuda_fake.FakeGPU` whose memory execution reads and writes;
    ``dla_unsupported`` names ONNX op types ``can_run_on_DLA`` says no to; ``drop`` removes more
    members, e.g. ``[("IExecutionContext", "execute_async_v3")]`` to test the bindings path.
    """
    if gen not in VERSIONS:
        raise ValueError(f"generation {gen!r}: one of {list(VERSIONS)}")
    calls: List[Tuple[str, Any]] = []
    absent = set(ABSENT[gen]) | set(drop)
    ver = version or VERSIONS[gen]
    trt = types.ModuleType("tensorrt")
    trt.__spec__ = importlib.machinery.ModuleSpec("tensorrt", None)  # so importlib.util.find_spec sees it
    trt.__version__ = ver
    trt.calls = calls
    trt.generation = gen
    trt.errors = []

    F = enum("NetworkDefinitionCreationFlag", NETWORK_FLAGS[gen])
    BF = enum("BuilderFlag", BUILDER_FLAGS[gen])
    trt.NetworkDefinitionCreationFlag, trt.BuilderFlag = F, BF
    trt.MemoryPoolType = enum("MemoryPoolType", ["WORKSPACE", "DLA_MANAGED_SRAM", "DLA_LOCAL_DRAM",
                                                 "DLA_GLOBAL_DRAM", "TACTIC_DRAM"])
    trt.DeviceType = enum("DeviceType", ["GPU", "DLA"])
    trt.TensorIOMode = enum("TensorIOMode", ["NONE", "INPUT", "OUTPUT"])
    trt.DataType = enum("DataType", ["FLOAT", "HALF", "INT8", "INT32", "BOOL"])

    def nptype(dt: Any) -> type:
        return {0: np.float32, 1: np.float16, 2: np.int8, 3: np.int32, 4: np.bool_}[int(dt)]

    trt.nptype = nptype
    trt.volume = lambda shape: int(np.prod(list(shape)))
    flag_names = {int(getattr(BF, n)): n for n in BUILDER_FLAGS[gen]}

    class Logger:
        INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = range(5)

        def __init__(self, severity: int = 2) -> None:
            calls.append(("Logger", severity))

    trt.Logger = Logger

    def error(msg: str) -> None:
        trt.errors.append(msg)
        calls.append(("error", msg))

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
        def __init__(self, network: INetworkDefinition, logger: Logger) -> None:
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
        def __init__(self, logger: Logger) -> None:
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

    # ---- runtime, engine, execution context ------------------------------------------------
    class ICudaEngine(Strict):
        def __init__(self, header: Dict[str, Any], onnx_bytes: bytes) -> None:
            import onnxruntime as ort

            self._h = header
            self._session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])

        @property
        def num_io_tensors(self) -> int:
            return len(self._h["io"])

        def get_tensor_name(self, i: int) -> str:
            return self._h["io"][i]["name"]

        def _io(self, name: str) -> Dict[str, Any]:
            return next(t for t in self._h["io"] if t["name"] == name)

        def get_tensor_mode(self, name: str) -> Any:
            return getattr(trt.TensorIOMode, self._io(name)["mode"])

        def get_tensor_shape(self, name: str) -> Tuple[int, ...]:
            return tuple(self._io(name)["shape"])

        def get_tensor_dtype(self, name: str) -> Any:
            return trt.DataType.FLOAT

        def get_tensor_profile_shape(self, name: str, profile: int) -> List[Tuple[int, ...]]:
            return [tuple(s) for s in self._h["profile"][name]]

        @property
        def num_bindings(self) -> int:
            return self.num_io_tensors

        def get_binding_name(self, i: int) -> str:
            return self.get_tensor_name(i)

        def binding_is_input(self, i: int) -> bool:
            return self._h["io"][i]["mode"] == "INPUT"

        @property
        def max_batch_size(self) -> int:
            return 1

        @property
        def has_implicit_batch_dimension(self) -> bool:
            return False

        def create_execution_context(self) -> Any:
            calls.append(("ICudaEngine.create_execution_context", None))
            return trt.IExecutionContext(self)

    class IExecutionContext(Strict):
        def __init__(self, engine: ICudaEngine) -> None:
            self._engine = engine
            self._shapes: Dict[str, Tuple[int, ...]] = {}
            self._addresses: Dict[str, int] = {}

        def set_input_shape(self, name: str, shape: Sequence[int]) -> bool:
            calls.append(("IExecutionContext.set_input_shape", (name, tuple(shape))))
            lo, _, hi = self._engine.get_tensor_profile_shape(name, 0)
            if not all(a <= s <= b for a, s, b in zip(lo, shape, hi)):
                error(f"set_input_shape {tuple(shape)} outside profile {lo}..{hi}")
                return False
            self._shapes[name] = tuple(shape)
            return True

        def set_binding_shape(self, index: int, shape: Sequence[int]) -> bool:
            return self.set_input_shape(self._engine.get_tensor_name(index), shape)

        def set_tensor_address(self, name: str, address: int) -> bool:
            calls.append(("IExecutionContext.set_tensor_address", (name, int(address))))
            self._addresses[name] = int(address)
            return True

        def set_optimization_profile_async(self, index: int, stream: int) -> bool:
            calls.append(("IExecutionContext.set_optimization_profile_async", index))
            return index == 0

        def _run(self, addresses: Dict[str, int]) -> bool:
            if gpu is None:
                raise AssertionError("make_tensorrt(gpu=...) is needed to execute")
            gpu.require_context("enqueue")
            eng = self._engine
            inputs = [t for t in eng._h["io"] if t["mode"] == "INPUT"]
            feeds = {}
            for t in inputs:
                shape = self._shapes.get(t["name"])
                if shape is None:
                    error(f"input {t['name']} has no shape set")
                    return False
                n = int(np.prod(shape)) * 4
                feeds[t["name"]] = gpu.view(addresses[t["name"]], n).view(np.float32).reshape(shape).copy()
            outs = eng._session.run(None, feeds)
            names = [o.name for o in eng._session.get_outputs()]
            for name, value in zip(names, outs):
                raw = np.ascontiguousarray(value, dtype=np.float32).reshape(-1).view(np.uint8)
                gpu.view(addresses[name], raw.nbytes)[:] = raw
            return True

        def execute_async_v3(self, stream_handle: int) -> bool:
            calls.append(("IExecutionContext.execute_async_v3", stream_handle))
            return self._run(self._addresses)

        def execute_async_v2(self, bindings: Sequence[int], stream_handle: int) -> bool:
            calls.append(("IExecutionContext.execute_async_v2", stream_handle))
            names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
            return self._run(dict(zip(names, bindings)))

        def execute_v2(self, bindings: Sequence[int]) -> bool:
            calls.append(("IExecutionContext.execute_v2", None))
            names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
            return self._run(dict(zip(names, bindings)))

    class Runtime(Strict):
        def __init__(self, logger: Logger) -> None:
            calls.append(("Runtime", None))
            self._dla_core = -1

        @property
        def DLA_core(self) -> int:  # noqa: N802
            return self._dla_core

        @DLA_core.setter
        def DLA_core(self, value: int) -> None:  # noqa: N802
            calls.append(("Runtime.DLA_core", value))
            self._dla_core = value

        def deserialize_cuda_engine(self, data: bytes) -> Optional[ICudaEngine]:
            calls.append(("Runtime.deserialize_cuda_engine", len(data)))
            if not data.startswith(MAGIC):
                return error("deserialize: magic tag mismatch")
            size = int.from_bytes(data[8:12], "little")
            header = json.loads(data[12:12 + size])
            if header["version"] != ver:
                return error(f"serialized engine version {header['version']} != {ver}")
            return trt.ICudaEngine(header, data[12 + size:])

    trt.Runtime, trt.ICudaEngine, trt.IExecutionContext = Runtime, ICudaEngine, IExecutionContext

    # Remove what this generation lacks (classes are rebuilt without those members).
    for cls_name in {owner for owner, _ in absent}:
        drop_here = {attr for owner, attr in absent if owner == cls_name}
        cls = getattr(trt, cls_name)
        body = {k: v for k, v in cls.__dict__.items() if k not in drop_here and k not in ("__dict__", "__weakref__")}
        setattr(trt, cls_name, type(cls.__name__, cls.__bases__, body))
    if gen == "11":
        del trt.IInt8EntropyCalibrator2
    return trt
