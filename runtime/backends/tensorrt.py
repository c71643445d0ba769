"""TensorRT inference backend (pycuda), for engines built by ``fer-edge build``.

Thread rule: CUDA contexts are bound to threads. The backend uses the device's *primary* context
(the one the CUDA runtime, and so TensorRT, uses): ``pycuda.autoprimaryctx`` when available, else
``Device(0).retain_primary_context()``. The thread that creates the backend has it current; a call
of :meth:`infer` from any other thread pushes the same context for the call and pops it afterwards,
and a lock serialises calls (one stream, one set of buffers). So: create it where you like, call it
from one inference thread for speed, never from two at once expecting parallelism.

Per call: copy the batch into page-locked host memory, async host→device copy, name-based
``set_input_shape`` + ``execute_async_v3`` (TensorRT 8.5+, so 8.6, 10.x and 11.x; an
``execute_async_v2`` bindings path remains for contexts without v3), async device→host copy of the
probabilities, one stream synchronise. Batches larger than the engine profile's maximum are chunked;
smaller than its minimum (static DLA engines) are zero-padded.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np

from fer_edge.runtime.backends.base import INPUT_NAME, OUTPUT_PROBS
from fer_edge.runtime.contract import Contract, PreprocessSpec
from fer_edge.runtime.errors import BackendUnavailable, ModelError
from fer_edge.runtime.tensorrt.capabilities import Capabilities, import_tensorrt
from fer_edge.runtime.tensorrt.sidecar import REBUILD, DeviceInfo, check_engine, detect_device

log = logging.getLogger("fer_edge.runtime")


def _import_pycuda() -> Tuple[Any, Any, bool]:
    """(pycuda.driver, primary context, whether we pushed it ourselves)."""
    try:
        import pycuda.driver as cuda
    except ImportError as exc:
        raise BackendUnavailable(f"the TensorRT backend needs pycuda ({exc}): `pip install pycuda` (on Jetson "
                                 "with CUDA on PATH: export PATH=/usr/local/cuda/bin:$PATH first); or use "
                                 "--backend onnxruntime") from exc
    try:
        import pycuda.autoprimaryctx as auto  # retains + pushes the primary context on this thread

        ctx = getattr(auto, "context", None)
        if ctx is not None:
            return cuda, ctx, False
    except ImportError:
        pass
    cuda.init()
    if cuda.Device.count() < 1:
        raise BackendUnavailable("pycuda sees no CUDA device; use --backend onnxruntime")
    ctx = cuda.Device(0).retain_primary_context()
    ctx.push()
    return cuda, ctx, True


class TensorRTBackend:
    """``Backend`` over a serialized TensorRT engine; build it with :meth:`from_path`."""

    name = "tensorrt"

    def __init__(self, path: Path, manifest: Any, trt: Any, cuda: Any, ctx: Any, pushed: bool) -> None:
        self.path = Path(path)
        self.manifest = manifest
        self.contract = Contract(labels=tuple(manifest.labels),
                                 preprocess=PreprocessSpec.from_dict(manifest.preprocess), crop=manifest.crop)
        self._trt, self._cuda, self._ctx, self._pushed = trt, cuda, ctx, pushed
        self._owner = threading.get_ident()
        self._lock = threading.Lock()
        self._closed = False
        self.caps = Capabilities.detect(trt)
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        dla_core = manifest.extra.get("dla_core")
        if dla_core is not None:
            self._runtime.DLA_core = int(dla_core)
        self._engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self._engine is None:
            raise ModelError(f"{self.path}: TensorRT could not deserialize the engine; {REBUILD}")
        self._setup_io()

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_path(cls, path: Union[str, Path], trt: Any = None, device: Optional[DeviceInfo] = None
                  ) -> TensorRTBackend:
        """Check the sidecar (TensorRT version, GPU, sha256), then load the engine and allocate buffers."""
        trt = trt if trt is not None else import_tensorrt()
        cuda, ctx, pushed = _import_pycuda()
        try:
            manifest = check_engine(path, trt, device if device is not None else detect_device())
            return cls(Path(path), manifest, trt, cuda, ctx, pushed)
        except BaseException:
            if pushed:
                ctx.pop()
            raise

    def _setup_io(self) -> None:
        trt, cuda, eng = self._trt, self._cuda, self._engine
        names = [eng.get_tensor_name(i) for i in range(eng.num_io_tensors)]
        self._inputs = [n for n in names if eng.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self._outputs = [n for n in names if n not in self._inputs]
        self._names = names
        if self._inputs != [INPUT_NAME]:
            raise ModelError(f"{self.path}: engine inputs {self._inputs}, expected [{INPUT_NAME!r}]; {REBUILD}")
        # Export writes (logits, probs); only probs is copied back. An engine without it is not ours.
        if OUTPUT_PROBS not in self._outputs:
            raise ModelError(f"{self.path}: engine outputs {self._outputs} hold no {OUTPUT_PROBS!r}; re-export "
                             "the model with `fer-edge export` and rebuild")
        self._out = OUTPUT_PROBS
        lo, _, hi = (tuple(s) for s in eng.get_tensor_profile_shape(INPUT_NAME, 0))
        self.min_batch, self.max_batch = int(lo[0]), int(hi[0])
        self.input_chw = tuple(int(d) for d in hi[1:])
        if self.input_chw != self.contract.preprocess.input_shape:
            raise ModelError(f"{self.path}: engine input {self.input_chw} does not match its contract "
                             f"{self.contract.preprocess.input_shape}; {REBUILD}")
        self._host: Dict[str, np.ndarray] = {}
        self._dev: Dict[str, Any] = {}
        self._row: Dict[str, int] = {}
        for n in names:
            shape = tuple(int(d) for d in eng.get_tensor_shape(n))
            per_row = int(np.prod([d for d in shape[1:]] or [1]))
            if any(d < 0 for d in shape[1:]):
                raise ModelError(f"{self.path}: tensor {n!r} has dynamic non-batch dims {shape}; {REBUILD}")
            dtype = np.dtype(trt.nptype(eng.get_tensor_dtype(n)))
            self._host[n] = cuda.pagelocked_empty(self.max_batch * per_row, dtype)
            self._dev[n] = cuda.mem_alloc(self._host[n].nbytes)
            self._row[n] = per_row
        self._context = eng.create_execution_context()
        self._stream = cuda.Stream()
        self._use_v3 = hasattr(self._context, "execute_async_v3")
        if self._use_v3:
            for n in names:
                self._context.set_tensor_address(n, int(self._dev[n]))
        self._bindings = [int(self._dev[n]) for n in names]
        log.info("TensorRT engine %s: batch %d..%d, output %r, %s", self.path.name, self.min_batch,
                 self.max_batch, self._out, "execute_async_v3" if self._use_v3 else "execute_async_v2")

    # -- inference ------------------------------------------------------------------------------
    def infer(self, batch: np.ndarray) -> np.ndarray:
        """``NxCxHxW`` float32 → ``NxK`` float32 probabilities (any N; chunked by the profile's max)."""
        if self._closed:
            raise ModelError(f"{self.path}: backend is closed")
        batch = np.asarray(batch)
        if batch.ndim != 4 or tuple(batch.shape[1:]) != self.input_chw:
            raise ValueError(f"batch shape {batch.shape} does not match the engine input N×{self.input_chw}")
        k = len(self.contract.labels)
        if batch.shape[0] == 0:
            return np.zeros((0, k), dtype=np.float32)
        with self._lock:
            foreign = threading.get_ident() != self._owner
            if foreign:
                self._ctx.push()
            try:
                parts = [self._run_chunk(batch[i:i + self.max_batch])
                         for i in range(0, batch.shape[0], self.max_batch)]
            finally:
                if foreign:
                    self._ctx.pop()
        return np.concatenate(parts, axis=0).astype(np.float32, copy=False)

    def _run_chunk(self, chunk: np.ndarray) -> np.ndarray:
        cuda, ctx, stream = self._cuda, self._context, self._stream
        n = chunk.shape[0]
        m = max(n, self.min_batch)
        host_in = self._host[INPUT_NAME]
        flat = host_in[: m * self._row[INPUT_NAME]]
        flat[: n * self._row[INPUT_NAME]] = chunk.reshape(-1)
        flat[n * self._row[INPUT_NAME]:] = 0
        if not ctx.set_input_shape(INPUT_NAME, (m, *self.input_chw)):
            raise ModelError(f"{self.path}: TensorRT refused input shape {(m, *self.input_chw)}")
        cuda.memcpy_htod_async(self._dev[INPUT_NAME], flat, stream)
        if self._use_v3:
            ok = ctx.execute_async_v3(stream.handle)
        else:
            ok = ctx.execute_async_v2(self._bindings, stream.handle)
        if not ok:
            raise ModelError(f"{self.path}: TensorRT execution failed (see its log); {REBUILD}")
        out = self._host[self._out][: m * self._row[self._out]]
        cuda.memcpy_dtoh_async(out, self._dev[self._out], stream)
        stream.synchronize()
        return out.reshape(m, self._row[self._out])[:n].copy()

    # -- bookkeeping ----------------------------------------------------------------------------
    def info(self) -> Dict[str, Any]:
        extra = self.manifest.extra
        return {"backend": self.name, "engine": str(self.path), "sha256": self.manifest.sha256,
                "tensorrt_version": self.caps.version, "device": extra.get("device"),
                "precision": self.manifest.precision, "profile": extra.get("profile"),
                "batch_range": [self.min_batch, self.max_batch], "dla_core": extra.get("dla_core"),
                "api": "execute_async_v3" if self._use_v3 else "execute_async_v2", "output": self._out}

    def close(self) -> None:
        """Free device buffers and release the context (idempotent)."""
        if self._closed:
            return
        self._closed = True
        for mem in self._dev.values():
            free = getattr(mem, "free", None)
            if free is not None:
                free()
        self._dev.clear()
        self._context = self._engine = None
        if self._pushed and threading.get_ident() == self._owner:
            self._ctx.pop()

    def __enter__(self) -> TensorRTBackend:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

