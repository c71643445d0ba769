"""INT8 calibration: TensorRT-compatible Q/DQ layout, the CPU layout beside it, cache round-trip, refusals,
the label-free gate + fallback, and disjoint calibration / gate image lists."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from calibration_fixtures import SPEC, _net, _write_faces

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
from fer_edge.calibration.qdq import inspect_qdq, qdq_from_trt_cache
from fer_edge.calibration.quantize import calibrate
from fer_edge.export.images import synthetic_faces
from fer_edge.export.onnx import export_onnx
from fer_edge.runtime.backends.base import META_CONTRACT, META_PRECISION
from fer_edge.runtime.contract import LABELS, preprocess
from fer_edge.runtime.errors import ConfigError, DataError, ManifestError, ModelError
from fer_edge.runtime.manifest import read_manifest, sha256_file
from fer_edge.train.checkpoint import save_checkpoint


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


def test_cpu_model_is_u8s8_and_runs_in_int8_on_onnxruntime(plain):
    """The CPU flavour: uint8 activations, int8 per-channel weights, int32 biases; every Conv/Gemm fused into an
    int8 kernel by ONNX Runtime (no DQ→float→Q round trip); same ranges as the TensorRT model."""
    from fer_edge.calibration.cpu import inspect_cpu, node_profile
    from fer_edge.runtime.model import cpu_artefact_path

    root, model, res = plain
    assert res.cpu_path == cpu_artefact_path(res.path) == root / "m.int8-cpu.onnx"
    cpu = onnx.load(str(res.cpu_path))
    layout = inspect_cpu(cpu)
    assert not layout.problems and layout.activations > 0 and layout.weights > 0
    with pytest.raises(AssertionError):  # and the TensorRT model is not that layout (nor the reverse)
        assert not inspect_cpu(onnx.load(str(res.path))).problems
    assert inspect_qdq(cpu).problems
    prof = node_profile(res.cpu_path)
    assert prof["float_compute"] == 0 and prof["int8"] >= 2 and prof["qdq"] <= 2
    assert prof["ops"].get("QLinearConv", 0) + prof["ops"].get("NhwcQLinearConv", 0) >= 1
    assert res.report["cpu"]["ort_nodes"]["int8"] == prof["int8"]
    man = read_manifest(res.cpu_path)
    assert man.kind == "int8_onnx" and man.extra["flavour"] == "cpu"
    assert man.inputs == {"fp32_onnx": sha256_file(model), "int8_onnx": sha256_file(res.path)}
    assert verify_int8(res.cpu_path, model).kind == "int8_onnx"
    meta = {p.key: p.value for p in cpu.metadata_props}
    assert meta[META_PRECISION] == "int8"


def test_onnxruntime_backend_picks_the_cpu_model(plain, tmp_path, caplog):
    import shutil

    from fer_edge.runtime.backends import open_backend
    from fer_edge.runtime.backends.onnxruntime import OnnxRuntimeBackend
    from fer_edge.runtime.manifest import sidecar_path

    root, model, res = plain
    be = open_backend(res.path, "onnxruntime")
    assert be.model.path == res.cpu_path and be.info()["path"] == str(res.cpu_path)
    assert OnnxRuntimeBackend.from_path(res.path, cpu_int8=False).model.path == res.path
    assert OnnxRuntimeBackend.from_path(res.cpu_path).model.path == res.cpu_path
    x = np.stack([preprocess(f, SPEC) for f in synthetic_faces(8, 32, seed=5)])
    assert be.infer(x).shape == (8, len(LABELS))
    # a CPU model from another calibration beside this INT8 model is not run in its place
    other = tmp_path / "m.int8.onnx"
    shutil.copy(res.path, other)
    shutil.copy(sidecar_path(res.path), sidecar_path(other))
    shutil.copy(res.cpu_path, tmp_path / "m.int8-cpu.onnx")
    shutil.copy(sidecar_path(res.cpu_path), sidecar_path(tmp_path / "m.int8-cpu.onnx"))
    assert open_backend(other, "onnxruntime").model.path == tmp_path / "m.int8-cpu.onnx"
    data = onnx.load(str(other))
    data.doc_string = "another calibration"
    onnx.save(data, str(other))  # the TensorRT model changed; its old CPU sibling no longer matches
    from fer_edge.runtime.manifest import Manifest, write_manifest

    old = read_manifest(res.path)
    write_manifest(other, Manifest(kind="int8_onnx", precision="int8", labels=old.labels, preprocess=old.preprocess,
                                   crop=old.crop, inputs=old.inputs))
    assert open_backend(other, "onnxruntime").model.path == other
    assert "calibrated with another" in caplog.text


def test_cpu_ranges_clamp_relu_outputs_at_zero(tmp_path):
    """Symmetric range methods give a ReLU output a negative half; the CPU model folds the ReLU into Q/DQ, so its
    range must start at 0 (else negatives would pass the folded ReLU)."""
    from onnx import TensorProto, helper
    from onnxruntime.quantization.calibrate import (
        CalibrationMethod,
        TensorData,
        TensorsData,
        load_tensors_data,
        save_tensors_data,
    )

    from fer_edge.calibration.cpu import cpu_ranges

    w = onnx.numpy_helper.from_array(np.ones((1, 1, 1, 1), np.float32), "w")
    graph = helper.make_graph([helper.make_node("Conv", ["input", "w"], ["c"], name="conv"),
                               helper.make_node("Relu", ["c"], ["r"], name="relu")], "g",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 4, 4])],
                              [helper.make_tensor_value_info("r", TensorProto.FLOAT, [1, 1, 4, 4])], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "m.onnx"))
    rng = {k: TensorData(lowest=np.float32(-3.0), highest=np.float32(3.0)) for k in ("input", "c", "r")}
    save_tensors_data(TensorsData(CalibrationMethod.Entropy, rng), tmp_path / "r.json")
    out = load_tensors_data(cpu_ranges(tmp_path / "m.onnx", tmp_path / "r.json", tmp_path / "c.json"))
    assert [float(v) for v in out["r"].range_value] == [0.0, 3.0]
    assert [float(v) for v in out["c"].range_value] == [-3.0, 3.0]  # only what a ReLU produced changes


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
    # a quarter of the 80 calibration-folder faces is held back for the gate before calibration picks its images
    assert rep["method"] == "minmax" and rep["images"]["count"] == 60
    assert rep["sets"]["gate"]["count"] == 20 and rep["sets"]["gate"]["held_back_from_calibration_folder"]
    assert rep["images"]["list_sha256"] == res.image_list_sha256 and len(res.image_list_sha256) == 64
    assert rep["sets"]["gate"]["list_sha256"] != res.image_list_sha256
    assert rep["sets"]["overlap"] == {"calibration_gate": 0, "calibration_validation": 0}
    assert rep["ranges"]["tensors"] > 0 and rep["sizes"]["int8_bytes"] > 0 and rep["sizes"]["int8_cpu_bytes"] > 0
    gate = rep["gate"]
    assert gate["passed"] and set(gate["checks"]) == {"tensorrt", "cpu"}
    assert gate["fp32_validation"]["accuracy"] == 1.0 and gate["max_drop"] == 100.0  # a fraction; the limit in points
    assert all(0.0 <= c["gate"]["agreement"] <= 100.0 and c["drop"] is not None for c in gate["checks"].values())
    assert rep["compare_source"]["images"]["count"] == 60 and "accuracy" in rep["compare_source"]["metrics"]
    md = (root / "m.int8.md").read_text()
    assert "source-calibrated" in md and "Layers kept in float" in md and "top-1 agreement" in md
    assert "Image sets" in md and "in int8" in md


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
    gate = dict(gate_images=root / "eval")  # a gate set of its own, so the calibration-side refusals show
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        calibrate(model, tmp_path / "empty", out, min_images=1, num_images=10, **gate)
    with pytest.raises(DataError, match="does not exist"):
        calibrate(model, tmp_path / "missing", out)
    _write_faces(tmp_path / "few", synthetic_faces(5, 32))
    with pytest.raises(DataError, match="only 5 usable"):
        calibrate(model, tmp_path / "few", out, min_images=20, num_images=50, **gate)
    with pytest.raises(DataError, match="INT8 gate leaves fewer than"):  # too few to hold a gate set back
        calibrate(model, tmp_path / "few", out, min_images=1, num_images=50)
    broken = tmp_path / "broken"
    broken.mkdir()
    for i in range(4):
        (broken / f"{i}.png").write_bytes(b"\x89PNG not really" * i)
    with pytest.raises(DataError, match="all 4 images"):
        calibrate(model, broken, out, min_images=1, num_images=10, **gate)
    with pytest.raises(DataError, match="all .* yield a face"):  # --detect on crops without a findable face
        calibrate(model, tmp_path / "few", out, min_images=1, num_images=10, detect=True, **gate)
    with pytest.raises(ConfigError):
        calibrate(model, tmp_path / "few", out, min_images=20, num_images=10, **gate)
    with pytest.raises(ConfigError, match="percent"):
        calibrate(model, tmp_path / "few", out, min_agreement=0.99, **gate)
    assert not out.exists()


def test_calibration_and_gate_lists_are_disjoint(plain, tmp_path):
    """A gate folder holding copies of calibration images: those copies are never calibrated on."""
    import shutil

    root, model, _ = plain
    calib_files = sorted((root / "calib").glob("*.png"))
    gate_dir = tmp_path / "gate"
    gate_dir.mkdir()
    for f in calib_files[:30]:  # same bytes under other names
        shutil.copy(f, gate_dir / f"copy_{f.name}")
    res = calibrate(model, root / "calib", tmp_path / "d.int8.onnx", method="minmax", num_images=80, min_images=40,
                    gate_images=gate_dir, min_agreement=0.0)
    sets = res.report["sets"]
    assert sets["gate"]["count"] == 30 and not sets["gate"]["held_back_from_calibration_folder"]
    assert sets["calibration"]["count"] == 50 and sets["calibration"]["excluded_as_overlap"] == 30
    assert sets["overlap"]["calibration_gate"] == 0
    from fer_edge.calibration.images import load_images
    from fer_edge.calibration.sets import load_sets
    from fer_edge.runtime.model import read_contract

    s = load_sets(read_contract(model), root / "calib", 80, 40, gate_images=gate_dir)
    assert not set(s.calibration.digests) & set(s.gate.digests) and len(s.calibration.digests) == 50
    every = load_images(root / "calib", read_contract(model), 80, 1)
    assert set(every.digests) > set(s.calibration.digests)  # the 30 copied faces were left out


def test_cli_calibrate(plain, tmp_path):
    from fer_edge.cli import main

    root, model, _ = plain
    out = tmp_path / "cli.int8.onnx"
    args = ["calibrate", "--model", str(model), "--images", str(root / "calib"), "--out", str(out),
            "--method", "minmax", "--num-images", "80", "--min-images", "50"]
    assert main(args) == 0 and out.is_file() and out.with_suffix(".cache").is_file()
    assert main(args[:-1] + ["500"]) == 1  # too few images → one-line error, exit 1


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


@pytest.mark.parametrize("gen", ["8.6", "10"])
def test_tensorrt_qdq_model_still_builds_through_the_fake_builder(plain, monkeypatch, tmp_path, gen):
    """Writing the CPU model beside it changed nothing in TensorRT's Q/DQ model: TRT-layout self-check, then the
    recording fake of TensorRT parses and builds it as INT8."""
    from fakes.conftest_helpers import called, install_fakes

    from fer_edge.export.trt_ops import check_trt_ops
    from fer_edge.runtime.tensorrt import BuildOptions, build_engine

    _, _, res = plain
    model = onnx.load(str(res.path))
    info = inspect_qdq(model)
    assert not info.problems and not info.quantized_biases
    check_trt_ops(model, where="INT8 model")
    assert any(n.op_type == "Relu" for n in model.graph.node)  # ReLU stays explicit for TensorRT
    trt = install_fakes(monkeypatch, gen)
    result = build_engine(res.path, tmp_path / "m.engine", BuildOptions(precision="best", batch=(1, 8, 32)))
    assert called(trt, "OnnxParser.parse_from_file") == [str(res.path)]
    assert result.plan.precision == "int8"
