"""Crash safety: ``kill -9`` in the middle of training and calibration, then rerun → the same numbers.

Each case runs the real CLI in a subprocess on the ci config with tiny counts, kills its whole
process group with SIGKILL while it is working (asserting it was still running, so the test cannot
pass by being too slow to interrupt), reruns, and compares the result with an uninterrupted run of
the same command. Afterwards no visible file is a half-written temp file and every artefact with a
manifest verifies against it. The ci data is generated once per session. (Killing the *pipeline*
during training is tests/test_pipeline.py's; killing it once export is done — in calibrate or eval —
is the slow case here.)
"""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fer_edge.runtime.manifest import sidecar_path, verify

EPOCHS = 4
#: Smaller than ci's counts: enough for calibration's 50-image minimum, quick to generate.
COUNTS = "data.synth.counts={source: 160, source_test: 40, target: 100, target_val: 40, target_test: 60}"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
VOLATILE = {"train_seconds", "seconds", "created_at", "host", "wall_s", "time_s", "elapsed_s", "timings"}


def _cli(*args: str):
    return [sys.executable, "-m", "fer_edge.cli", "-q", *args]


def _run(cmd, timeout=300):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=ENV)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _kill_when(cmd, ready, timeout=240, env=None) -> None:
    """Start ``cmd``, SIGKILL its process group as soon as ``ready()`` holds while it still runs."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            env=env or ENV)
    deadline = time.time() + timeout
    try:
        while time.time() < deadline and proc.poll() is None and not ready():
            time.sleep(0.05)
        still_running = proc.poll() is None
        assert ready(), "the command never reached the point where it is killed"
        assert still_running, "the command finished before it could be killed; the test would prove nothing"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _volatile(key) -> bool:
    k = str(key)
    return k in VOLATILE or "seconds" in k or k.endswith(("_s", "_ms"))


def same_numbers(a, b, path="") -> list:
    """Differences between two JSON trees, ignoring timings; floats compared to 1e-9 (NaN == NaN)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}.{k}: missing on one side" for k in set(a) ^ set(b) if not _volatile(k)]
        for k in set(a) & set(b):
            if not _volatile(k):
                out += same_numbers(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} vs {len(b)} items"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in same_numbers(x, y, f"{path}[{i}]")]
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            if (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12):
                return []
        return [f"{path}: {a!r} vs {b!r}"]
    return [] if a == b else [f"{path}: {a!r} vs {b!r}"]


def check_no_half_written(folder: Path) -> int:
    """Assert no visible temp/partial file and that every artefact with a sidecar verifies; returns #verified."""
    visible = [p for p in folder.rglob("*") if not any(part.startswith(".") for part in p.relative_to(folder).parts)]
    assert [p for p in visible if ".tmp" in p.name or ".partial" in p.name] == []
    verified = 0
    for p in visible:
        if p.is_file() and sidecar_path(p).is_file() and p.suffix != ".json":
            verify(p)
            verified += 1
    return verified


# --------------------------------------------------------------------------- training


def _train_cmd(out: Path, data: Path, *extra: str):
    return _cli("train", "--config", "ci", "--method", "source_only", "--out", str(out), "--set",
                f"data.root={data}", f"train.epochs={EPOCHS}", COUNTS, *extra)


@pytest.fixture(scope="session")
def reference_training(tmp_path_factory):
    """An uninterrupted run; it also generates the ci data that every crash case reuses."""
    root = tmp_path_factory.mktemp("hardening-crash")
    data, out = root / "data", root / "reference"
    _run(_train_cmd(out, data))
    return data, out


