"""The main job on the ci config: every stage's outputs, the report's numbers, and resume after a kill."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fer_edge.pipeline.main import select_across_methods
from fer_edge.pipeline.stamps import read_stamp

STAGES = ("synth", "train", "export", "calibrate", "build", "eval", "bench", "run", "report")


def _cmd(out: Path, data: Path, *extra: str):
    return [sys.executable, "-m", "fer_edge.cli", "-q", "pipeline", "--config", "ci", "--out", str(out),
            "--no-progress", "--set", f"data.root={data}", *extra]


@pytest.fixture(scope="module")
def ci_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    out, data = root / "run", root / "data"
    proc = subprocess.run(_cmd(out, data), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, data, proc.stdout


def test_every_stage_leaves_its_outputs(ci_run):
    out, _, stdout = ci_run
    for stage in STAGES:
        st = read_stamp(out / stage)
        assert st is not None, f"{stage} left no stamp"
        for rel in st.outputs:
            p = Path(rel) if Path(rel).is_absolute() else out / rel
            assert p.is_file(), f"{stage}: {rel} missing"
    assert read_stamp(out / "build").status == "skipped"  # no TensorRT in CI
    assert "trtexec" in read_stamp(out / "build").result["trtexec"]
    for f in ("export/model.onnx", "export/model.onnx.json", "calibrate/model.int8.onnx", "run/results.jsonl",
              "bench/bench.json", "report.html", "report.md", "train/source_only/summary.json"):
        assert (out / f).is_file(), f
    assert "report:" in stdout


def test_report_numbers_equal_stage_outputs(ci_run):
    out, _, _ = ci_run
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    for title in ("Source-only vs adapted vs oracle", "FP32 vs INT8", "Latency and throughput",
                  "The runtime on the cabin video", "TensorRT engine"):
        assert title in md and title in html
    assert html.count("data:image/png;base64,") >= 6  # curves, PCA, confusion, per-class, histogram, frames
    assert "Synthetic faces." in md and "cartoon heads" in html  # scores on the synthetic world say so
    for method_dir in (out / "train").iterdir():
        if not (method_dir / "summary.json").is_file():
            continue
        s = json.loads((method_dir / "summary.json").read_text())
        assert f"{100 * s['target_test_accuracy']:.1f} %" in md, method_dir.name
        assert f"{100 * s['target_test_macro_f1']:.1f} %" in md, method_dir.name
    for metrics in (out / "eval").glob("*/metrics.json"):
        m = json.loads(metrics.read_text())
        assert f"{100 * m['accuracy']:.1f} %" in md, metrics
    run = json.loads((out / "run" / "summary.json").read_text())
    assert f"{run['frames']} frames" in md
    bench = json.loads((out / "bench" / "bench.json").read_text())
    p50 = bench["paths"]["ort-fp32"]["latency"]["p50_ms"]
    assert f"{p50:.4g}" in md


def test_rerun_skips_every_stage(ci_run):
    out, data, _ = ci_run
    before = {s: (out / s / "stage.json").stat().st_mtime_ns for s in STAGES}
    proc = subprocess.run(_cmd(out, data), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    after = {s: (out / s / "stage.json").stat().st_mtime_ns for s in STAGES}
    assert before == after


def test_kill_during_training_then_rerun_finishes_without_redoing_synth(ci_run, tmp_path):
    _, data, _ = ci_run
    out = tmp_path / "killed"
    cmd = _cmd(out, data, "train.epochs=4", "--until", "train")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    state = out / "train" / "source_only" / "last.state.pt"
    while time.time() < deadline and not state.is_file() and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert state.is_file(), "training never wrote a resume state"
    assert read_stamp(out / "train") is None  # the interrupted stage left no stamp
    synth_stamp = (out / "synth" / "stage.json").stat().st_mtime_ns
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (out / "synth" / "stage.json").stat().st_mtime_ns == synth_stamp
    st = read_stamp(out / "train")
    assert st is not None and set(st.result["methods"]) == {"source_only", "dann"}
    summary = json.loads((out / "train" / "source_only" / "summary.json").read_text())
    assert summary["selected_epoch"] >= 1


def test_selection_across_methods_ignores_the_oracle_and_test_accuracy():
    summaries = {
        "source_only": {"selector": "im", "selector_scores": {"im": 0.2}, "target_test_accuracy": 0.9},
        "dann": {"selector": "im", "selector_scores": {"im": 0.5}, "target_test_accuracy": 0.1},
        "target_oracle": {"selector": "im", "selector_scores": {"im": 9.0}, "target_test_accuracy": 1.0},
    }
    assert select_across_methods(summaries) == "dann"
    summaries["dann"]["selector_scores"]["im"] = float("nan")
    assert select_across_methods(summaries) == "source_only"


def test_failed_int8_gate_deploys_fp32_through_build_and_run(ci_run, tmp_path):
    """A model whose INT8 accuracy gate fails must not stop the road: build and run take the FP32 ONNX."""
    import shutil

    out, data, _ = ci_run
    road = tmp_path / "run"
    shutil.copytree(out, road)
    proc = subprocess.run(_cmd(road, data, "--set", "calibrate.max_drop=-100"), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert read_stamp(road / "calibrate").status == "gate failed"
    assert not (road / "calibrate" / "model.int8.onnx").exists()
    build = read_stamp(road / "build")
    assert build.status == "skipped" and build.result["model"].endswith("export/model.onnx")
    assert "--fp16" in build.result["trtexec"] and "FP32" in build.result["headline"]
    summary = json.loads((road / "run" / "summary.json").read_text())
    assert summary["backend"]["precision"] == "fp32" and summary["frames"] > 0
    assert "failed its accuracy gate" in (road / "report.md").read_text()


def test_real_target_runs_the_runtime_on_its_test_stills_and_scores_them(tmp_path):
    """The road on real faces: no synthetic video is made for a real target; the run stage's footage is the user's
    (pipeline.footage) or the target_test folder, whose class folders score the runtime's labels."""
    from types import SimpleNamespace

    from fer_edge.config import load_config
    from fer_edge.pipeline.main import _synthetic_video
    from fer_edge.pipeline.stills import StillsScore

    assert _synthetic_video(load_config("ci"))
    assert not _synthetic_video(load_config("ci", [f"data.target={tmp_path}"]))
    assert not _synthetic_video(load_config("ci", [f"pipeline.footage={tmp_path / 'clip.mp4'}"]))
    from fer_edge.pipeline.content import synthetic_roles

    assert synthetic_roles(load_config("ci")) == ["target_test"]  # the report's banner names what is synthetic
    assert synthetic_roles(load_config("ci", [f"data.target_test={tmp_path}"])) == []  # real faces: no banner

    def face(label, w):
        return SimpleNamespace(label=label, bbox=(0, 0, w, w))

    score = StillsScore()
    for path, faces in ((tmp_path / "happy" / "a.png", [face("happiness", 40), face("anger", 80)]),
                        (tmp_path / "happy" / "b.png", [face("happiness", 50)]),
                        (tmp_path / "sad" / "c.png", []),
                        (tmp_path / "not_a_class" / "d.png", [face("sadness", 30)])):
        score.add(SimpleNamespace(path=str(path), faces=faces))
    d = score.to_dict()
    assert (d["images"], d["faces_found"], d["labelled_with_face"]) == (4, 3, 2)
    assert d["accuracy_on_found"] == 0.5  # a.png's largest face says anger; b.png is right
    assert "a face in 3 of 4 stills" in score.headline() and "50.0 %" in score.headline()
