"""The model contract reader, the ONNX Runtime backend and the ``open_backend`` factory."""
from __future__ import annotations

import json

import numpy as np
import pytest
from runtime_fixtures import TEST_CROP, TEST_SPEC, make_onnx

from fer_edge.runtime.backends import open_backend, resolve_backend
from fer_edge.runtime.backends.base import Backend
from fer_edge.runtime.backends.onnxruntime import OnnxRuntimeBackend
from fer_edge.runtime.contract import LABELS, PreprocessSpec
from fer_edge.runtime.errors import BackendUnavailable, ManifestError, ModelError
from fer_edge.runtime.manifest import sidecar_path
from fer_edge.runtime.model import describe_model, read_contract


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    make_onnx(d / "good.onnx")
    make_onnx(d / "nosidecar.onnx", manifest=False)
    make_onnx(d / "nocontract.onnx", contract=False, manifest=False)
    make_onnx(d / "int8.onnx", precision="int8")
    make_onnx(d / "static.onnx", dynamic=False)
    make_onnx(d / "rgb.onnx", spec=PreprocessSpec(size=40, colour="rgb", mean=(0.5,) * 3, std=(0.2,) * 3))
    return d


def test_read_contract_from_metadata(onnx_dir):
    c = read_contract(onnx_dir / "good.onnx")
    assert c.labels == LABELS
    assert c.preprocess == TEST_SPEC
    assert c.crop == TEST_CROP  # the contract's crop is a typed CropPolicy


def test_contract_without_sidecar_is_read_from_the_model(onnx_dir):
    info = describe_model(onnx_dir / "nosidecar.onnx")
    assert info.manifest is None and info.contract.preprocess == TEST_SPEC and len(info.sha256) == 64


def test_model_without_contract_says_reexport(onnx_dir):
    with pytest.raises(ModelError, match="fer-edge export"):
        read_contract(onnx_dir / "nocontract.onnx")


def test_int8_model_is_accepted_on_its_own_hash(onnx_dir):
    info = describe_model(onnx_dir / "int8.onnx")
    assert info.precision == "int8" and info.manifest.kind == "int8_onnx"


def test_tampered_model_is_refused(onnx_dir, tmp_path):
    p = tmp_path / "m.onnx"
    p.write_bytes((onnx_dir / "good.onnx").read_bytes())
    sidecar_path(p).write_text(sidecar_path(onnx_dir / "good.onnx").read_text())
    with p.open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ManifestError, match="sha256"):
        read_contract(p)


@pytest.mark.parametrize("payload", [b"", b"not an onnx model at all", bytes(range(256)) * 8])
def test_corrupt_model_is_a_model_error(tmp_path, payload):
    p = tmp_path / "bad.onnx"
    p.write_bytes(payload)
    with pytest.raises(ModelError, match="cannot load"):
        open_backend(p)


def test_bad_contract_json_is_a_model_error(tmp_path):
    import onnx

    p = make_onnx(tmp_path / "m.onnx", manifest=False)
    m = onnx.load(str(p))
    for prop in m.metadata_props:
        if prop.key == "fer_edge.contract":
            prop.value = json.dumps({"labels": list(LABELS), "preprocess": {"size": 3}})
    onnx.save(m, str(p))
    with pytest.raises(ModelError, match="contract is unreadable"):
        read_contract(p)