def test_kill_9_during_training_then_resume_gives_the_same_run(reference_training, tmp_path):
    """Killed at the first resume state (or while it is being written), resumed: the same run as never killed."""
    import torch

    from fer_edge.train.state import load_state

    data, ref = reference_training
    out = tmp_path / "killed"
    state = out / "last.state.pt"
    _kill_when(_train_cmd(out, data), lambda: state.is_file() or any(out.glob(".last.state.pt.*")))
    assert not (out / "summary.json").exists()
    if state.is_file():  # never torn: either absent or complete
        assert "rng" in load_state(state)
    _run(_train_cmd(out, data, "--resume"))
    a = json.loads((ref / "summary.json").read_text())
    b = json.loads((out / "summary.json").read_text())
    assert b["epochs"] == EPOCHS and same_numbers(a, b) == []
    assert not _timing_free_csv_differs(ref / "metrics.csv", out / "metrics.csv")  # every epoch's numbers
    assert check_no_half_written(out) >= 2  # best.pt and every epoch checkpoint verify
    wa = torch.load(ref / "best.pt", weights_only=True)["state_dict"]
    wb = torch.load(out / "best.pt", weights_only=True)["state_dict"]
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)  # bit-identical weights
    assert verify(out / "best.pt").sha256 == verify(ref / "best.pt").sha256  # and a byte-identical file


def _timing_free_csv_differs(a: Path, b: Path) -> bool:
    import csv

    ra, rb = (list(csv.DictReader(open(p, encoding="utf-8"))) for p in (a, b))
    drop = [k for k in (ra[0] if ra else {}) if "second" in k or k.endswith("_s") or "time" in k]
    strip = [[{k: v for k, v in r.items() if k not in drop} for r in rows] for rows in (ra, rb)]
    return strip[0] != strip[1]


# --------------------------------------------------------------------------- calibration


def _calib_cmd(model: Path, images: Path, out: Path):
    return _cli("calibrate", "--config", "ci", "--model", str(model), "--images", str(images), "--out", str(out))


@pytest.fixture(scope="session")
def fp32_model(reference_training, tmp_path_factory):
    from runtime_fixtures import make_onnx

    data, _ = reference_training
    images = next(data.glob("cabin-nir-target-*"))
    return make_onnx(tmp_path_factory.mktemp("calib") / "model.onnx"), images


def test_kill_9_during_calibration_then_rerun_gives_the_same_int8(fp32_model, tmp_path):
    model, images = fp32_model
    ref = tmp_path / "ref" / "q.onnx"
    ref.parent.mkdir()
    _run(_calib_cmd(model, images, ref))
    out = tmp_path / "killed" / "q.onnx"
    out.parent.mkdir()
    scratch = tmp_path / "tmp"  # calibrate's work folder appears here once quantization is under way
    scratch.mkdir()
    _kill_when(_calib_cmd(model, images, out), lambda: any(scratch.glob("fer-edge-calib-*")),
               env={**ENV, "TMPDIR": str(scratch)})
    if out.exists():  # killed after the rename: then it must be whole
        verify(out)
    check_no_half_written(out.parent)
    _run(_calib_cmd(model, images, out))
    a = json.loads(ref.with_suffix(".json").read_text())
    b = json.loads(out.with_suffix(".json").read_text())
    assert same_numbers({k: a[k] for k in ("status", "method", "images", "ranges", "excluded", "sizes")},
                        {k: b[k] for k in ("status", "method", "images", "ranges", "excluded", "sizes")}) == []
    assert verify(out, kinds=["int8_onnx"]).inputs == verify(ref, kinds=["int8_onnx"]).inputs
    assert check_no_half_written(out.parent) >= 1


# --------------------------------------------------------------------------- the pipeline, killed after export


@pytest.mark.slow
def test_kill_9_during_pipeline_after_export_then_rerun_matches(reference_training, tmp_path):
    from fer_edge.pipeline.stamps import read_stamp

    data, _ = reference_training

    def cmd(out):
        return _cli("pipeline", "--config", "ci", "--out", str(out), "--no-progress", "--until", "eval",
                    "--set", f"data.root={data}")

    ref, out = tmp_path / "ref", tmp_path / "killed"
    _run(cmd(ref), timeout=600)
    _kill_when(cmd(out), lambda: read_stamp(out / "export") is not None, timeout=600)
    assert read_stamp(out / "eval") is None
    _run(cmd(out), timeout=600)
    for stage in ("train", "export", "calibrate", "eval"):
        assert read_stamp(out / stage) is not None, stage
    for metrics in (ref / "eval").glob("*/metrics.json"):
        other = out / "eval" / metrics.parent.name / "metrics.json"
        mine = json.loads(metrics.read_text().replace(str(ref), str(out)))  # same numbers, its own folder
        assert same_numbers(mine, json.loads(other.read_text())) == [], metrics
    check_no_half_written(out)
