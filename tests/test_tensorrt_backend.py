"""The TensorRT backend through the fake TensorRT + fake pycuda; "execution" runs the ONNX with onnxruntime."""
from __future__ import annotations

import sys
import threading

import numpy as np
import onnxruntime as ort
import pytest
from fakes.conftest_helpers import called, install_fakes
from fakes.models import make_model
from fakes.pycuda_fake import FakeGPU, LogicError, make_pycuda

from fer_edge.runtime.backends import open_backend
from fer_edge.runtime.backends.base import Backend
from fer_edge.runtime.backends.tensorrt import TensorRTBackend
from fer_edge.runtime.errors import BackendUnavailable, ManifestError
from fer_edge.runtime.tensorrt import BuildOptions, build_engine


def reference(model, batch):
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return sess.run(["probs"], {"input": batch})[0]


@pytest.fixture
def built(monkeypatch, tmp_path):
    """(model, engine, trt) for a generation and batch profile."""
    def make(gen="10", batch=(1, 8, 32), qdq=False, **trt_options):
        trt = install_fakes(monkeypatch, gen, **trt_options)
        model = make_model(tmp_path / "model.onnx", qdq=qdq)
        engine = tmp_path / "model.engine"
        build_engine(model, engine, BuildOptions(batch=batch))
        trt.calls.clear()
        return model, engine, trt
    return make


@pytest.mark.parametrize("gen", ["8.6", "10", "11"])
def test_infer_matches_onnxruntime_with_the_v3_call_sequence(built, gen):
    model, engine, trt = built(gen, qdq=True)
    backend = TensorRTBackend.from_path(engine)
    assert isinstance(backend, Backend) and backend.name == "tensorrt"
    batch = np.random.default_rng(1).standard_normal((5, 1, 16, 16)).astype(np.float32)
    np.testing.assert_allclose(backend.infer(batch), reference(model, batch), rtol=1e-5, atol=1e-6)
    names = [n for n, _ in trt.calls if n.startswith("IExecutionContext")]
    assert names[:3] == ["IExecutionContext.set_tensor_address"] * 3        # input, logits, probs (once)
    assert names[3:] == ["IExecutionContext.set_input_shape", "IExecutionContext.execute_async_v3"]
    assert called(trt, "IExecutionContext.set_input_shape") == [("input", (5, 1, 16, 16))]
    gpu = trt.gpu.calls
    copies = [d for n, d in gpu if n.startswith("memcpy")]
    assert [n for n, _ in gpu if n.startswith("memcpy")] == ["memcpy_htod_async", "memcpy_dtoh_async"]
    assert all(c["pinned"] for c in copies)                                 # page-locked host buffers
    stream = called(trt, "IExecutionContext.execute_async_v3")[0]
    assert {c["stream"] for c in copies} == {stream}                         # one stream for all
    assert [n for n, _ in gpu][-1] == "Stream.synchronize"                  # one sync, at the end
    info = backend.info()
    assert info["api"] == "execute_async_v3" and info["batch_range"] == [1, 32]
    assert backend.contract.preprocess.size == 16 and len(backend.contract.labels) == 7


def test_large_batches_are_chunked_by_profile_max(built):
    model, engine, trt = built("10", batch=(1, 8, 32))
    backend = TensorRTBackend.from_path(engine)
    batch = np.random.default_rng(2).standard_normal((70, 1, 16, 16)).astype(np.float32)
    np.testing.assert_allclose(backend.infer(batch), reference(model, batch), rtol=1e-5, atol=1e-6)
    shapes = [s[1][0] for s in called(trt, "IExecutionContext.set_input_shape")]
    assert shapes == [32, 32, 6]
    assert backend.infer(np.zeros((0, 1, 16, 16), np.float32)).shape == (0, 7)


def test_static_engine_pads_small_batches(built):
    model, engine, trt = built("8.6", batch=(4,))
    backend = TensorRTBackend.from_path(engine)
    batch = np.random.default_rng(3).standard_normal((3, 1, 16, 16)).astype(np.float32)
    out = backend.infer(batch)
    assert out.shape == (3, 7)
    np.testing.assert_allclose(out, reference(model, batch), rtol=1e-5, atol=1e-6)
    assert called(trt, "IExecutionContext.set_input_shape") == [("input", (4, 1, 16, 16))]


