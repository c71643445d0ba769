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
import types
from typing import Any, List, Optional, Sequence, Set, Tuple

import numpy as np

from .fake_common import ABSENT, BUILDER_FLAGS, MAGIC, NETWORK_FLAGS, VERSIONS, enum
from .trt_fake_builder import add_builder_api
from .trt_fake_runtime import add_runtime_api

__all__ = ["MAGIC", "VERSIONS", "make_tensorrt"]


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

    st = types.SimpleNamespace(calls=calls, error=error, gen=gen, ver=ver, gpu=gpu, flag_names=flag_names,
                               dla_unsupported=set(dla_unsupported), dla_cores=dla_cores,
                               parser_errors=list(parser_errors), fast_fp16=fast_fp16)
    add_builder_api(trt, st)
    add_runtime_api(trt, st)


    # Remove what this generation lacks (classes are rebuilt without those members).
    for cls_name in {owner for owner, _ in absent}:
        drop_here = {attr for owner, attr in absent if owner == cls_name}
        cls = getattr(trt, cls_name)
        body = {k: v for k, v in cls.__dict__.items() if k not in drop_here and k not in ("__dict__", "__weakref__")}
        setattr(trt, cls_name, type(cls.__name__, cls.__bases__, body))
    if gen == "11":
        del trt.IInt8EntropyCalibrator2
    if gen == "8.6":
        del trt.IProgressMonitor
    return trt
