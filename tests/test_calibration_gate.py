"""The INT8 gate: label-free agreement with FP32 drives the per-layer float fallback; labels only when given."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from fer_edge.calibration.gate import tv_distance
from fer_edge.calibration.qdq import inspect_qdq, qdq_from_trt_cache
from fer_edge.calibration.quantize import GateFailed, calibrate
from fer_edge.runtime.manifest import read_manifest


def test_label_free_gate_keeps_the_outlier_layer_in_float(sensitive):
    """No labels anywhere: agreement with FP32 on held-back faces drives the fallback search."""
    root, model = sensitive
    res = calibrate(model, root / "calib", root / "s.int8.onnx", method="minmax", num_images=80, min_images=50,
                    min_agreement=99.0)
    first = res.gate.steps[0]
    assert not first.passed and min(c.gate.agreement for c in first.checks.values()) < 50.0  # INT8 collapses
    assert res.passed and res.gate.agreement >= 99.0 and res.gate.drop is None  # no labels: no accuracy
    assert res.gate.fp32_validation is None
    assert res.excluded and res.excluded[0] == "/net/head/Gemm"
    assert res.excluded[0] in inspect_qdq(onnx.load(str(res.path))).float_nodes
    assert "/net/head/Gemm" in (root / "s.int8.md").read_text()
    assert read_manifest(res.path).extra["excluded"] == res.excluded
    assert read_manifest(res.cpu_path).extra["excluded"] == res.cpu_excluded  # the CPU model's own search
    assert res.gate.excluded == {"tensorrt": res.excluded, "cpu": res.cpu_excluded}
    # the cache omits the float layer's tensors, so rebuilding Q/DQ from it keeps that layer float too
    rebuilt = inspect_qdq(onnx.load(str(qdq_from_trt_cache(model, res.cache_path, root / "r.onnx"))))
    assert res.excluded[0] in rebuilt.float_nodes


def test_gate_failure_writes_no_model(sensitive):
    from fer_edge.calibration.quantize import calibrate as cal

    root, model = sensitive
    out = root / "f.int8.onnx"
    with pytest.raises(GateFailed, match="NOT written") as info:
        cal(model, root / "calib", out, method="minmax", num_images=80, min_images=50, max_fallback_layers=0)
    assert not out.exists() and not out.with_suffix(".cache").exists()
    assert not (root / "f.int8-cpu.onnx").exists()
    assert json.loads((root / "f.int8.json").read_text())["status"].startswith("FAILED")
    assert not info.value.result.passed


def test_labelled_validation_drop_gates_only_when_asked(sensitive):
    """With labels, the drop is reported; max_drop makes it a second condition of the gate."""
    root, model = sensitive
    res = calibrate(model, root / "calib", root / "v.int8.onnx", method="minmax", num_images=80, min_images=50,
                    eval_data=root / "eval", min_agreement=0.0)
    assert res.passed and res.excluded == []  # agreement 0 required, no max_drop: the collapsed model passes
    assert res.gate.drop > 50.0 and res.gate.fp32_validation.accuracy == 1.0  # drop in points, accuracy a fraction
    with pytest.raises(GateFailed, match="validation accuracy drop"):
        calibrate(model, root / "calib", root / "w.int8.onnx", method="minmax", num_images=80, min_images=50,
                  eval_data=root / "eval", min_agreement=0.0, max_drop=1.0, max_fallback_layers=0)


def test_label_free_gate_is_the_default():
    from fer_edge.calibration.config import CalibrateConfig
    from fer_edge.config import load_config

    cfg = CalibrateConfig()
    assert cfg.max_drop is None and cfg.min_agreement == 99.0 and cfg.cpu
    shipped = load_config("default").calibrate
    assert shipped.max_drop is None and shipped.min_agreement >= 99.0 and shipped.eval is None


def test_tv_distance_against_reference():
    probs = np.eye(3)[[0, 1, 1, 1, 2, 0]]
    assert tv_distance(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])) == 1.0
    assert tv_distance(probs, probs) == 0.0


def test_each_flavour_keeps_only_the_float_layers_it_needs(monkeypatch, tmp_path):
    """A layer TensorRT's symmetric int8 needs in float is not forced on the CPU model, which passed as it was:
    every float layer there is a DQ→float→Q round trip that costs the CPU its INT8 speed."""
    import fer_edge.calibration.gate as g

    written = {}

    def quantize_fn(path, flavour, nodes_to_exclude=(), nodes_to_quantize=None):
        written[flavour] = list(nodes_to_exclude)

    def fake_check(path, flavour, data, min_agreement, max_drop, fp32_val):
        ok = flavour == "cpu" or "/bad" in written[flavour]
        return g.FlavourCheck(flavour, g.Agreement(10, 100.0 if ok else 90.0, 0.0, 0.0, 0.0), ok)

    monkeypatch.setattr(g, "check", fake_check)
    searched = []
    monkeypatch.setattr(g, "sensitivity", lambda qf, cands, flavour, x, p, wd: searched.append(flavour) or
                        [("/bad", 0.5), ("/other", 0.1)])
    data = g.GateData(np.zeros((10, 1), np.float32), np.full((10, 7), 1 / 7, np.float32))
    res = g.run_gate(quantize_fn, {"tensorrt": tmp_path / "t.onnx", "cpu": tmp_path / "c.onnx"},
                     ["/bad", "/other"], data, 99.0, None, 4, tmp_path)
    assert res.passed and res.excluded == {"tensorrt": ["/bad"], "cpu": []}
    assert searched == ["tensorrt"]  # the flavour that passed was never searched
    assert written == {"tensorrt": ["/bad"], "cpu": []}  # each file holds its own kept model
