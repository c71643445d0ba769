"""`fer-edge build` through recording fakes of TensorRT 8.6, 10.x and 11.x (TensorRT cannot be installed here).

Each test asserts the calls a real build would make on that generation, or the refusal a user gets.
"""
from __future__ import annotations

import json
import logging
import sys

import pytest
from fakes.conftest_helpers import called, install_fakes
from fakes.models import make_model
from fakes.tensorrt_fake import MAGIC, make_tensorrt

from fer_edge.runtime.errors import BackendUnavailable, ManifestError, ModelError
from fer_edge.runtime.manifest import sha256_file, verify
from fer_edge.runtime.tensorrt import (
    BuildOptions,
    Capabilities,
    DeviceInfo,
    build_engine,
    calibration_cache_version,
    check_engine,
    parse_batch,
    read_onnx_model,
)

GENS = ("8.6", "10", "11")
SHAPES = ((1, 1, 16, 16), (8, 1, 16, 16), (32, 1, 16, 16))




# ---- capabilities --------------------------------------------------------------------------
@pytest.mark.parametrize("gen,expect", [
    ("8.6", dict(explicit_batch_flag=True, strongly_typed_flag=False, precision_flags=True, int8_calibrator=True,
                 platform_fast_queries=True, execute_v2=True, execute_v3=True, progress_monitor=False)),
    ("10", dict(explicit_batch_flag=True, strongly_typed_flag=True, precision_flags=True, int8_calibrator=True,
                platform_fast_queries=True, execute_v2=False, execute_v3=True, progress_monitor=True)),
    ("11", dict(explicit_batch_flag=False, strongly_typed_flag=True, precision_flags=False, int8_calibrator=False,
                platform_fast_queries=False, execute_v2=False, execute_v3=True, progress_monitor=True)),
])
def test_capabilities_detected_from_the_module(gen, expect):
    caps = Capabilities.detect(make_tensorrt(gen))
    assert {k: getattr(caps, k) for k in expect} == expect
    # The version→features table used by --print-trtexec agrees with what detection finds.
    assert Capabilities.assumed_for(caps.version) == caps


def test_fakes_lack_what_each_generation_lacks():
    with pytest.raises(AttributeError):
        getattr(make_tensorrt("8.6").NetworkDefinitionCreationFlag, "STRONGLY_TYPED")  # noqa: B009
    t11 = make_tensorrt("11")
    for get in (lambda: t11.BuilderFlag.INT8, lambda: t11.BuilderFlag.FP16, lambda: t11.IInt8EntropyCalibrator2,
                lambda: t11.NetworkDefinitionCreationFlag.EXPLICIT_BATCH):
        with pytest.raises(AttributeError):
            get()
    config = t11.Builder(t11.Logger()).create_builder_config()
    with pytest.raises(AttributeError):
        config.int8_calibrator = object()
    assert not hasattr(make_tensorrt("10").IExecutionContext, "execute_async_v2")


def test_calibration_cache_version_numbers():
    assert calibration_cache_version("8.6.1.6") == "8601"
    assert calibration_cache_version("8.6.2") == "8602"
    assert calibration_cache_version("10.3.0.30") == "100300"
    assert calibration_cache_version("10.14.1") == "101401"


def test_parse_batch():
    assert parse_batch("1,8,32") == (1, 8, 32)
    assert parse_batch("4") == (4, 4, 4)
    assert parse_batch([2, 16]) == (2, 16, 16)
    for bad in ("8,1", "0,1,2", "a", "1,2,3,4"):
        with pytest.raises(Exception) as err:
            parse_batch(bad)
        assert "--batch" in str(err.value)


# ---- the build per generation ----------------------------------------------------------------
@pytest.mark.parametrize("gen,net_flags,builder_flags", [
    ("8.6", 1 << 0, ["INT8", "FP16"]),          # EXPLICIT_BATCH; Q/DQ needs INT8
    ("10", 0, ["INT8", "FP16"]),                # explicit batch is implicit; weakly typed default
    ("11", 0, []),                              # strongly typed: no precision flags exist
])
def test_qdq_build_calls_per_generation(monkeypatch, qdq, tmp_path, gen, net_flags, builder_flags):
    trt = install_fakes(monkeypatch, gen)
    out = tmp_path / "model.engine"
    result = build_engine(qdq, out, BuildOptions(precision="best", batch=(1, 8, 32), workspace_mb=256))
    assert called(trt, "Builder.create_network") == [net_flags]
    assert called(trt, "IBuilderConfig.set_flag") == builder_flags
    assert called(trt, "IOptimizationProfile.set_shape") == [("input", SHAPES)]
    assert called(trt, "IBuilderConfig.set_memory_pool_limit") == [("WORKSPACE", 256 << 20)]
    assert called(trt, "OnnxParser.parse_from_file") == [str(qdq)]
    assert len(called(trt, "Builder.build_serialized_network")) == 1
    assert not trt.errors
    # The engine file is only the engine: exactly what TensorRT serialized, nothing prefixed.
    assert out.read_bytes().startswith(MAGIC)
    assert result.plan.precision == "int8" and result.size_bytes == out.stat().st_size


