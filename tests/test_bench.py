"""``run_bench`` / ``fer-edge bench`` on a tiny model: every available path measured, sane numbers."""
from __future__ import annotations

import json

import pytest
from test_eval_support import shared_artefacts

from fer_edge.evaluation.bench import compute_ratios, judge_goals, run_bench
from fer_edge.evaluation.peak import measure_peak
from fer_edge.evaluation.timing import LatencyStats
from fer_edge.evaluation.worker import PathResult
from fer_edge.runtime.errors import ConfigError


@pytest.fixture(scope="session")
def artefacts(tmp_path_factory):
    return shared_artefacts(tmp_path_factory)


FAST = dict(iters=15, warmup=2, peak_size=128, peak_reps=3, video_frames=0, batches=(1, 8, 32), rounds=3)


def _sane(r: PathResult) -> None:
    assert r.status == "ok", r.reason
    lat = r.latency
    assert 0 < lat["min_ms"] <= lat["p50_ms"] <= lat["p95_ms"] <= lat["p99_ms"]
    assert set(r.throughput) == {"1", "8", "32"} and all(v > 0 for v in r.throughput.values())
    assert r.size_mb > 0 and r.peak_rss_mb > 0 and r.macs_per_image > 0
    assert r.gmacs_per_s > 0 and 0 < r.peak_fraction


def test_bench_every_path_in_subprocesses(artefacts, tmp_path):
    res = run_bench(model=artefacts.onnx, out_dir=tmp_path / "b", **FAST)   # int8 + checkpoint found by name/hash
    assert list(res.paths) == ["torch", "ort-fp32", "ort-int8", "trt"]
    for name in ("torch", "ort-fp32", "ort-int8"):
        _sane(res.paths[name])
    assert res.paths["ort-int8"].precision == "int8"
    assert res.paths["trt"].status == "skipped" and "TensorRT" in res.paths["trt"].reason
    # torch is imported only by the torch worker: the ORT workers' RSS is their own
    assert res.paths["ort-fp32"].peak_rss_mb < res.paths["torch"].peak_rss_mb
    assert res.ratios["int8_vs_torch_latency_b1"] > 0 and res.ratios["int8_vs_fp32_latency_b1"] > 0
    assert [g["key"] for g in res.goals] == ["int8_vs_torch_latency_b1", "int8_vs_fp32_latency_b1",
                                             "int8_vs_fp32_throughput_b32", "int8_peak_fraction_b32",
                                             "int8_accuracy_drop_pt"]
    assert res.peak["int8_gmacs_per_s"] > 0 and res.peak["fp32_gmacs_per_s"] > 0
    files = {p.name for p in (tmp_path / "b").iterdir()}
    assert {"bench.json", "bench.md", "latency_p50.png", "throughput.png", "latency_hist.png"} <= files
    data = json.loads((tmp_path / "b" / "bench.json").read_text())
    assert data["paths"]["ort-int8"]["latency"]["p99_ms"] >= data["paths"]["ort-int8"]["latency"]["p50_ms"]
    md = (tmp_path / "b" / "bench.md").read_text()
    assert "| ort-int8 |" in md and "skipped" in md and "GEMM peak" in md
    diag = res.diagnosis["ort-int8"]
    assert diag["activation_type"] == "uint8" and diag["quantized_compute"] > 0 and "optimised graph" in md


def test_cli_bench_in_process(artefacts, tmp_path, capsys):
    from fer_edge import cli

    rc = cli.main(["bench", "--model", str(artefacts.onnx), "--compare", "ort-fp32,ort-int8", "--out",
                   str(tmp_path / "c"), "--iters", "10", "--warmup", "1", "--batches", "1,4", "--peak-size", "64",
                   "--video-frames", "0", "--in-process", "--config", "ci"])
    assert rc == 0
    data = json.loads((tmp_path / "c" / "bench.json").read_text())
    assert set(data["paths"]) == {"ort-fp32", "ort-int8"}
    assert set(data["paths"]["ort-fp32"]["throughput"]) == {"1", "4"}
    assert "int8 vs fp32 latency b1" in capsys.readouterr().out
    rc = cli.main(["bench", "--model", str(artefacts.onnx), "--compare", "tpu", "--out", str(tmp_path / "d")])
    assert rc == 1


def test_unknown_path_and_nothing_to_measure():
    with pytest.raises(ConfigError):
        run_bench(compare=["torch"])


