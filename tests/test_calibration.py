"""INT8 calibration: TensorRT-compatible Q/DQ layout, cache round-trip, refusals, accuracy gate + fallback."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch

from fer_edge.calibration import verify_int8
from fer_edge.calibration.cache import (
    cache_header,
    format_cache,
    parse_cache,
    read_cache,
    scale_to_hex,
    trt_version_int,
    write_cache,
)
from fer_edge.calibration.gate import tv_distance
from fer_edge.calibration.metrics import accuracy, evaluate, macro_f1
from fer_edge.calibration.qdq import inspect_qdq, qdq_from_trt_cache
from fer_edge.calibration.quantize import GateFailed, calibrate
from fer_edge.export.images import synthetic_faces
from fer_edge.export.onnx import export_onnx
from fer_edge.runtime.backends.base import META_CONTRACT, META_PRECISION
from fer_edge.runtime.contract import LABELS, PreprocessSpec, preprocess
from fer_edge.runtime.errors import ConfigError, DataError, ManifestError, ModelError
from fer_edge.runtime.manifest import read_manifest, sha256_file
from fer_edge.train.checkpoint import save_checkpoint
from fer_edge.train.models import FerNet, ModelSpec

SPEC = PreprocessSpec(size=32)


def _net(seed: int, sensitive: bool = False) -> FerNet:
    torch.manual_seed(seed)
    net = FerNet(ModelSpec(backbone="tiny", feature_dim=32, width=0.5)).eval()
    with torch.no_grad():
        net.head.weight.mul_(20.0)  # confident, varied predictions
        net.head.bias.zero_()
        if sensitive:
            # One feature carries a huge constant the head ignores: harmless in float, but its range sets the
            # per-tensor INT8 scale of the head's input, so every real feature quantizes to zero.
            net.backbone.proj.bias[0] = 1e4
            net.head.weight[:, 0] = 0.0
    return net


def _write_faces(folder: Path, faces, labels=None) -> None:
    for i, f in enumerate(faces):
        d = folder / (LABELS[labels[i]] if labels is not None else "")
        d.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(d / f"{i:03d}.png"), f)


def _world(root: Path, sensitive: bool):
    """FP32 ONNX + 80 unlabelled calibration faces + 60 eval faces labelled with FP32's own predictions
    (so FP32 scores 100 % and the INT8 accuracy equals its agreement with FP32)."""
    net = _net(0, sensitive)
    save_checkpoint(root / "m.pt", net, LABELS, SPEC, {})
    export_onnx(root / "m.pt", root / "m.onnx")
    faces = synthetic_faces(140, 32, seed=3)
    with torch.no_grad():
        pred = net(torch.from_numpy(np.stack([preprocess(f, SPEC) for f in faces]))).argmax(1).numpy()
    _write_faces(root / "calib", faces[:80])
    _write_faces(root / "eval", faces[80:], pred[80:])
    return root / "m.onnx"


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    root = tmp_path_factory.mktemp("calib_plain")
    model = _world(root, sensitive=False)
    src = root / "source"
    _write_faces(src, synthetic_faces(60, 48, seed=9))
    res = calibrate(model, root / "calib", root / "m.int8.onnx", method="minmax", num_images=80, min_images=50,
                    eval_data=root / "eval", max_drop=100.0, compare_source=src)
    return root, model, res


@pytest.fixture(scope="module")
def sensitive(tmp_path_factory):
    root = tmp_path_factory.mktemp("calib_sensitive")
    return root, _world(root, sensitive=True)


def test_qdq_int8_zero_point_per_channel_float_bias(plain):
    root, _, res = plain
    model = onnx.load(str(res.path))
    info = inspect_qdq(model)
    assert not info.problems and not info.quantized_biases
    qdq = [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert qdq and all(zp.dtype == np.int8 and not zp.any() for zp in info.zero_points.values())
    assert len(info.zero_points) == len(qdq)
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}
    for node in model.graph.node:
        if node.op_type in ("Conv", "Gemm"):
            w_dq = producers[node.input[1]]
            assert w_dq.op_type == "DequantizeLinear", f"{node.name} weight not quantized"
            w = inits[w_dq.input[0]]
            assert w.dtype == np.int8
            assert info.weight_axes[w_dq.input[0]] == 0
            assert info.weight_scales[w_dq.input[0]].shape == (w.shape[0],)  # one scale per output channel
            if len(node.input) > 2:  # bias stays a float initializer, not a DequantizeLinear output
                assert node.input[2] in inits and inits[node.input[2]].dtype == np.float32
    # softmax and the model outputs stay float
    assert all(producers[o].op_type != "DequantizeLinear" for o in ("logits", "probs"))
    assert all(producers[i].op_type != "DequantizeLinear" for n in model.graph.node if n.op_type == "Softmax"
               for i in n.input)
    assert info.activation_scales and all(np.isfinite(v) and v > 0 for v in info.activation_scales.values())


def test_int8_contract_manifest_and_parent(plain, tmp_path):
    root, model, res = plain
    meta = {p.key: p.value for p in onnx.load(str(res.path)).metadata_props}
    fp32_meta = {p.key: p.value for p in onnx.load(str(model)).metadata_props}
    assert meta[META_PRECISION] == "int8" and meta[META_CONTRACT] == fp32_meta[META_CONTRACT]
    man = read_manifest(res.path)
    assert man.kind == "int8_onnx" and man.precision == "int8"
    assert man.inputs["fp32_onnx"] == sha256_file(model) and man.sha256 == sha256_file(res.path)
    assert verify_int8(res.path, model).kind == "int8_onnx"
    other_ck = tmp_path / "o.pt"
    save_checkpoint(other_ck, _net(7), LABELS, SPEC, {})
    other = export_onnx(other_ck, tmp_path / "o.onnx").path
    with pytest.raises(ManifestError, match="fp32_onnx"):
        verify_int8(res.path, other)


def test_report_and_source_comparison(plain):
    root, _, res = plain
    rep = json.loads((root / "m.int8.json").read_text())
    assert rep["method"] == "minmax" and rep["images"]["count"] == 80
    assert rep["images"]["list_sha256"] == res.image_list_sha256 and len(res.image_list_sha256) == 64
    assert rep["ranges"]["tensors"] > 0 and rep["sizes"]["int8_bytes"] > 0
    assert rep["gate"]["fp32"]["accuracy"] == 100.0 and rep["gate"]["passed"]
    assert rep["compare_source"]["images"]["count"] == 60 and "accuracy" in rep["compare_source"]["metrics"]
    md = (root / "m.int8.md").read_text()
    assert "source-calibrated" in md and "Layers kept in float" in md


def test_trt_cache_roundtrip(plain, tmp_path):
    _, model, res = plain
    scales = inspect_qdq(onnx.load(str(res.path))).activation_scales
    version, calibrator, back = read_cache(res.cache_path)
    assert (version, calibrator) == (100300, "EntropyCalibration2")
    assert set(back) == set(scales)
    for k, v in scales.items():
        assert abs(back[k] - v) <= 1e-6 * abs(v)
    # and back into a Q/DQ model: the cache's scales become the QuantizeLinear scales again
    rebuilt = inspect_qdq(onnx.load(str(qdq_from_trt_cache(model, res.cache_path, tmp_path / "r.onnx"))))
    assert set(rebuilt.activation_scales) == set(scales) and not rebuilt.problems
    assert all(abs(rebuilt.activation_scales[k] - v) <= 1e-6 * v for k, v in scales.items())
    write_cache(tmp_path / "c.cache", {"a:b/c": 0.5, "x": 1 / 127}, "8.6.1")
    assert (tmp_path / "c.cache").read_text().splitlines() == ["TRT-8601-EntropyCalibration2", "a:b/c: 3f000000",
                                                               "x: 3c010204"]
    assert parse_cache(format_cache({"zero": 0.0}, "10.14.1"))[2] == {"zero": 0.0}


def test_cache_header_versions_and_errors():
    assert trt_version_int("8.6.1") == 8601 and trt_version_int("8.2.3") == 8203
    assert trt_version_int("10.3.0") == 100300 and cache_header("10.14.1") == "TRT-101401-EntropyCalibration2"
    assert scale_to_hex(1 / 127) == "3c010204" and scale_to_hex(0.0) == "0"
    with pytest.raises(ConfigError):
        trt_version_int("7.2")
    with pytest.raises(ModelError):
        parse_cache("not a cache\n")
    with pytest.raises(ModelError, match="line 2"):
        parse_cache("TRT-8601-EntropyCalibration2\nfoo: zz\n")


def test_refuses_empty_small_and_broken_sets(plain, tmp_path):
    root, model, _ = plain
    out = tmp_path / "x.int8.onnx"
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        calibrate(model, tmp_path / "empty", out, min_images=1, num_images=10)
    with pytest.raises(DataError, match="does not exist"):
        calibrate(model, tmp_path / "missing", out)
    _write_faces(tmp_path / "few", synthetic_faces(5, 32))
    with pytest.raises(DataError, match="only 5 usable"):
        calibrate(model, tmp_path / "few", out, min_images=20, num_images=50)
    broken = tmp_path / "broken"
    broken.mkdir()
    for i in range(4):
        (broken / f"{i}.png").write_bytes(b"\x89PNG not really" * i)
    with pytest.raises(DataError, match="all 4 images"):
        calibrate(model, broken, out, min_images=1, num_images=10)
    with pytest.raises(DataError, match="all .* yield a face"):  # --detect on crops without a findable face
        calibrate(model, tmp_path / "few", out, min_images=1, num_images=10, detect=True)
    with pytest.raises(ConfigError):
        calibrate(model, tmp_path / "few", out, min_images=20, num_images=10)
    assert not out.exists()


def test_gate_keeps_the_outlier_layer_in_float(sensitive):
    root, model = sensitive
    res = calibrate(model, root / "calib", root / "s.int8.onnx", method="minmax", num_images=80, min_images=50,
                    eval_data=root / "eval", max_drop=1.0)
    first = res.gate.steps[0]
    assert first.drop > 50.0  # quantizing everything collapses the model
    assert res.passed and res.gate.drop <= 1.0
    assert res.excluded and res.excluded[0] == "/net/head/Gemm"
    assert res.excluded[0] in inspect_qdq(onnx.load(str(res.path))).float_nodes
    assert "/net/head/Gemm" in (root / "s.int8.md").read_text()
    assert read_manifest(res.path).extra["excluded"] == res.excluded
    # the cache omits the float layer's tensors, so rebuilding Q/DQ from it keeps that layer float too
    rebuilt = inspect_qdq(onnx.load(str(qdq_from_trt_cache(model, res.cache_path, root / "r.onnx"))))
    assert res.excluded[0] in rebuilt.float_nodes


def test_gate_failure_writes_no_model(sensitive):
    from fer_edge.calibration.quantize import calibrate as cal

    root, model = sensitive
    out = root / "f.int8.onnx"
    with pytest.raises(GateFailed, match="NOT written") as info:
        cal(model, root / "calib", out, method="minmax", num_images=80, min_images=50, eval_data=root / "eval",
            max_drop=1.0, max_fallback_layers=0)
    assert not out.exists() and not out.with_suffix(".cache").exists()
    assert json.loads((root / "f.int8.json").read_text())["status"].startswith("FAILED")
    assert not info.value.result.passed


def test_cli_calibrate(plain, tmp_path):
    from fer_edge.cli import main

    root, model, _ = plain
    out = tmp_path / "cli.int8.onnx"
    args = ["calibrate", "--model", str(model), "--images", str(root / "calib"), "--out", str(out),
            "--method", "minmax", "--num-images", "80", "--min-images", "50"]
    assert main(args) == 0 and out.is_file() and out.with_suffix(".cache").is_file()
    assert main(args[:-1] + ["500"]) == 1  # too few images → one-line error, exit 1


def test_metrics_against_reference():
    y = np.array([0, 0, 1, 1, 2, 2])
    p = np.array([0, 1, 1, 1, 2, 0])
    assert accuracy(y, p) == pytest.approx(100 * 4 / 6)
    # per class: c0 tp1 fp1 fn1 → 0.5; c1 tp2 fp1 fn0 → 0.8; c2 tp1 fp0 fn1 → 2/3
    assert macro_f1(y, p) == pytest.approx(100 * (0.5 + 0.8 + 2 / 3) / 3)
    probs = np.eye(3)[p]
    m = evaluate(probs, y, reference=np.eye(3)[y])
    assert m.agreement == pytest.approx(m.accuracy) and m.n == 6
    assert tv_distance(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])) == 1.0
    assert tv_distance(probs, probs) == 0.0


def test_entropy_clips_outliers_that_minmax_keeps(tmp_path):
    """Entropy (2048 bins, like TensorRT) must pick a tighter range than min-max on heavy-tailed data;
    with ORT's default 128 bins it silently degenerated to min-max."""
    from onnx import TensorProto, helper
    from onnxruntime.quantization.calibrate import load_tensors_data

    from fer_edge.calibration.qdq import compute_ranges

    w = onnx.numpy_helper.from_array(np.ones((1, 1, 1, 1), np.float32), "w")
    graph = helper.make_graph([helper.make_node("Conv", ["input", "w"], ["y"], name="conv")], "g",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 1, 8, 8])], [w])
    path = tmp_path / "conv.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    x = np.random.default_rng(0).normal(0, 1, (64, 1, 8, 8)).astype(np.float32)
    x[0, 0, 0, 0] = 60.0  # one outlier
    amax = {}
    for method in ("minmax", "entropy"):
        data = load_tensors_data(compute_ranges(path, x, method, tmp_path / f"{method}.json")).data
        lo, hi = data["input"].range_value
        amax[method] = float(np.max(np.abs(np.concatenate([np.ravel(lo), np.ravel(hi)]))))
    assert amax["minmax"] == pytest.approx(60.0)
    assert amax["entropy"] < 10.0
