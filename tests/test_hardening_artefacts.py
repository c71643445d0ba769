"""Corrupt and foreign artefacts are refused by the stage loaders, each with a message saying what to do.

Every case goes through the loader a user's command would call (``load_checkpoint``, export's
checkpoint loading, ``open_backend``, calibrate's model loading, ``verify``, ``verify_int8``,
``check_engine``) and asserts on the actionable part of the message, so a refactor that loses the
"what to do" fails here. A control case per loader shows the intact artefact loads, so a loader
that refuses everything cannot pass. ``benchmarks/reliability_figures.py`` counts these cases.
"""
from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from runtime_fixtures import TEST_CROP, TEST_SPEC, make_onnx

from fer_edge.runtime.errors import FerEdgeError, ManifestError, ModelError
from fer_edge.runtime.manifest import Manifest, read_manifest, sha256_file, sidecar_path, verify, write_manifest

RETRAIN = "retrain or re-copy"
RECREATE = "re-create"
REEXPORT = "re-export it with `fer-edge export`"
REBUILD = "rebuild with `fer-edge build` on this device"


class _Payload:
    """Unpickling this runs ``touch <sentinel>`` — what a malicious checkpoint would do."""

    def __init__(self, sentinel: Path):
        self.sentinel = str(sentinel)

    def __reduce__(self):
        return (os.system, (f"touch {self.sentinel}",))


@pytest.fixture(scope="module")
def arts(tmp_path_factory):
    import torch

    from fer_edge.train.checkpoint import save_checkpoint
    from fer_edge.train.models import FerNet, ModelSpec

    d = tmp_path_factory.mktemp("arts")
    torch.manual_seed(0)
    net = FerNet(ModelSpec(backbone="tiny", in_channels=1, num_classes=7, feature_dim=16, width=0.5, dropout=0.0))
    ck = d / "best.pt"
    from fer_edge.runtime.contract import LABELS

    save_checkpoint(ck, net, LABELS, TEST_SPEC, TEST_CROP.to_dict())
    onnx_a = make_onnx(d / "a.onnx", seed=0)
    onnx_b = make_onnx(d / "b.onnx", seed=1)
    return {"dir": d, "ck": ck, "onnx": onnx_a, "onnx_b": onnx_b}


def _copy(src: Path, dst: Path, data: bytes = None, rehash: bool = False, **manifest_changes) -> Path:
    """``dst`` = ``src``'s bytes (or ``data``) + its sidecar, optionally re-hashed or with fields changed."""
    dst.write_bytes(src.read_bytes() if data is None else data)
    m = json.loads(sidecar_path(src).read_text())
    m.update(manifest_changes)
    if rehash:
        m["sha256"] = sha256_file(dst)
    sidecar_path(dst).write_text(json.dumps(m))
    return dst


def _refused(fn, error, *needles):
    with pytest.raises(error) as info:
        fn()
    msg = str(info.value)
    for n in needles:
        assert n in msg, f"{n!r} not in {msg!r}"
    assert "\n" not in msg.strip() or len(msg) < 2000
    return msg


# --------------------------------------------------------------------------- checkpoints


def test_intact_checkpoint_loads(arts):
    from fer_edge.train.checkpoint import load_checkpoint

    net, manifest = load_checkpoint(arts["ck"])
    assert manifest.kind == "checkpoint" and net.spec.num_classes == 7