def test_ratios_and_goals_from_known_numbers():
    def ok(name, p50, thr32, frac=None, precision="fp32"):
        return PathResult(name=name, precision=precision, latency={"p50_ms": p50, "min_ms": p50 / 2},
                          throughput={"32": thr32}, peak_fraction=frac)

    paths = {"torch": ok("torch", 6.0, 100.0), "ort-fp32": ok("ort-fp32", 2.0, 400.0),
             "ort-int8": ok("ort-int8", 1.0, 1000.0, frac=0.15, precision="int8")}
    r = compute_ratios(paths, 32)
    assert r["int8_vs_torch_latency_b1"] == pytest.approx(6.0)
    assert r["int8_vs_fp32_latency_b1"] == pytest.approx(2.0)
    assert r["int8_vs_fp32_throughput_b32"] == pytest.approx(2.5)
    assert r["int8_vs_fp32_latency_b1_min"] == pytest.approx(2.0)
    assert r["trt_vs_torch_latency_b1"] is None
    r["int8_accuracy_drop_pt"] = 0.7
    goals = {g["key"]: g for g in judge_goals(r)}
    assert goals["int8_vs_torch_latency_b1"]["met"] and goals["int8_vs_fp32_latency_b1"]["met"]
    assert goals["int8_vs_fp32_throughput_b32"]["met"]
    assert goals["int8_peak_fraction_b32"]["met"] is False
    assert "50 %" in goals["int8_peak_fraction_b32"]["note"]
    drop = goals["int8_accuracy_drop_pt"]
    assert drop["met"] is False and drop["direction"] == "<=" and "0.20" in drop["note"]
    assert {g["key"]: g["met"] for g in judge_goals({**r, "int8_accuracy_drop_pt": -0.3})}["int8_accuracy_drop_pt"]


def test_video_fps_runs_the_runtime_pipeline(artefacts):
    from fer_edge.evaluation.video import video_fps

    v = video_fps(str(artefacts.int8), frames=12)
    assert v["status"] == "ok", v
    assert v["frames"] == 12 and v["fps"] > 0
    assert video_fps(None)["status"] == "skipped"


def test_latency_stats_and_peak():
    s = LatencyStats.from_samples([0.001] * 98 + [0.002, 0.010])
    assert s.p50_ms == pytest.approx(1.0) and s.p50_ms <= s.p95_ms <= s.p99_ms and s.n == 100
    peak = measure_peak(size=64, reps=2)
    assert peak.fp32_gmacs_per_s > 0 and peak.int8_gmacs_per_s > 0
    assert {r.engine for r in peak.runs.values()} == {"ort-MatMul", "numpy-blas", "ort-MatMulInteger"}


def test_finds_int8_and_checkpoint_in_a_pipeline_run_folder(artefacts, tmp_path):
    """runs/x/export/model.onnx, runs/x/calibrate/model.int8.onnx, runs/x/train/dann/best.pt."""
    import shutil
    from pathlib import Path

    from fer_edge.evaluation.bench import default_int8, find_checkpoint

    layout = {artefacts.onnx: "export/model.onnx", artefacts.int8: "calibrate/model.int8.onnx",
              artefacts.checkpoint: "train/dann/best.pt"}
    for src, rel in layout.items():
        dst = tmp_path / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dst)
        shutil.copy(Path(str(src) + ".json"), Path(str(dst) + ".json"))
    model = tmp_path / "export" / "model.onnx"
    assert default_int8(model) == (tmp_path / "calibrate" / "model.int8.onnx").resolve()
    assert find_checkpoint(model) == (tmp_path / "train" / "dann" / "best.pt").resolve()


def test_trt_path_in_process_through_the_fakes(monkeypatch, tmp_path):
    """The trt path opens the engine with the TensorRT backend (fake TensorRT + pycuda here)."""
    from fakes.conftest_helpers import install_fakes
    from fakes.models import make_model

    from fer_edge.runtime.tensorrt import BuildOptions, build_engine

    install_fakes(monkeypatch, "10")
    model = make_model(tmp_path / "model.onnx")
    build_engine(model, tmp_path / "model.engine", BuildOptions(batch=(1, 8, 32)))
    res = run_bench(model=model, engine=tmp_path / "model.engine", compare=["ort-fp32", "trt"], isolate=False,
                    **FAST)
    trt = res.paths["trt"]
    assert trt.status == "ok" and trt.backend_info["backend"] == "tensorrt"
    assert trt.macs_per_image == res.paths["ort-fp32"].macs_per_image > 0    # counted from the FP32 ONNX
    assert res.ratios["trt_vs_torch_latency_b1"] is None                       # torch not requested


def test_a_broken_path_fails_alone_and_the_others_are_interleaved(artefacts, tmp_path):
    bad = tmp_path / "bad.int8.onnx"
    bad.write_bytes(b"\x08\x07 truncated onnx")
    res = run_bench(model=artefacts.onnx, int8=bad, compare=["ort-fp32", "ort-int8"], isolate=True,
                    **{**FAST, "iters": 10})
    assert res.paths["ort-int8"].status == "failed" and "bad.int8.onnx" in res.paths["ort-int8"].reason
    fp32 = res.paths["ort-fp32"]
    assert fp32.status == "ok" and fp32.latency["n"] == 12            # ceil(10 / 3) calls in each of 3 rounds
    assert res.ratios["int8_vs_fp32_latency_b1"] is None
    assert {g["key"]: g["met"] for g in res.goals}["int8_vs_fp32_latency_b1"] is None


