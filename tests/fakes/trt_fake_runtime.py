"""Runtime half of the fake TensorRT: Runtime, engine and execution context over the fake GPU memory.

"Execution" runs the ONNX carried in the fake engine with onnxruntime, reading inputs from and
writing outputs to the fake pycuda device memory at the addresses the backend set.
"""
from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .fake_common import MAGIC, Strict


def add_runtime_api(trt: Any, st: Any) -> None:
    """Define the runtime classes on the module ``trt``."""
    calls, error, ver = st.calls, st.error, st.ver
    gpu = st.gpu
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
        def __init__(self, logger: Any) -> None:
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
