"""Real TensorRT: build an engine from a small exported FerNet and compare with ONNX Runtime FP32.

Run on a machine with TensorRT, pycuda and a CUDA GPU (a Jetson): ``pytest -m tensorrt``. Everywhere
else every test skips with the reason. Nothing here has been run on real hardware yet (docs/jetson.md).
"""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from fakes.models import SPEC, make_model

pytestmark = pytest.mark.tensorrt


@pytest.fixture(scope="module")
def gpu():
    pytest.importorskip("tensorrt", reason="TensorRT is not installed (JetPack ships it; `pip install tensorrt`)")
    pytest.importorskip("pycuda.driver", reason="pycuda is not installed (`pip install pycuda`)")
    import pycuda.driver as cuda

    try:
        cuda.init()
        if cuda.Device.count() < 1:
            pytest.skip("no CUDA device")
    except Exception as exc:  # noqa: BLE001 - no driver
        pytest.skip(f"CUDA is not usable here: {exc}")
    return True


def export_fernet(path, size=32):
    """A small FerNet exported the way `fer-edge export` does: dynamic batch, contract in metadata, manifest."""
    torch = pytest.importorskip("torch", reason="the test exports its model with torch")
    import onnx

    from fer_edge.runtime.backends.base import INPUT_NAME, META_CONTRACT, META_PRECISION, OUTPUT_LOGITS, OUTPUT_PROBS
    from fer_edge.runtime.contract import LABELS, Contract, PreprocessSpec
    from fer_edge.runtime.manifest import Manifest, write_manifest
    from fer_edge.train.models import ExportWrapper, FerNet, ModelSpec

    torch.manual_seed(0)
    spec = PreprocessSpec(size=size, colour="gray", mean=(0.5,), std=(0.25,))
    net = FerNet(ModelSpec(backbone="tiny", in_channels=1, num_classes=len(LABELS), feature_dim=32, width=0.5,
                           dropout=0.0)).eval()
    axes = {n: {0: "N"} for n in (INPUT_NAME, OUTPUT_LOGITS, OUTPUT_PROBS)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(ExportWrapper(net), torch.zeros(1, *spec.input_shape), str(path), input_names=[INPUT_NAME],
                          output_names=[OUTPUT_LOGITS, OUTPUT_PROBS], opset_version=17, dynamic_axes=axes,
                          dynamo=False)
    model = onnx.load(str(path))
    contract = Contract(labels=LABELS, preprocess=spec, crop={})
    for k, v in {META_CONTRACT: json.dumps(contract.to_dict()), META_PRECISION: "fp32"}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(model, str(path))
    write_manifest(path, Manifest(kind="onnx", precision="fp32", labels=list(LABELS), preprocess=spec.to_dict()))
    return path, spec


def faces(n, spec):
    """Preprocessed random 'faces' (smooth blobs, so the inputs look like images rather than noise)."""
    import cv2

    from fer_edge.runtime.contract import preprocess_batch

    rng = np.random.default_rng(0)
    imgs = [cv2.GaussianBlur(rng.integers(0, 256, (48, 48), dtype=np.uint8), (7, 7), 0) for _ in range(n)]
    return preprocess_batch(imgs, spec)


def agreement(model, engine, batch):
    import onnxruntime as ort

    from fer_edge.runtime.backends.tensorrt import TensorRTBackend

    ref = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(["probs"], {"input": batch})[0]
    with TensorRTBackend.from_path(engine) as backend:
        got = backend.infer(batch)
    return float(np.mean(ref.argmax(1) == got.argmax(1))), float(np.abs(ref - got).max())


@pytest.mark.parametrize("precision", ["fp32", "best"])
def test_real_engine_agrees_with_onnxruntime(gpu, tmp_path, precision):
    from fer_edge.runtime.tensorrt import BuildOptions, build_engine, check_engine

    model, spec = export_fernet(tmp_path / "model.onnx")
    engine = tmp_path / f"model.{precision}.engine"
    result = build_engine(model, engine, BuildOptions(precision=precision, batch=(1, 8, 32), workspace_mb=256,
                                                      timing_cache=tmp_path / "trt.cache"))
    assert (tmp_path / "trt.cache").stat().st_size > 0
    check_engine(engine)
    agree, max_diff = agreement(model, engine, faces(200, spec))   # 200 > 32: exercises chunking too
    print(f"{precision}: argmax agreement {agree:.3f}, max |Δp| {max_diff:.2e}, build {result.seconds:.1f} s")
    assert agree >= 0.99


def test_real_qdq_engine_agrees_with_onnxruntime(gpu, tmp_path):
    from fer_edge.runtime.tensorrt import BuildOptions, build_engine

    model = make_model(tmp_path / "model.int8.onnx", qdq=True)
    engine = tmp_path / "model.int8.engine"
    build_engine(model, engine, BuildOptions(precision="best", batch=(1, 8, 32)))
    agree, _ = agreement(model, engine, faces(100, SPEC))
    assert agree >= 0.99