def test_int8_diagnosis_names_s8s8_activations(artefacts, tmp_path):
    """An INT8 with int8 activations is flagged: ONNX Runtime's fast x86 kernels want uint8."""
    import numpy as np
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from fer_edge.evaluation.ortgraph import explain_int8

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{"input": np.zeros((1, 1, 32, 32), np.float32)}])

        def get_next(self):
            return next(self.items, None)

    s8 = tmp_path / "s8.onnx"
    quantize_static(str(artefacts.onnx), str(s8), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    extra_options={"ActivationSymmetric": True})
    d = explain_int8(s8)
    assert d["activation_type"] == "int8" and any("S8S8" in n for n in d["notes"])
    assert explain_int8(tmp_path / "missing.onnx").get("error")


def test_node_profile_counts_int8_kernels_after_warm_up():
    """The profile groups ORT profiler events by node and op type, leaving out the warm-up runs."""
    from fer_edge.evaluation.ortprofile import summarise

    def run(ts, slow=1):
        return [{"name": "model_run", "cat": "Session", "ts": ts, "dur": 10}] + [
            {"name": f"{node}_kernel_time", "cat": "Node", "ts": ts + 1, "dur": dur * slow, "args": {"op_name": op}}
            for node, op, dur in (("c1", "QLinearConv", 300), ("c2", "Conv", 100), ("dq", "DequantizeLinear", 100))]

    events = run(0, slow=1000) + run(100) + run(200)  # the first run (warm-up) is slow and must not count
    prof = summarise(events, runs=2, batch=32, skip_runs=1)
    assert prof["nodes"] == 3 and prof["int8"] == 1 and prof["float_compute"] == 1 and prof["qdq"] == 1
    assert prof["by_op"]["QLinearConv"] == {"count": 1, "ms": 0.3}
    assert prof["int8_time_share"] == pytest.approx(0.6)


def test_bench_runs_the_cpu_int8_artefact_with_profile_and_accuracy(artefacts, tmp_path):
    """With model.int8-cpu.onnx beside model.int8.onnx, ort-int8 runs the CPU layout (as the runtime does); the
    node profile shows it runs more int8 kernels than the TensorRT Q/DQ model as given; accuracy in the same run."""
    import shutil

    import cv2
    import numpy as np

    from fer_edge.calibration.quantize import calibrate
    from fer_edge.runtime.contract import LABELS

    root = tmp_path / "m"
    root.mkdir()
    for f in (artefacts.onnx, artefacts.checkpoint):
        shutil.copy(f, root / f.name)
        shutil.copy(f"{f}.json", root / f"{f.name}.json")
    rng = np.random.default_rng(0)
    (root / "calib").mkdir()
    for i in range(60):
        cv2.imwrite(str(root / "calib" / f"{i}.png"), rng.integers(0, 256, (32, 32), dtype=np.uint8))
    for i in range(14):
        d = root / "val" / LABELS[i % len(LABELS)]
        d.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(d / f"{i}.png"), rng.integers(0, 256, (32, 32), dtype=np.uint8))
    model = root / "model.onnx"
    cal = calibrate(model, root / "calib", root / "model.int8.onnx", method="minmax", num_images=60, min_images=20,
                    min_agreement=0.0)
    res = run_bench(model=model, compare=["ort-fp32", "ort-int8"], out_dir=tmp_path / "b", accuracy_data=root / "val",
                    profile_runs=3, **{**FAST, "isolate": False})
    int8 = res.paths["ort-int8"]
    assert int8.status == "ok" and int8.model == str(cal.path)
    assert int8.backend_info["path"] == str(cal.cpu_path)
    diag = res.diagnosis["ort-int8"]
    assert diag["file"] == str(cal.cpu_path) and diag["profile"]["float_compute"] == 0
    assert diag["profile"]["int8"] > diag["as_given"]["profile"]["int8"]
    assert res.diagnosis["ort-fp32"]["profile"]["int8"] == 0
    acc = res.accuracy
    assert acc["ort-int8"]["file"] == str(cal.cpu_path) and acc["ort-fp32"]["n"] == 14
    drop = acc["ort-fp32"]["accuracy"] - acc["ort-int8"]["accuracy"]
    assert res.ratios["int8_accuracy_drop_pt"] == pytest.approx(drop)
    md = (tmp_path / "b" / "bench.md").read_text()
    assert "Node profile" in md and "model.int8-cpu.onnx" in md and "INT8 accuracy drop" in md