def test_bindings_path_where_v3_is_missing(built):
    model, engine, trt = built("8.6", drop=[("IExecutionContext", "execute_async_v3")])
    backend = TensorRTBackend.from_path(engine)
    batch = np.random.default_rng(4).standard_normal((2, 1, 16, 16)).astype(np.float32)
    np.testing.assert_allclose(backend.infer(batch), reference(model, batch), rtol=1e-5, atol=1e-6)
    assert called(trt, "IExecutionContext.execute_async_v2") and not called(trt, "IExecutionContext.set_tensor_address")
    assert backend.info()["api"] == "execute_async_v2"


def test_other_threads_push_the_context(built):
    model, engine, trt = built("10")
    backend = TensorRTBackend.from_path(engine)
    batch = np.ones((2, 1, 16, 16), np.float32)
    result, errors = {}, []

    def worker():
        try:
            result["probs"] = backend.infer(batch)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert not errors
    np.testing.assert_allclose(result["probs"], reference(model, batch), rtol=1e-5, atol=1e-6)
    pushes = [d for n, d in trt.gpu.calls if n in ("Context.push", "Context.pop")]
    assert pushes[-2:] == [t.ident, t.ident]                               # pushed and popped on the worker


def test_fake_pycuda_enforces_thread_bound_contexts():
    """Without a current context, CUDA calls fail: the test above can fail for real."""
    gpu = FakeGPU()
    driver = make_pycuda(gpu)["pycuda.driver"]
    with pytest.raises(LogicError, match="invalid device context"):
        driver.mem_alloc(16)


def test_without_autoprimaryctx_the_primary_context_is_retained_and_pushed(built, monkeypatch):
    model, engine, trt = built("10")
    from fakes.pycuda_fake import install

    gpu = trt.gpu
    gpu.local.stack = []
    install(monkeypatch, gpu, autoprimaryctx=False)
    backend = TensorRTBackend.from_path(engine)
    assert ("Device.retain_primary_context", None) in gpu.calls
    assert backend.infer(np.zeros((1, 1, 16, 16), np.float32)).shape == (1, 7)
    backend.close()
    assert gpu.current() is None                                           # popped on close


def test_refuses_engines_from_another_tensorrt_or_gpu(built, monkeypatch):
    from fakes.tensorrt_fake import make_tensorrt

    model, engine, trt = built("10")
    other = make_tensorrt("10", gpu=trt.gpu, version="10.7.0.23")
    with pytest.raises(ManifestError, match="rebuild with `fer-edge build` on this device"):
        TensorRTBackend.from_path(engine, trt=other)
    trt.gpu.name = "NVIDIA Jetson AGX Xavier"
    with pytest.raises(ManifestError, match="built for Orin.*rebuild with `fer-edge build` on this device"):
        TensorRTBackend.from_path(engine)


def test_without_pycuda(built, monkeypatch):
    _, engine, _ = built("10")
    monkeypatch.setitem(sys.modules, "pycuda", None)
    monkeypatch.setitem(sys.modules, "pycuda.driver", None)
    with pytest.raises(BackendUnavailable, match="pip install pycuda"):
        TensorRTBackend.from_path(engine)


def test_open_backend_picks_tensorrt_for_engines(built):
    model, engine, _ = built("11", qdq=True)
    backend = open_backend(engine)
    assert isinstance(backend, TensorRTBackend)
    batch = np.zeros((3, 1, 16, 16), np.float32)
    np.testing.assert_allclose(backend.infer(batch), reference(model, batch), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="does not match"):
        backend.infer(np.zeros((3, 3, 16, 16), np.float32))


def test_dla_engine_sets_the_runtime_core(monkeypatch, tmp_path):
    trt = install_fakes(monkeypatch, "8.6")
    model = make_model(tmp_path / "model.onnx")
    calib = tmp_path / "model.calib"
    calib.write_text("TRT-8602-EntropyCalibration2\ninput: 3c010204\n")
    engine = tmp_path / "dla.engine"
    build_engine(model, engine, BuildOptions(batch=(2,), dla_core=1, calib_cache=calib))
    backend = TensorRTBackend.from_path(engine)
    assert called(trt, "Runtime.DLA_core") == [1] and backend.info()["dla_core"] == 1
    assert backend.infer(np.zeros((5, 1, 16, 16), np.float32)).shape == (5, 7)     # chunks of the static 2
    assert [s[1][0] for s in called(trt, "IExecutionContext.set_input_shape")] == [2, 2, 2]
