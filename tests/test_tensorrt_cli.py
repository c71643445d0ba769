"""`fer-edge build` on the command line: --print-trtexec without TensorRT, errors, and no torch import."""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from fakes.conftest_helpers import install_fakes
from fakes.models import make_model

from fer_edge.cli import main

TESTS = Path(__file__).parent


@pytest.fixture
def no_tensorrt(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)


def trtexec(capsys, *argv):
    assert main(["build", *argv, "--print-trtexec"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    return shlex.split(line)


def test_print_trtexec_per_version(no_tensorrt, tmp_path, capsys):
    qdq = make_model(tmp_path / "model.int8.onnx", qdq=True)
    shapes = ["--minShapes=input:1x1x16x16", "--optShapes=input:8x1x16x16", "--maxShapes=input:32x1x16x16"]
    cmd = trtexec(capsys, "--model", str(qdq), "--trt-version", "8.6")
    assert cmd == ["trtexec", f"--onnx={qdq}", f"--saveEngine={tmp_path / 'model.int8.engine'}", "--int8", "--fp16",
                   *shapes, "--memPoolSize=workspace:1024"]
    cmd = trtexec(capsys, "--model", str(qdq), "--trt-version", "10.3", "--workspace-mb", "512")
    assert "--int8" in cmd and "--memPoolSize=workspace:512M" in cmd and "--stronglyTyped" not in cmd
    cmd = trtexec(capsys, "--model", str(qdq), "--trt-version", "10.3", "--strongly-typed")
    assert "--stronglyTyped" in cmd and "--int8" not in cmd and "--fp16" not in cmd
    cmd = trtexec(capsys, "--model", str(qdq), "--trt-version", "11.1", "--out", str(tmp_path / "x.engine"))
    assert not {"--int8", "--fp16", "--stronglyTyped"} & set(cmd) and cmd[2] == f"--saveEngine={tmp_path / 'x.engine'}"
    cmd = trtexec(capsys, "--model", str(qdq))              # no TensorRT here: assumes 10.3
    assert "--int8" in cmd and "--memPoolSize=workspace:1024M" in cmd


def test_print_trtexec_dla_and_caches(no_tensorrt, tmp_path, capsys):
    fp32 = make_model(tmp_path / "model.onnx")
    calib = tmp_path / "model.calib"
    calib.write_text("TRT-8602-EntropyCalibration2\ninput: 3c010204\n")
    cmd = trtexec(capsys, "--model", str(fp32), "--trt-version", "8.6", "--dla-core", "0", "--gpu-fallback",
                  "--batch", "4", "--calib-cache", str(calib), "--timing-cache", str(tmp_path / "t.cache"))
    assert cmd[3:] == ["--int8", "--fp16", "--minShapes=input:4x1x16x16", "--optShapes=input:4x1x16x16",
                       "--maxShapes=input:4x1x16x16", "--memPoolSize=workspace:1024",
                       f"--timingCacheFile={tmp_path / 't.cache'}", f"--calib={calib}", "--useDLACore=0",
                       "--allowGPUFallback"]


def test_refusals_are_one_line_errors(no_tensorrt, tmp_path, capsys):
    qdq = make_model(tmp_path / "model.int8.onnx", qdq=True)
    assert main(["build", "--model", str(qdq), "--dla-core", "0", "--print-trtexec", "--trt-version", "10"]) == 1
    assert "DLA cannot run" in capsys.readouterr().err
    assert main(["build", "--model", str(qdq)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("fer-edge build: error: TensorRT is not installed") and "--print-trtexec" in err
    assert main(["build", "--model", str(qdq), "--gpu-fallback"]) == 1
    assert "--gpu-fallback only applies to DLA" in capsys.readouterr().err


def test_config_section_supplies_defaults(no_tensorrt, tmp_path, capsys):
    qdq = make_model(tmp_path / "model.int8.onnx", qdq=True)
    cmd = trtexec(capsys, "--model", str(qdq), "--trt-version", "10", "--set", "build.batch=[2,4,8]",
                  "build.workspace_mb=64")
    assert "--minShapes=input:2x1x16x16" in cmd and "--memPoolSize=workspace:64M" in cmd


def test_build_verb_with_fake_tensorrt(monkeypatch, tmp_path, capsys):
    install_fakes(monkeypatch, "8.6")
    qdq = make_model(tmp_path / "model.int8.onnx", qdq=True)
    assert main(["build", "--model", str(qdq), "--batch", "1,4,8"]) == 0
    out = capsys.readouterr().out
    side = json.loads((tmp_path / "model.int8.engine.json").read_text())
    assert "model.int8.engine" in out and side["extra"]["profile"]["input"]["max"] == [8, 1, 16, 16]


def test_build_never_imports_torch(tmp_path):
    """`fer-edge build` must run on a device with only the runtime extra + TensorRT."""
    code = f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
from fakes.models import make_model
from fakes.pycuda_fake import FakeGPU, make_pycuda
from fakes.tensorrt_fake import make_tensorrt
gpu = FakeGPU()
sys.modules["tensorrt"] = make_tensorrt("10", gpu=gpu)
mods = make_pycuda(gpu); mods.pop("_primary").push(); sys.modules.update(mods)  # as autoprimaryctx does
m = make_model(__import__("pathlib").Path({str(tmp_path / 'm.onnx')!r}), qdq=True)
from fer_edge.cli import main
assert main(["build", "--model", str(m)]) == 0
from fer_edge.runtime.backends.tensorrt import TensorRTBackend
import numpy as np
print(TensorRTBackend.from_path(str(m.with_suffix(".engine"))).infer(np.zeros((2, 1, 16, 16), np.float32)).shape)
assert "torch" not in sys.modules, "torch was imported"
"""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "(2, 7)" in res.stdout