def test_sidecar_contents(monkeypatch, qdq, tmp_path):
    trt = install_fakes(monkeypatch, "10")
    out = tmp_path / "m.engine"
    build_engine(qdq, out, BuildOptions(batch=(1, 4, 16)))
    side = json.loads((tmp_path / "m.engine.json").read_text())
    assert side["kind"] == "engine" and side["precision"] == "int8"
    assert side["sha256"] == sha256_file(out)
    assert side["inputs"] == {"onnx": sha256_file(qdq)}
    extra = side["extra"]
    assert extra["tensorrt_version"] == trt.__version__
    assert extra["device"] == {"name": trt.gpu.name, "compute_capability": "8.7"}
    assert extra["profile"] == {"input": {"min": [1, 1, 16, 16], "opt": [4, 1, 16, 16], "max": [16, 1, 16, 16]}}
    assert extra["builder_flags"] == ["INT8", "FP16"] and extra["strongly_typed"] is False
    onnx_manifest = verify(qdq)
    assert side["labels"] == onnx_manifest.labels and side["preprocess"] == onnx_manifest.preprocess
    assert side["crop"] == onnx_manifest.crop
    verify(out, kinds=["engine"])


def test_strongly_typed_option_on_10(monkeypatch, qdq, tmp_path):
    trt = install_fakes(monkeypatch, "10")
    result = build_engine(qdq, tmp_path / "e.engine", BuildOptions(strongly_typed=True))
    assert called(trt, "Builder.create_network") == [1 << 1]       # STRONGLY_TYPED
    assert called(trt, "IBuilderConfig.set_flag") == []            # FP16/INT8 would fail the build
    assert result.plan.strongly_typed and not trt.errors


def test_fake_refuses_flags_on_strongly_typed_network():
    """The fake enforces the real rule the plan avoids (so the tests above can fail)."""
    trt = make_tensorrt("10")
    builder = trt.Builder(trt.Logger())
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    config = builder.create_builder_config()
    config.set_flag(trt.BuilderFlag.FP16)
    assert builder.build_serialized_network(network, config) is None and "Error Code 3" in trt.errors[0]


@pytest.mark.parametrize("gen,flags,precision", [("8.6", ["FP16"], "fp16"), ("10", ["FP16"], "fp16"),
                                                  ("11", [], "fp32")])
def test_fp32_model_best_without_cache(monkeypatch, fp32, tmp_path, gen, flags, precision, caplog):
    trt = install_fakes(monkeypatch, gen)
    with caplog.at_level(logging.INFO, logger="fer_edge.build"):
        result = build_engine(fp32, tmp_path / "e.engine", BuildOptions(precision="best"))
    assert called(trt, "IBuilderConfig.set_flag") == flags and result.plan.precision == precision
    if gen != "11":
        assert "best → FP16" in caplog.text


def test_timing_cache_written_and_reused(monkeypatch, fp32, tmp_path):
    trt = install_fakes(monkeypatch, "10")
    cache = tmp_path / "trt.cache"
    build_engine(fp32, tmp_path / "a.engine", BuildOptions(timing_cache=cache))
    assert called(trt, "IBuilderConfig.create_timing_cache") == [b""]
    first = cache.read_bytes()
    assert first == b"FAKECACHE:3" and called(trt, "ITimingCache.serialize")
    build_engine(fp32, tmp_path / "b.engine", BuildOptions(timing_cache=cache))
    assert called(trt, "IBuilderConfig.create_timing_cache")[1] == first     # loaded, not recreated
    assert cache.read_bytes() == b"FAKECACHE:6"
    assert not list(tmp_path.glob(".*.tmp*"))                               # atomic: no temp left over


# ---- failures the user can cause ---------------------------------------------------------------
def test_parser_errors_reported_by_index(monkeypatch, fp32, tmp_path):
    install_fakes(monkeypatch, "10", parser_errors=["unsupported op Foo", "bad attribute"])
    with pytest.raises(ModelError) as err:
        build_engine(fp32, tmp_path / "e.engine", BuildOptions())
    assert "2 error(s)" in str(err.value) and "[0] In node 0" in str(err.value) and "[1] In node 1" in str(err.value)
    assert not (tmp_path / "e.engine").exists()


def test_8_6_parser_needs_explicit_batch():
    """Without the EXPLICIT_BATCH flag the 8.6 parser refuses ONNX: the flag in the plan matters."""
    trt = make_tensorrt("8.6")
    network = trt.Builder(trt.Logger()).create_network(0)
    parser = trt.OnnxParser(network, trt.Logger())
    assert not parser.parse(b"") and "explicit batch" in str(parser.get_error(0))


def test_model_without_manifest_or_contract(monkeypatch, tmp_path):
    install_fakes(monkeypatch, "10")
    with pytest.raises(ManifestError, match="no manifest"):
        build_engine(make_model(tmp_path / "a.onnx", manifest=False), tmp_path / "a.engine", BuildOptions())
    with pytest.raises(ModelError, match="contract"):
        build_engine(make_model(tmp_path / "b.onnx", contract=False), tmp_path / "b.engine", BuildOptions())