def test_missing_and_unknown_files(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        open_backend(tmp_path / "nope.onnx")
    (tmp_path / "m.pt").write_bytes(b"x")
    with pytest.raises(ModelError, match="unknown model type"):
        open_backend(tmp_path / "m.pt")


def test_engine_without_tensorrt_says_what_to_do(tmp_path, monkeypatch):
    import fer_edge.runtime.backends as backends

    monkeypatch.setattr(backends, "tensorrt_available", lambda: False)
    p = tmp_path / "m.engine"
    p.write_bytes(b"engine")
    with pytest.raises(BackendUnavailable, match="tensorrt"):
        open_backend(p)
    with pytest.raises(ModelError, match="cannot run on ONNX Runtime"):
        resolve_backend(p, "onnxruntime")


def test_tensorrt_backend_on_onnx_asks_for_a_build(onnx_dir):
    with pytest.raises(ModelError, match="fer-edge build"):
        open_backend(onnx_dir / "good.onnx", backend="tensorrt")


def test_auto_picks_tensorrt_for_engines_by_import_path(tmp_path, monkeypatch):
    """With TensorRT importable, ``auto`` hands an engine to ``TensorRTBackend.from_path`` (faked here)."""
    import sys
    import types

    import fer_edge.runtime.backends as backends

    calls = []

    class FakeTRT:
        @classmethod
        def from_path(cls, path):
            calls.append(path)
            return "trt-backend"

    monkeypatch.setattr(backends, "tensorrt_available", lambda: True)
    monkeypatch.setitem(sys.modules, "fer_edge.runtime.backends.tensorrt",
                        types.SimpleNamespace(TensorRTBackend=FakeTRT))
    p = tmp_path / "m.plan"
    p.write_bytes(b"x")
    assert open_backend(p, threads=2) == "trt-backend" and calls == [p]


def test_backend_infer_matches_softmax_and_protocol(onnx_dir):
    be = open_backend(onnx_dir / "good.onnx", threads=1)
    assert isinstance(be, OnnxRuntimeBackend) and isinstance(be, Backend)
    x = np.random.default_rng(0).normal(size=(5, *TEST_SPEC.input_shape)).astype(np.float32)
    p = be.infer(x)
    assert p.shape == (5, 7) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)
    # batching must not change a face's result
    np.testing.assert_allclose(be.infer(x[2:3])[0], p[2], atol=1e-5)
    assert be.infer(np.zeros((0, *TEST_SPEC.input_shape), np.float32)).shape == (0, 7)
    info = be.info()
    assert info["providers"][-1] == "CPUExecutionProvider" and info["precision"] == "fp32"
    assert info["input_shape"][1:] == [1, 32, 32] and len(info["sha256"]) == 64
    with pytest.raises(ValueError):
        be.infer(np.zeros((1, 3, 32, 32), np.float32))


def test_static_batch_model_runs_face_by_face(onnx_dir):
    be = open_backend(onnx_dir / "static.onnx")
    assert be.fixed_batch == 1
    x = np.random.default_rng(1).normal(size=(3, *TEST_SPEC.input_shape)).astype(np.float32)
    p = be.infer(x)
    np.testing.assert_allclose(p[1], be.infer(x[1:2])[0], atol=1e-6)


def test_rgb_contract_shape(onnx_dir):
    be = open_backend(onnx_dir / "rgb.onnx")
    assert be.contract.preprocess.input_shape == (3, 40, 40)
    assert be.infer(np.zeros((2, 3, 40, 40), np.float32)).shape == (2, 7)


def test_the_contract_crop_is_a_typed_policy_parsed_once():
    """``Contract.crop`` is a CropPolicy (or None: none recorded); call sites read ``contract.policy``, never a dict."""
    import pytest

    from fer_edge.runtime.contract import Contract
    from fer_edge.runtime.crop import PIXEL_FIELDS, CropPolicy
    from fer_edge.runtime.errors import ConfigError

    c = Contract(crop={"margin": 0.1, "clahe": True})
    assert isinstance(c.crop, CropPolicy) and c.crop.margin == 0.1 and c.policy is c.crop
    assert Contract.from_dict(c.to_dict()) == c
    bare = Contract.from_dict({"labels": ["neutral"], "preprocess": {}})
    assert bare.crop is None and bare.policy == CropPolicy() and bare.to_dict()["crop"] == {}
    with pytest.raises(ConfigError, match="margin"):
        Contract(crop={"margin": 7})
    assert tuple(CropPolicy().pixels()) == PIXEL_FIELDS  # the pixel fields are named once