@pytest.mark.parametrize("case", ["truncated_rehashed", "random_bytes_rehashed", "empty_rehashed"])
def test_corrupt_checkpoint_is_refused(arts, tmp_path, case):
    from fer_edge.train.checkpoint import load_checkpoint

    raw = arts["ck"].read_bytes()
    noise = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()  # fixed: reproducible
    data = {"truncated_rehashed": raw[: len(raw) // 2], "random_bytes_rehashed": noise,
            "empty_rehashed": b""}[case]
    bad = _copy(arts["ck"], tmp_path / "bad.pt", data, rehash=True)
    with pytest.raises(FerEdgeError) as info:
        load_checkpoint(bad)
    assert RETRAIN in str(info.value)


@pytest.mark.parametrize("how", ["torch_save", "raw_pickle"])
def test_checkpoint_with_pickle_payload_is_refused_and_never_runs(arts, tmp_path, how):
    import torch

    from fer_edge.export.onnx import export_onnx
    from fer_edge.train.checkpoint import load_checkpoint

    sentinel = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    payload = {"state_dict": {}, "model": _Payload(sentinel)}
    if how == "torch_save":
        torch.save(payload, evil)
    else:
        evil.write_bytes(pickle.dumps(payload))
    _copy(arts["ck"], evil, evil.read_bytes(), rehash=True)  # a forged sidecar that matches the file
    _refused(lambda: load_checkpoint(evil), ModelError, "weights_only", RETRAIN)
    _refused(lambda: export_onnx(evil, tmp_path / "m.onnx"), ModelError, RETRAIN)
    assert not sentinel.exists() and not (tmp_path / "m.onnx").exists()


def test_checkpoint_changed_after_it_was_made_is_refused(arts, tmp_path):
    from fer_edge.train.checkpoint import load_checkpoint

    raw = arts["ck"].read_bytes()
    bad = _copy(arts["ck"], tmp_path / "t.pt", raw[:-10])  # truncated copy, original sidecar
    _refused(lambda: load_checkpoint(bad), ManifestError, "does not match its manifest", RECREATE)


@pytest.mark.parametrize("field,value,needle", [
    ("producer_version", "9.9.0", "install fer-edge==9.9.0"),
    ("schema_version", 99, "re-create the artefact with fer-edge"),
    ("producer", "someone-else", "re-create it with fer-edge"),
    ("kind", "onnx", "expected one of ['checkpoint']"),
])
def test_checkpoint_manifest_of_another_version_or_kind_is_refused(arts, tmp_path, field, value, needle):
    from fer_edge.train.checkpoint import load_checkpoint

    bad = _copy(arts["ck"], tmp_path / "v.pt", **{field: value})
    _refused(lambda: load_checkpoint(bad), ManifestError, needle)


def test_checkpoint_without_or_with_broken_sidecar_is_refused(arts, tmp_path):
    from fer_edge.train.checkpoint import load_checkpoint

    lone = tmp_path / "lone.pt"
    lone.write_bytes(arts["ck"].read_bytes())
    _refused(lambda: load_checkpoint(lone), ManifestError, "copy the sidecar next to it")
    sidecar_path(lone).write_text("{not json")
    _refused(lambda: load_checkpoint(lone), ManifestError, "not valid JSON", RECREATE)


# --------------------------------------------------------------------------- ONNX models


def test_intact_onnx_opens(arts):
    from fer_edge.runtime.backends import open_backend

    assert open_backend(arts["onnx"], "onnxruntime").contract.labels


@pytest.mark.parametrize("case", ["truncated", "random_bytes", "empty"])
def test_corrupt_onnx_is_refused_by_runtime_and_calibrate(arts, tmp_path, case):
    from fer_edge.calibration.quantize import calibrate
    from fer_edge.runtime.backends import open_backend

    raw = arts["onnx"].read_bytes()
    data = {"truncated": raw[: len(raw) // 3], "random_bytes": os.urandom(2048), "empty": b""}[case]
    stale = _copy(arts["onnx"], tmp_path / "stale.onnx", data)  # sidecar of the good file
    for fn in (lambda: open_backend(stale, "onnxruntime"), lambda: calibrate(stale, tmp_path, tmp_path / "q.onnx")):
        with pytest.raises((ManifestError, ModelError)) as info:  # whichever check trips first
            fn()
        assert RECREATE in str(info.value) or REEXPORT in str(info.value)
    forged = _copy(arts["onnx"], tmp_path / "forged.onnx", data, rehash=True)  # sidecar re-hashed
    _refused(lambda: open_backend(forged, "onnxruntime"), ModelError, REEXPORT)
    _refused(lambda: calibrate(forged, tmp_path, tmp_path / "q.onnx"), ModelError, REEXPORT)
    bare = tmp_path / "bare.onnx"  # no sidecar at all: the model itself must be readable
    bare.write_bytes(data)
    _refused(lambda: open_backend(bare, "onnxruntime"), ModelError, REEXPORT)
    assert not (tmp_path / "q.onnx").exists()


def test_onnx_with_sidecar_of_another_version_is_refused(arts, tmp_path):
    from fer_edge.runtime.backends import open_backend

    bad = _copy(arts["onnx"], tmp_path / "v.onnx", producer_version="0.0.1")
    _refused(lambda: open_backend(bad, "onnxruntime"), ManifestError, "install fer-edge==0.0.1")


def test_int8_paired_with_another_fp32_is_refused(arts, tmp_path):
    from fer_edge.calibration.verify import verify_int8

    q = tmp_path / "m.int8.onnx"
    q.write_bytes(arts["onnx"].read_bytes())
    write_manifest(q, Manifest(kind="int8_onnx", precision="int8", inputs={"fp32_onnx": sha256_file(arts["onnx"])}))
    assert verify_int8(q, arts["onnx"]).kind == "int8_onnx"  # control: its own parent passes
    _refused(lambda: verify_int8(q, arts["onnx_b"]), ManifestError, "re-create it from this fp32_onnx")


# --------------------------------------------------------------------------- TensorRT engines


class _Trt:
    def __init__(self, version):
        self.__version__ = version


def _engine(tmp_path: Path, trt="10.3.0", name="Orin", cc="8.7") -> Path:
    eng = tmp_path / "m.engine"
    eng.write_bytes(b"serialized-engine")
    write_manifest(eng, Manifest(kind="engine", precision="int8", labels=["a"],
                                 extra={"tensorrt_version": trt, "device": {"name": name, "compute_capability": cc}}))
    return eng


def test_engine_for_this_tensorrt_and_device_passes(tmp_path):
    from fer_edge.runtime.tensorrt.sidecar import DeviceInfo, check_engine

    assert check_engine(_engine(tmp_path), _Trt("10.3.0"), DeviceInfo("Orin", "8.7")).kind == "engine"


@pytest.mark.parametrize("trt,device,needle", [
    ("8.6.1", ("Orin", "8.7"), "built with TensorRT 10.3.0, this is TensorRT 8.6.1"),
    ("10.3.0", ("NVIDIA H100", "9.0"), "built for Orin (compute 8.7), this is NVIDIA H100"),
    ("10.3.0", ("Orin", "7.2"), "compute 8.7"),
])
def test_engine_for_another_tensorrt_or_device_is_refused(tmp_path, trt, device, needle):
    from fer_edge.runtime.tensorrt.sidecar import DeviceInfo, check_engine

    eng = _engine(tmp_path)
    _refused(lambda: check_engine(eng, _Trt(trt), DeviceInfo(*device)), ManifestError, needle, REBUILD)


def test_engine_changed_after_build_is_refused(tmp_path):
    from fer_edge.runtime.tensorrt.sidecar import DeviceInfo, check_engine

    eng = _engine(tmp_path)
    eng.write_bytes(b"serialized-engine-but-other")
    _refused(lambda: check_engine(eng, _Trt("10.3.0"), DeviceInfo("Orin", "8.7")), ManifestError,
             "does not match its manifest", RECREATE)


def test_manifest_roundtrip_is_what_verify_reads(arts):
    m = read_manifest(arts["ck"])
    assert verify(arts["ck"]).sha256 == m.sha256 == sha256_file(arts["ck"])