def test_without_tensorrt_the_message_says_what_to_do(monkeypatch, fp32, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(BackendUnavailable, match="--print-trtexec"):
        build_engine(fp32, tmp_path / "e.engine", BuildOptions())


def test_contract_read_without_onnx_package(monkeypatch, qdq, fp32):
    monkeypatch.setitem(sys.modules, "onnx", None)       # the device may have only onnxruntime
    info = read_onnx_model(qdq)
    assert info.qdq and info.precision == "int8" and info.input_chw == (1, 16, 16)
    assert not read_onnx_model(fp32).qdq


# ---- engine check ------------------------------------------------------------------------------
def test_check_engine_refuses_other_tensorrt_or_device(monkeypatch, qdq, tmp_path):
    trt = install_fakes(monkeypatch, "10")
    out = tmp_path / "e.engine"
    build_engine(qdq, out, BuildOptions())
    here = DeviceInfo(trt.gpu.name, "8.7")
    assert check_engine(out, trt, here).kind == "engine"
    with pytest.raises(ManifestError, match="built with TensorRT 10.3.0.30, this is TensorRT 10.4.0.1; "
                                            "rebuild with `fer-edge build` on this device"):
        check_engine(out, make_tensorrt("10", version="10.4.0.1"), here)
    with pytest.raises(ManifestError, match="built for Orin.*this is NVIDIA H100.*rebuild with `fer-edge build`"):
        check_engine(out, trt, DeviceInfo("NVIDIA H100", "9.0"))
    out.write_bytes(out.read_bytes() + b"x")
    with pytest.raises(ManifestError, match="sha256"):
        check_engine(out, trt, here)


@pytest.mark.parametrize("gen,used", [("8.6", False), ("10", True), ("11", True)])
def test_progress_monitor_where_it_exists(monkeypatch, fp32, tmp_path, gen, used, caplog):
    trt = install_fakes(monkeypatch, gen)
    monkeypatch.setitem(sys.modules, "tqdm", None)            # runtime extra only: phases are logged
    with caplog.at_level(logging.INFO, logger="fer_edge.build"):
        build_engine(fp32, tmp_path / "e.engine", BuildOptions())
    assert bool(called(trt, "IBuilderConfig.progress_monitor")) == used
    assert bool(called(trt, "progress.phases_done")) == used
    assert ("TensorRT: Building engine (3 steps)" in caplog.text) == used
    assert "Tactic timing" not in caplog.text                  # nested phases stay quiet


def test_ctrl_c_during_build_cancels_it(monkeypatch, fp32, tmp_path):
    import fer_edge.runtime.tensorrt.build as builder_mod
    from fer_edge.runtime.tensorrt.progress import make_progress_monitor

    trt = install_fakes(monkeypatch, "10")

    def interrupted(module):
        monitor = make_progress_monitor(module)
        monitor.cancelled = True                               # what a KeyboardInterrupt in a callback sets
        return monitor

    monkeypatch.setattr(builder_mod, "make_progress_monitor", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_engine(fp32, tmp_path / "e.engine", BuildOptions())
    assert "build cancelled by the progress monitor" in trt.errors
    assert not (tmp_path / "e.engine").exists()


def test_keyword_api_as_other_stages_call_it(monkeypatch, qdq, tmp_path):
    """The pipeline passes the config's build fields as keywords; results serialise to JSON."""
    from fer_edge.runtime.tensorrt import trtexec_command

    monkeypatch.setitem(sys.modules, "tensorrt", None)
    line = trtexec_command(qdq, tmp_path / "m.engine", precision="best", batch=[1, 4, 16], workspace_mb=128)
    assert "--maxShapes=input:16x1x16x16" in line and "--memPoolSize=workspace:128M" in line
    assert "--int8 --fp16" in trtexec_command(qdq, tmp_path / "m.engine", trt_version="8.6")
    install_fakes(monkeypatch, "10")
    res = build_engine(qdq, tmp_path / "m.engine", precision="best", batch=[1, 4, 16], workspace_mb=128)
    summary = json.loads(json.dumps(res.to_dict()))
    assert summary["precision"] == "int8" and summary["profile"]["input"]["max"] == [16, 1, 16, 16]
    res = build_engine(qdq, tmp_path / "m.engine", BuildOptions(batch=(2,)), workspace_mb=64)   # options + override
    assert res.plan.shapes()[0][0] == 2 and res.plan.workspace_mb == 64


def test_fixed_batch_onnx_needs_matching_batch(monkeypatch, tmp_path):
    install_fakes(monkeypatch, "10")
    static = make_model(tmp_path / "static.onnx", batch=1)
    with pytest.raises(ModelError, match="fixed batch of 1; pass --batch 1"):
        build_engine(static, tmp_path / "s.engine", BuildOptions(batch=(1, 8, 32)))
    assert build_engine(static, tmp_path / "s.engine", BuildOptions(batch=(1,))).plan.shapes()[2][0] == 1
