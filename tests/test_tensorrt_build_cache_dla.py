"""`fer-edge build` with a TensorRT calibration cache (implicit INT8 on 8.6 / 10.x, refused on 11) and for
DLA, through the recording fakes (TensorRT cannot be installed here)."""
from __future__ import annotations

import logging

import pytest
from fakes.conftest_helpers import called, install_fakes
from fakes.tensorrt_fake import make_tensorrt

from fer_edge.runtime.errors import DataError, ManifestError, ModelError
from fer_edge.runtime.manifest import sha256_file
from fer_edge.runtime.tensorrt import BuildOptions, build_engine, calibration_cache_version

SHAPES = ((1, 1, 16, 16), (8, 1, 16, 16), (32, 1, 16, 16))




def write_cache(path, header):
    path.write_text(f"{header}\ninput: 3c010204\nlogits: 3d4ccccd\n")
    return path


# ---- calibration cache (implicit INT8, 8.6 / 10.x) ---------------------------------------------
def test_calibrator_reads_cache_on_8_6(monkeypatch, fp32, tmp_path, caplog):
    trt = install_fakes(monkeypatch, "8.6")
    cache = write_cache(tmp_path / "model.calib", "TRT-8602-EntropyCalibration2")
    with caplog.at_level(logging.WARNING, logger="fer_edge.build"):
        result = build_engine(fp32, tmp_path / "e.engine", BuildOptions(precision="int8", calib_cache=cache))
    assert called(trt, "IBuilderConfig.set_flag") == ["INT8"]
    assert called(trt, "IBuilderConfig.int8_calibrator") == ["CacheOnlyCalibrator"]
    assert called(trt, "IBuilderConfig.set_calibration_profile") == [{"input": SHAPES}]
    assert called(trt, "calibrator.read_calibration_cache") == [cache.stat().st_size]
    assert not called(trt, "calibrator.get_batch")             # never asks for images
    assert result.manifest.precision == "int8" and "TensorRT may ignore" not in caplog.text


def test_calibration_cache_version_mismatch_warns(monkeypatch, fp32, tmp_path, caplog):
    install_fakes(monkeypatch, "10")
    cache = write_cache(tmp_path / "model.calib", "TRT-8602-EntropyCalibration2")
    with caplog.at_level(logging.WARNING, logger="fer_edge.build"):
        build_engine(fp32, tmp_path / "e.engine", BuildOptions(precision="best", calib_cache=cache))
    assert "written for TensorRT 8602" in caplog.text and "100300" in caplog.text
    assert "deprecated since TensorRT 10.1" in caplog.text


def test_not_a_calibration_cache_is_refused(monkeypatch, fp32, tmp_path):
    install_fakes(monkeypatch, "8.6")
    bad = tmp_path / "x.calib"
    bad.write_text("hello\n")
    with pytest.raises(DataError, match="not a TensorRT calibration cache"):
        build_engine(fp32, tmp_path / "e.engine", BuildOptions(precision="int8", calib_cache=bad))


def test_calib_cache_with_qdq_model_is_ignored_loudly(monkeypatch, qdq, tmp_path, caplog):
    trt = install_fakes(monkeypatch, "10")
    cache = write_cache(tmp_path / "model.calib", "TRT-100300-EntropyCalibration2")
    with caplog.at_level(logging.WARNING, logger="fer_edge.build"):
        build_engine(qdq, tmp_path / "e.engine", BuildOptions(calib_cache=cache))
    assert "is not used: the model carries its own Q/DQ scales" in caplog.text
    assert not called(trt, "IBuilderConfig.int8_calibrator")


def test_11_refuses_calib_cache(monkeypatch, fp32, tmp_path):
    trt = install_fakes(monkeypatch, "11")
    cache = write_cache(tmp_path / "model.calib", "TRT-110100-EntropyCalibration2")
    with pytest.raises(ModelError, match="no INT8 calibrators.*Q/DQ model"):
        build_engine(fp32, tmp_path / "e.engine", BuildOptions(calib_cache=cache))
    assert not called(trt, "Builder")


@pytest.mark.parametrize("gen", ["8.6", "10", "11"])
def test_int8_from_fp32_without_ranges_is_refused(monkeypatch, fp32, tmp_path, gen):
    install_fakes(monkeypatch, gen)
    with pytest.raises(ModelError, match="Q/DQ model"):
        build_engine(fp32, tmp_path / "e.engine", BuildOptions(precision="int8"))


