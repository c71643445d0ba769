"""Property-based fuzzing of everything that parses user or camera input.

Each property says: whatever the bytes, the parser returns a value or raises the *named* error of
its stage (ConfigError, DataError, ManifestError …) — never a KeyError, TypeError or a crash that
the CLI would print as a traceback. ``max_examples`` is kept small so the whole hardening suite runs
in well under 90 s on 2 cores; the counts are summed by ``benchmarks/reliability_figures.py``.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from fer_edge.config import Config, load_config
from fer_edge.data.dataset import read_image
from fer_edge.data.loaders import load_dataset
from fer_edge.runtime.errors import ConfigError, DataError, FerEdgeError, ManifestError, ModelError
from fer_edge.runtime.manifest import Manifest, read_manifest, sidecar_path, verify
from fer_edge.runtime.results import FaceResult, FrameResult, JsonlWriter, validate_line

#: ``FER_EDGE_FUZZ_SCALE=20 pytest tests/test_hardening_fuzz.py`` fuzzes 20x deeper (nightly, before a release).
SCALE = max(1, int(os.environ.get("FER_EDGE_FUZZ_SCALE", "1")))
FUZZ = settings(max_examples=40 * SCALE, deadline=None, database=None, suppress_health_check=list(HealthCheck))
FUZZ_SMALL = settings(max_examples=20 * SCALE, deadline=None, database=None, suppress_health_check=list(HealthCheck))

SECTIONS = ["name", "preprocess", "crop", "data", "model", "train", "export", "calibrate", "build", "runtime",
            "eval", "bench", "pipeline"]
FIELDS = ["size", "colour", "mean", "std", "detector", "min_face", "margin", "square", "select", "epochs",
          "batch_size", "lr", "method", "methods", "root", "backbone", "opset", "num_images", "iters", "batches",
          "counts", "source", "synth", "seed", "workers", "out", "until", "precision", "clahe", "align"]
text = st.text(max_size=12)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                    st.floats(allow_nan=True, allow_infinity=True), text)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.one_of(st.sampled_from(FIELDS), text),
                                                                       inner, max_size=4)), max_leaves=12)
trees = st.dictionaries(st.one_of(st.sampled_from(SECTIONS), text), values, max_size=5)


def _named(exc: BaseException, *types) -> bool:
    return isinstance(exc, types) and str(exc).strip() != ""


# --------------------------------------------------------------------------- config loader


@FUZZ
@given(tree=trees)
def test_config_random_yaml_tree_is_config_or_config_error(tmp_path_factory, tree):
    path = tmp_path_factory.mktemp("cfg") / "c.yaml"
    path.write_text(yaml.safe_dump(tree, allow_unicode=True), encoding="utf-8")
    try:
        assert isinstance(load_config(path), Config)
    except ConfigError as exc:
        assert _named(exc, ConfigError)


@FUZZ
@given(raw=st.binary(max_size=200))
def test_config_random_bytes_is_config_or_config_error(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("cfg") / "c.yaml"
    path.write_bytes(raw)
    try:
        assert isinstance(load_config(path), Config)
    except ConfigError as exc:
        assert _named(exc, ConfigError)


@FUZZ
@given(keys=st.lists(st.one_of(st.sampled_from(SECTIONS), st.sampled_from(FIELDS), text), min_size=0, max_size=3),
       value=st.one_of(text, st.sampled_from(["[1, 8]", "{a: 1}", "!!python/name:os.system", "null", "1e9",
                                              "-3", "true", "'x'", "[", "nan", ".inf", "!!binary aGk="])),
       sep=st.sampled_from(["=", ":", ""]))
def test_config_random_override_is_config_or_config_error(keys, value, sep):
    try:
        assert isinstance(load_config("ci", [".".join(keys) + sep + value]), Config)
    except ConfigError as exc:
        assert _named(exc, ConfigError)


# --------------------------------------------------------------------------- dataset loaders

cells = st.one_of(st.text(max_size=20), st.sampled_from(["happy", "anger", "3", "-1", "99", "../x.png",
                                                          "/etc/passwd", "a.png", "img/b.png", "", "nan"]))


def _write_csv(path: Path, header, rows) -> None:
    import csv

    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for r in rows:
            w.writerow(r)


def _load_or_data_error(path: Path, fmt: str):
    try:
        ds = load_dataset(path, fmt)
    except DataError as exc:
        assert _named(exc, DataError)
        return None
    for rec in ds.records:  # every record that made it in resolves inside the root
        p = ds.image_path(rec) if rec.path not in ds.memory else None
        if p is not None:
            assert ds.root.resolve() in p.parents
    for s in ds.skipped:
        assert s.reason
    return ds


@pytest.fixture(scope="module")
def good_png(tmp_path_factory):
    import cv2

    d = tmp_path_factory.mktemp("img")
    cv2.imwrite(str(d / "a.png"), np.full((40, 40), 128, np.uint8))
    return (d / "a.png").read_bytes()


@FUZZ
@given(rows=st.lists(st.tuples(cells, cells, cells, cells), max_size=6))
def test_synth_csv_random_rows_load_or_skip(tmp_path_factory, good_png, rows):
    root = tmp_path_factory.mktemp("synthcsv")
    (root / "img").mkdir()
    (root / "a.png").write_bytes(good_png)
    (root / "img" / "b.png").write_bytes(b"not a png")
    _write_csv(root / "labels.csv", ["path", "expression", "yaw", "identity"], rows)
    ds = _load_or_data_error(root, "synth")
    if ds is not None:
        from fer_edge.runtime.contract import PreprocessSpec

        before = len(ds.skipped)
        x, keep = ds.arrays(PreprocessSpec(size=32, colour="gray", mean=(0.5,), std=(0.25,)))
        assert len(keep) + len(ds.skipped) - before == len(ds.records)  # each record decoded or named
        assert np.isfinite(x).all() and len(x) == len(keep)


@FUZZ
@given(rows=st.lists(st.tuples(cells, st.one_of(cells, st.just(" ".join(["7"] * 2304)),
                                                st.just(" ".join(["300"] * 2304))), cells), max_size=5))
def test_fer2013_random_rows_load_or_skip(tmp_path_factory, rows):
    root = tmp_path_factory.mktemp("fer")
    _write_csv(root / "fer2013.csv", ["emotion", "pixels", "Usage"], rows)
    _load_or_data_error(root / "fer2013.csv", "fer2013")


@FUZZ
@given(rows=st.lists(st.tuples(cells, cells), max_size=5))
def test_affectnet_random_rows_load_or_skip(tmp_path_factory, good_png, rows):
    root = tmp_path_factory.mktemp("aff")
    (root / "a.png").write_bytes(good_png)
    _write_csv(root / "training.csv", ["subDirectory_filePath", "expression"], rows)
    _load_or_data_error(root / "training.csv", "affectnet")


@FUZZ
@example(lines=["x.jpg \u00b9", "y.jpg \u0663"])  # found in CI: "¹".isdigit() is True, int("¹") raises
@given(lines=st.lists(st.one_of(st.text(max_size=30), st.tuples(cells, cells).map(" ".join)), max_size=6))
def test_rafdb_random_lines_load_or_skip(tmp_path_factory, lines):
    root = tmp_path_factory.mktemp("raf")
    (root / "EmoLabel").mkdir()
    (root / "EmoLabel" / "list_patition_label.txt").write_text("\n".join(lines), encoding="utf-8")
    _load_or_data_error(root, "rafdb")


PNG_HEAD = b"\x89PNG\r\n\x1a\n"
JPG_HEAD = b"\xff\xd8\xff\xe0"


@FUZZ
@given(raw=st.one_of(st.binary(max_size=300), st.binary(max_size=300).map(lambda b: PNG_HEAD + b),
                     st.binary(max_size=300).map(lambda b: JPG_HEAD + b + b"\xff\xd9")),
       cut=st.integers(0, 400))
def test_random_image_bytes_decode_or_value_error(tmp_path_factory, good_png, raw, cut):
    d = tmp_path_factory.mktemp("bytes")
    p = d / "x.png"
    p.write_bytes(raw if cut % 2 else good_png[: cut % len(good_png)] + raw[:8])
    try:
        img = read_image(p)
        assert img.dtype == np.uint8 and img.ndim in (2, 3)
    except ValueError as exc:
        assert str(exc)


@FUZZ_SMALL
@given(blobs=st.lists(st.binary(max_size=120), min_size=1, max_size=4))
def test_imagefolder_with_random_files_loads_or_skips(tmp_path_factory, good_png, blobs):
    root = tmp_path_factory.mktemp("if")
    (root / "happy").mkdir()
    (root / "happy" / "ok.png").write_bytes(good_png)
    for i, b in enumerate(blobs):
        (root / "happy" / f"r{i}.png").write_bytes(b)
    ds = _load_or_data_error(root, "imagefolder")
    assert ds is not None
    from fer_edge.runtime.contract import PreprocessSpec

    before = len(ds.skipped)
    x, keep = ds.arrays(PreprocessSpec(size=32, colour="gray", mean=(0.5,), std=(0.25,)))
    assert 1 <= len(keep) <= len(ds.records) and np.isfinite(x).all()
    assert len(ds.skipped) - before == len(ds.records) - len(keep)  # every dropped image is named


# --------------------------------------------------------------------------- manifest and sidecar

json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8)),
                           lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                   st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                           max_leaves=8)
MANIFEST_KEYS = ["kind", "sha256", "precision", "labels", "preprocess", "crop", "inputs", "extra", "producer",
                 "producer_version", "schema_version", "created_at", "host"]
manifest_like = st.dictionaries(st.one_of(st.sampled_from(MANIFEST_KEYS), st.text(max_size=6)), json_values,
                                max_size=12)


@FUZZ_SMALL
@given(header=st.lists(st.one_of(st.sampled_from(["path", "expression", "emotion", "pixels", "Usage",
                                                  "subDirectory_filePath", "x", "w"]), st.text(max_size=6)),
                       max_size=5),
       rows=st.lists(st.lists(cells, max_size=5), max_size=4), unlabelled=st.booleans())
def test_auto_detected_folder_with_random_csv_loads_or_data_error(tmp_path_factory, good_png, header, rows,
                                                                 unlabelled):
    root = tmp_path_factory.mktemp("auto")
    if unlabelled:
        (root / "a.png").write_bytes(good_png)
    _write_csv(root / "data.csv", header, rows)
    _load_or_data_error(root, "auto")


@FUZZ_SMALL
@given(lines=st.lists(st.one_of(st.text(max_size=30), json_values.map(json.dumps)), max_size=5))
def test_footage_ground_truth_random_lines_load_or_data_error(tmp_path_factory, lines):
    from fer_edge.data.faces.frames import read_truth

    p = tmp_path_factory.mktemp("truth") / "frames.jsonl"
    p.write_text("\n".join(lines), encoding="utf-8")
    try:
        assert all(isinstance(r, dict) for r in read_truth(p))
    except DataError as exc:
        assert _named(exc, DataError)


def _base_manifest_dict():
    return Manifest(kind="onnx").to_dict()


@FUZZ
@given(doc=st.one_of(manifest_like, json_values,
                     st.fixed_dictionaries({}, optional={k: json_values for k in MANIFEST_KEYS})
                     .map(lambda d: {**_base_manifest_dict(), **d})))
def test_random_manifest_json_is_manifest_or_manifest_error(tmp_path_factory, doc):
    d = tmp_path_factory.mktemp("man")
    art = d / "model.onnx"
    art.write_bytes(b"payload")
    sidecar_path(art).write_text(json.dumps(doc), encoding="utf-8")
    try:
        m = read_manifest(art)
        assert isinstance(m, Manifest)
        verify(art)
    except ManifestError as exc:
        assert _named(exc, ManifestError)


@FUZZ_SMALL
@given(raw=st.binary(max_size=200))
def test_random_manifest_bytes_are_a_manifest_error(tmp_path_factory, raw):
    d = tmp_path_factory.mktemp("manb")
    art = d / "model.onnx"
    art.write_bytes(b"payload")
    sidecar_path(art).write_bytes(raw)
    try:
        verify(art)
    except ManifestError as exc:
        assert _named(exc, ManifestError)


class _FakeTrt:
    __version__ = "10.3.0"


@FUZZ
@given(extra=st.dictionaries(st.sampled_from(["tensorrt_version", "device", "profile", "dla_core"]),
                             st.one_of(json_values, st.fixed_dictionaries(
                                 {}, optional={"name": json_values, "compute_capability": json_values})),
                             max_size=4))
def test_random_engine_sidecar_is_accepted_or_manifest_error(tmp_path_factory, extra):
    from fer_edge.runtime.manifest import write_manifest
    from fer_edge.runtime.tensorrt.sidecar import DeviceInfo, check_engine

    d = tmp_path_factory.mktemp("eng")
    eng = d / "m.engine"
    eng.write_bytes(b"engine")
    write_manifest(eng, Manifest(kind="engine", precision="fp16", extra=extra))
    try:
        check_engine(eng, trt_module=_FakeTrt, device=DeviceInfo("Orin", "8.7"))
        assert str(extra.get("tensorrt_version")) == "10.3.0"
    except ManifestError as exc:
        assert _named(exc, ManifestError) and "fer-edge build" in str(exc)


# --------------------------------------------------------------------------- JSONL writer

floats = st.floats(allow_nan=True, allow_infinity=True)


def _strict_loads(line: str):
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(line, parse_constant=refuse)


@FUZZ
@given(frames=st.lists(st.tuples(floats, st.text(max_size=10), st.lists(floats, min_size=7, max_size=7),
                                 floats, st.dictionaries(st.text(max_size=6), floats, max_size=3)),
                       min_size=1, max_size=4))
def test_jsonl_writer_random_floats_and_unicode_give_valid_json_lines(tmp_path_factory, frames):
    out = tmp_path_factory.mktemp("jsonl") / "r.jsonl"
    w = JsonlWriter(out, flush_every=2)
    for i, (ts, label, probs, score, lat) in enumerate(frames):
        face = FaceResult(1, (1, 2, 3, 4), score, label, score, probs, label, score, probs)
        try:
            w.write(FrameResult(i, ts, [face], lat, True, None, "abc"))
        except FerEdgeError as exc:  # a named refusal is allowed, anything else is a bug
            assert str(exc)
    w.close()
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == w.lines
    for line in lines:
        obj = _strict_loads(line)
        assert validate_line(obj) == []
        for f in obj["faces"]:
            assert all(p is None or math.isfinite(p) for p in f["probs"])


def test_repeated_set_flags_all_apply():
    """``--set a=1 --set b=2`` used to keep only the last flag: data.root silently fell back to its default."""
    import argparse

    from fer_edge.cli import add_config_arguments, load_args_config

    p = argparse.ArgumentParser()
    add_config_arguments(p)
    args = p.parse_args(["--config", "ci", "--set", "data.root=/x", "--set", "train.epochs=5", "name=z"])
    cfg = load_args_config(args)
    assert (cfg.data.root, cfg.train.epochs, cfg.name) == ("/x", 5, "z")


@FUZZ
@given(doc=st.one_of(json_values, st.fixed_dictionaries(
    {"stage": st.just("train"), "inputs_hash": st.just("h")},
    optional={"outputs": json_values, "result": json_values, "seconds": json_values, "status": json_values})))
def test_random_pipeline_stamp_is_fresh_or_stale_never_a_crash(tmp_path_factory, doc):
    """A hand-edited or foreign ``stage.json`` must make the stage rerun, not crash the resumable job."""
    from fer_edge.pipeline.stamps import STAMP, stamp_is_fresh

    stage = tmp_path_factory.mktemp("run") / "train"
    stage.mkdir()
    (stage / STAMP).write_text(json.dumps(doc), encoding="utf-8")
    st_ = stamp_is_fresh(stage, "h")
    assert st_ is None or (st_.inputs_hash == "h" and isinstance(st_.outputs, dict))


@FUZZ
@given(text=st.one_of(st.text(max_size=120), st.lists(st.one_of(
    st.sampled_from(["TRT-100300-EntropyCalibration2", "TRT-8601-MinMaxCalibration", "input: 3c010a14",
                     "x: zz", ": 1", "a: 7f800000", "b: ffffffff", "", "c:3c010a14:1"]), st.text(max_size=20)),
    max_size=5).map("\n".join)))
def test_random_calibration_cache_text_parses_or_model_error(text):
    from fer_edge.calibration.cache import parse_cache

    try:
        version, calibrator, scales = parse_cache(text)
        assert isinstance(version, int) and all(isinstance(v, float) for v in scales.values())
    except ModelError as exc:
        assert _named(exc, ModelError)


@FUZZ
@given(doc=st.one_of(json_values, st.fixed_dictionaries(
    {}, optional={"labels": json_values, "preprocess": st.one_of(json_values, st.fixed_dictionaries(
        {}, optional={"size": json_values, "colour": st.sampled_from(["gray", "rgb", "bgr", "x"]),
                      "mean": json_values, "std": json_values})), "crop": json_values})))
def test_random_model_contract_json_is_contract_or_model_error(doc):
    """The contract stored in an ONNX's metadata is untrusted text too."""
    from fer_edge.runtime.model import contract_from_json

    try:
        contract = contract_from_json(json.dumps(doc), "model.onnx")
        assert contract.labels
    except ModelError as exc:
        assert _named(exc, ModelError) and "re-export" in str(exc)
