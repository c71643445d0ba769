"""A fake ``pycuda`` that records every call and enforces CUDA's thread-bound contexts.

Device memory is a dict of numpy byte buffers keyed by fake addresses (shared with the fake
TensorRT, which reads inputs and writes outputs there). Allocations and copies raise like pycuda's
``LogicError`` when no context is current on the calling thread, so the backend's thread rule is
tested, not assumed. ``install(monkeypatch, fake)`` puts the modules into ``sys.modules``.
"""
from __future__ import annotations

import threading
import types
from typing import Any, Dict, List, Tuple

import numpy as np


class LogicError(RuntimeError):
    pass


class FakeGPU:
    """Device memory plus a call log shared by the fake pycuda and the fake TensorRT."""

    def __init__(self, name: str = "Orin (fake)", cc: Tuple[int, int] = (8, 7)) -> None:
        self.name, self.cc = name, cc
        self.memory: Dict[int, np.ndarray] = {}
        self.next_address = 0x10000
        self.calls: List[Tuple[str, Any]] = []
        self.local = threading.local()
        self.pinned: set = set()

    def current(self) -> Any:
        stack = getattr(self.local, "stack", [])
        return stack[-1] if stack else None

    def require_context(self, what: str) -> None:
        if self.current() is None:
            raise LogicError(f"{what} failed: invalid device context (no context current on this thread)")

    def alloc(self, nbytes: int) -> int:
        address = self.next_address
        self.memory[address] = np.zeros(max(int(nbytes), 1), dtype=np.uint8)
        self.next_address += max(int(nbytes), 1) + 256
        return address

    def view(self, address: int, nbytes: int) -> np.ndarray:
        buf = self.memory.get(int(address))
        if buf is None:
            raise LogicError(f"address {address:#x} is not allocated")
        if nbytes > buf.nbytes:
            raise LogicError(f"access of {nbytes} bytes beyond allocation of {buf.nbytes}")
        return buf[:nbytes]


def make_pycuda(gpu: FakeGPU, autoprimaryctx: bool = True) -> Dict[str, types.ModuleType]:
    """Modules ``pycuda``, ``pycuda.driver`` and (optionally) ``pycuda.autoprimaryctx`` over ``gpu``."""

    class Context:
        def __init__(self, primary: bool = True) -> None:
            self.primary = primary

        def push(self) -> None:
            gpu.calls.append(("Context.push", threading.get_ident()))
            gpu.local.stack = getattr(gpu.local, "stack", []) + [self]

        def pop(self) -> None:
            gpu.calls.append(("Context.pop", threading.get_ident()))
            stack = getattr(gpu.local, "stack", [])
            if not stack:
                raise LogicError("cuCtxPopCurrent failed: no context on this thread")
            gpu.local.stack = stack[:-1]

    primary = Context()

    class Device:
        def __init__(self, index: int) -> None:
            if index != 0:
                raise LogicError(f"cuDeviceGet failed: invalid device ordinal {index}")

        @staticmethod
        def count() -> int:
            return 1

        def name(self) -> str:
            return gpu.name

        def compute_capability(self) -> Tuple[int, int]:
            return gpu.cc

        def retain_primary_context(self) -> Context:
            gpu.calls.append(("Device.retain_primary_context", None))
            return primary

    class DeviceAllocation:
        def __init__(self, address: int) -> None:
            self.address = address

        def __int__(self) -> int:
            return self.address

        def free(self) -> None:
            gpu.calls.append(("DeviceAllocation.free", self.address))
            gpu.memory.pop(self.address, None)

    class Stream:
        _next = 1

        def __init__(self) -> None:
            gpu.require_context("cuStreamCreate")
            self.handle = Stream._next
            Stream._next += 1
            gpu.calls.append(("Stream", self.handle))

        def synchronize(self) -> None:
            gpu.require_context("cuStreamSynchronize")
            gpu.calls.append(("Stream.synchronize", self.handle))

    def init() -> None:
        gpu.calls.append(("init", None))

    def pagelocked_empty(shape: Any, dtype: Any) -> np.ndarray:
        gpu.require_context("cuMemHostAlloc")
        arr = np.empty(shape, dtype=dtype)
        gpu.pinned.add(id(arr))
        gpu.calls.append(("pagelocked_empty", arr.nbytes))
        return arr

    def _pinned(arr: np.ndarray) -> bool:
        base = arr
        while base.base is not None and isinstance(base.base, np.ndarray):
            base = base.base
        return id(base) in gpu.pinned

    def mem_alloc(nbytes: int) -> DeviceAllocation:
        gpu.require_context("cuMemAlloc")
        gpu.calls.append(("mem_alloc", int(nbytes)))
        return DeviceAllocation(gpu.alloc(nbytes))

    def memcpy_htod_async(dest: Any, src: np.ndarray, stream: Stream = None) -> None:
        gpu.require_context("cuMemcpyHtoDAsync")
        gpu.calls.append(("memcpy_htod_async", {"bytes": src.nbytes, "stream": getattr(stream, "handle", None),
                                                 "pinned": _pinned(src)}))
        gpu.view(int(dest), src.nbytes)[:] = np.frombuffer(np.ascontiguousarray(src).tobytes(), dtype=np.uint8)

    def memcpy_dtoh_async(dest: np.ndarray, src: Any, stream: Stream = None) -> None:
        gpu.require_context("cuMemcpyDtoHAsync")
        gpu.calls.append(("memcpy_dtoh_async", {"bytes": dest.nbytes, "stream": getattr(stream, "handle", None),
                                                 "pinned": _pinned(dest)}))
        dest.reshape(-1).view(np.uint8)[:] = gpu.view(int(src), dest.nbytes)

    driver = types.ModuleType("pycuda.driver")
    for name, obj in {"Context": Context, "Device": Device, "DeviceAllocation": DeviceAllocation,
                      "Stream": Stream, "init": init, "pagelocked_empty": pagelocked_empty,
                      "mem_alloc": mem_alloc, "memcpy_htod_async": memcpy_htod_async,
                      "memcpy_dtoh_async": memcpy_dtoh_async, "LogicError": LogicError}.items():
        setattr(driver, name, obj)
    pkg = types.ModuleType("pycuda")
    pkg.__path__ = []  # a package, so `import pycuda.x` consults sys.modules
    pkg.__version__ = "2024.1-fake"
    pkg.driver = driver
    modules = {"pycuda": pkg, "pycuda.driver": driver}
    if autoprimaryctx:
        auto = types.ModuleType("pycuda.autoprimaryctx")
        # Importing the real module retains and pushes the primary context on the importing thread;
        # a fake module object is created once, so the push happens when install() runs.
        auto.context = primary
        auto.device = Device(0)
        pkg.autoprimaryctx = auto
        modules["pycuda.autoprimaryctx"] = auto
    modules["_primary"] = primary  # not a module: handed back so install() can push it
    return modules


def install(monkeypatch: Any, gpu: FakeGPU, autoprimaryctx: bool = True) -> None:
    """Put the fake pycuda into ``sys.modules`` (and push the primary context, as autoprimaryctx does)."""
    import sys

    mods = make_pycuda(gpu, autoprimaryctx)
    primary = mods.pop("_primary")
    for name, mod in mods.items():
        monkeypatch.setitem(sys.modules, name, mod)
    if not autoprimaryctx:
        monkeypatch.setitem(sys.modules, "pycuda.autoprimaryctx", None)  # ImportError, like an old pycuda
    else:
        primary.push()