def test_fp16_request_on_qdq_model_is_refused(monkeypatch, qdq, tmp_path):
    install_fakes(monkeypatch, "8.6")
    with pytest.raises(ModelError, match="FP32 ONNX"):
        build_engine(qdq, tmp_path / "e.engine", BuildOptions(precision="fp16"))


# ---- DLA -------------------------------------------------------------------------------------
@pytest.mark.parametrize("gen", ["8.6", "10"])
def test_dla_settings(monkeypatch, fp32, tmp_path, caplog, gen):
    trt = install_fakes(monkeypatch, gen, dla_unsupported={"Softmax"})
    cache = write_cache(tmp_path / "model.calib", f"TRT-{calibration_cache_version(make_tensorrt(gen).__version__)}"
                                                  "-EntropyCalibration2")
    opts = BuildOptions(precision="best", batch=(1, 8, 32), dla_core=1, gpu_fallback=True, calib_cache=cache)
    with caplog.at_level(logging.INFO, logger="fer_edge.build"):
        result = build_engine(fp32, tmp_path / "e.engine", opts)
    assert called(trt, "IBuilderConfig.default_device_type") == ["DLA"]
    assert called(trt, "IBuilderConfig.DLA_core") == [1]
    assert called(trt, "IBuilderConfig.set_flag") == ["INT8", "FP16", "GPU_FALLBACK"]
    static = (8, 1, 16, 16)
    assert called(trt, "IOptimizationProfile.set_shape") == [("input", (static, static, static))]
    assert "DLA needs static shapes" in caplog.text
    assert "1 of 3 layers will run on the GPU (GPU_FALLBACK): softmax" in caplog.text
    assert result.manifest.extra["dla_core"] == 1 and result.manifest.extra["dla_gpu_layers"] == ["softmax"]
    assert not trt.errors


def test_dla_refuses_qdq_model(monkeypatch, qdq, tmp_path):
    trt = install_fakes(monkeypatch, "10")
    with pytest.raises(ModelError, match="DLA cannot run.*FP32 ONNX.*--calib-cache"):
        build_engine(qdq, tmp_path / "e.engine", BuildOptions(dla_core=0))
    assert not called(trt, "Builder.build_serialized_network")


def test_dla_without_fallback_warns_then_build_fails(monkeypatch, fp32, tmp_path, caplog):
    trt = install_fakes(monkeypatch, "8.6", dla_unsupported={"Flatten"})
    with caplog.at_level(logging.WARNING, logger="fer_edge.build"), pytest.raises(ModelError, match="could not"):
        build_engine(fp32, tmp_path / "e.engine", BuildOptions(precision="fp16", batch=(4,), dla_core=0))
    assert "cannot run on DLA and the build will fail without --gpu-fallback: flatten" in caplog.text
    assert trt.errors and not (tmp_path / "e.engine").exists()


def test_dla_core_out_of_range_and_fp32_and_trt11(monkeypatch, fp32, tmp_path):
    install_fakes(monkeypatch, "10", dla_cores=1)
    with pytest.raises(ModelError, match="has 1 DLA core"):
        build_engine(fp32, tmp_path / "e.engine", BuildOptions(precision="fp16", dla_core=1))
    with pytest.raises(ModelError, match="FP16 or INT8 only"):
        build_engine(fp32, tmp_path / "e.engine", BuildOptions(precision="fp32", dla_core=0))
    install_fakes(monkeypatch, "11")
    with pytest.raises(ModelError, match="TensorRT 8.6/10.x"):
        build_engine(fp32, tmp_path / "e.engine", BuildOptions(dla_core=0))


def test_calib_cache_from_another_model_is_refused(monkeypatch, fp32, tmp_path):
    from fer_edge.runtime.manifest import Manifest, write_manifest

    install_fakes(monkeypatch, "8.6")
    cache = write_cache(tmp_path / "model.calib", "TRT-8602-EntropyCalibration2")
    write_manifest(cache, Manifest(kind="calibration_cache", precision="int8", inputs={"fp32_onnx": "0" * 64}))
    with pytest.raises(ManifestError, match="made from another model"):
        build_engine(fp32, tmp_path / "e.engine", BuildOptions(precision="int8", calib_cache=cache))
    write_manifest(cache, Manifest(kind="calibration_cache", precision="int8",
                                   inputs={"fp32_onnx": sha256_file(fp32)}))
    build_engine(fp32, tmp_path / "e.engine", BuildOptions(precision="int8", calib_cache=cache))
