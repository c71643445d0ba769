"""Untrusted text: YAML tags, dataset paths that escape their root, output names derived from input names.

A config, a csv or a frame's file name comes from whoever handed over the data. None of them may make
fer-edge run code (``!!python/...`` tags), read outside the dataset it was pointed at (``../``,
absolute paths, symlinks), or write outside ``--out`` / overwrite one output with another.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fer_edge.config import load_config
from fer_edge.data.loaders import load_dataset
from fer_edge.runtime.errors import ConfigError, DataError

REPO = Path(__file__).resolve().parents[1]
SOURCE_DIRS = ("fer_edge", "runtime", "train", "export", "calibration", "benchmarks")
TAGS = [
    "!!python/object/apply:os.system ['touch {sentinel}']",
    "!!python/object/new:os.system ['touch {sentinel}']",
    "!!python/name:os.system",
    "!!python/module:os",
    "!!python/object:fer_edge.config.Config {{}}",
]


def _sources():
    for d in SOURCE_DIRS:
        yield from (p for p in (REPO / d).rglob("*.py") if "tests" not in p.parts)


# --------------------------------------------------------------------------- YAML tags


@pytest.mark.parametrize("tag", TAGS)
def test_yaml_tags_in_a_config_file_are_refused(tmp_path, tag):
    sentinel = tmp_path / "pwned"
    cfg = tmp_path / "evil.yaml"
    cfg.write_text("name: " + tag.format(sentinel=sentinel) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="tag that is not allowed"):
        load_config(cfg)
    cfg.write_text("train:\n  epochs: " + tag.format(sentinel=sentinel) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="tag that is not allowed"):
        load_config(cfg)
    assert not sentinel.exists()


@pytest.mark.parametrize("tag", TAGS)
def test_yaml_tags_in_a_set_override_are_refused(tmp_path, tag):
    sentinel = tmp_path / "pwned"
    with pytest.raises(ConfigError, match="tag"):
        load_config("ci", ["name=" + tag.format(sentinel=sentinel)])
    assert not sentinel.exists()


def test_cli_refuses_a_tagged_config_in_one_line(tmp_path):
    sentinel = tmp_path / "pwned"
    cfg = tmp_path / "evil.yaml"
    cfg.write_text(f"name: !!python/object/apply:os.system ['touch {sentinel}']\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "fer_edge.cli", "build", "--config", str(cfg), "--model",
                           str(tmp_path / "m.onnx")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "tag that is not allowed" in proc.stderr + proc.stdout
    assert not sentinel.exists()


def test_no_module_reads_yaml_or_pickles_unsafely():
    """Static guard: the only YAML reader is the safe one, every torch.load is weights_only=True."""
    unsafe_yaml = re.compile(r"yaml\.(load|unsafe_load|full_load|load_all|full_load_all|unsafe_load_all)\(|"
                             r"yaml\.(Unsafe|Full)?Loader\b")
    offenders = []
    for p in _sources():
        text = p.read_text(encoding="utf-8")
        offenders += [f"{p.relative_to(REPO)}: yaml" for _ in unsafe_yaml.finditer(text)]
        for m in re.finditer(r"torch\.load\(([^()]|\([^()]*\))*\)", text):
            if "weights_only=True" not in m.group(0):
                offenders.append(f"{p.relative_to(REPO)}: {m.group(0)[:60]}")
        if re.search(r"^\s*import pickle|pickle\.loads?\(", text, re.M) and "pickle.UnpicklingError" not in text:
            offenders.append(f"{p.relative_to(REPO)}: pickle")
    assert offenders == []


# --------------------------------------------------------------------------- dataset paths escaping the root


@pytest.fixture()
def outside(tmp_path):
    """A readable face image OUTSIDE every dataset root (what an escaping path would reach)."""
    d = tmp_path / "secret"
    d.mkdir()
    cv2.imwrite(str(d / "face.png"), np.full((40, 40), 200, np.uint8))
    return d / "face.png"


def _good(root: Path, rel: str = "ok.png") -> None:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(root / rel), np.full((40, 40), 100, np.uint8))


def _escaped(ds, outside: Path):
    return [s for s in ds.skipped if "escapes the dataset root" in s.reason], \
        [r for r in ds.records if Path(ds.image_path(r)).resolve() == outside.resolve()]


def test_csv_rows_with_dotdot_and_absolute_paths_are_refused(tmp_path, outside):
    root = tmp_path / "ds"
    _good(root)
    rel_up = "../secret/face.png"
    (root / "labels.csv").write_text(f"path,expression\nok.png,happy\n{rel_up},sad\n{outside},anger\n"
                                     "img/../../secret/face.png,fear\n", encoding="utf-8")
    ds = load_dataset(root, "synth")
    refused, leaked = _escaped(ds, outside)
    assert [r.path for r in ds.records] == ["ok.png"] and leaked == []
    assert len(refused) == 3


def test_affectnet_and_rafdb_rows_cannot_escape(tmp_path, outside):
    aff = tmp_path / "aff"
    _good(aff)
    (aff / "training.csv").write_text("subDirectory_filePath,expression\nok.png,1\n../secret/face.png,2\n"
                                      f"{outside},3\n", encoding="utf-8")
    ds = load_dataset(aff / "training.csv", "affectnet")
    refused, leaked = _escaped(ds, outside)
    assert len(ds.records) == 1 and leaked == [] and len(refused) == 2
    raf = tmp_path / "raf"
    _good(raf, "Image/original/ok.jpg")
    (raf / "EmoLabel").mkdir()
    (raf / "EmoLabel" / "list_patition_label.txt").write_text("ok.jpg 4\n../../../secret/face.png 5\n",
                                                               encoding="utf-8")
    ds = load_dataset(raf, "rafdb")
    refused, leaked = _escaped(ds, outside)
    assert len(ds.records) == 1 and leaked == [] and len(refused) == 1


def test_symlinks_pointing_outside_the_root_are_refused(tmp_path, outside):
    root = tmp_path / "if"
    _good(root, "happy/ok.png")
    (root / "happy" / "link.png").symlink_to(outside)
    (root / "sad").mkdir()
    (root / "sad" / "dir").symlink_to(outside.parent, target_is_directory=True)
    (root / "labels_dir").mkdir()
    ds = load_dataset(root, "imagefolder")
    refused, leaked = _escaped(ds, outside)
    assert leaked == [] and [r.path for r in ds.records] == ["happy/ok.png"]
    assert any(s.path == "happy/link.png" for s in refused)
    un = tmp_path / "un"
    _good(un)
    (un / "link.png").symlink_to(outside)
    ds = load_dataset(un, "unlabelled")
    refused, leaked = _escaped(ds, outside)
    assert leaked == [] and [r.path for r in ds.records] == ["ok.png"] and len(refused) == 1


def test_csv_symlink_inside_root_still_resolves_inside(tmp_path, outside):
    root = tmp_path / "ds"
    _good(root, "real/ok.png")
    (root / "alias").symlink_to(root / "real", target_is_directory=True)
    (root / "labels.csv").write_text("path,expression\nalias/ok.png,happy\n", encoding="utf-8")
    ds = load_dataset(root, "synth")
    assert len(ds.records) == 1  # an in-root symlink is fine; only escaping ones are refused


# --------------------------------------------------------------------------- output names derived from input names

names = st.one_of(
    st.text(min_size=1, max_size=24),
    st.lists(st.sampled_from(["..", ".", "a", "é", "图", "#", "#12", " ", "/", "\\", "x.png", "~", "$HOME"]),
             min_size=1, max_size=6).map("".join),
)


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(name=names, face=st.integers(0, 9), label=st.sampled_from(["", "happiness", "unlabelled"]),
       layout=st.sampled_from(["flat", "classes", "truth"]))
def test_crop_names_stay_inside_the_faces_folder(tmp_path_factory, name, face, label, layout):
    from fer_edge.data.faces.detect_frame import FACES_DIR, crop_folder
    from fer_edge.data.faces.frames import FrameRef

    out = tmp_path_factory.getbasetemp() / "out"
    rel = crop_folder(FrameRef(3, name), face, label, layout)
    target = (out / FACES_DIR / rel).resolve()
    assert (out / FACES_DIR).resolve() in target.parents
    assert re.fullmatch(r"[A-Za-z0-9_.\-/]+", rel), rel
    assert ".." not in Path(rel).parts


def test_distinct_frame_names_get_distinct_crop_names():
    """Two frames must never write the same crop file (one would silently overwrite the other)."""
    from fer_edge.data.faces.detect_frame import crop_folder
    from fer_edge.data.faces.frames import FrameRef

    groups = [["a/b.png", "a__b.png"], ["图片1.png", "图像1.png", "é1.png"], ["cam 1.png", "cam_1.png"],
              ["clip.mp4#7", "clip.mp4#0007"]]
    for g in groups[:3]:
        got = [crop_folder(FrameRef(0, n), 0, "", "flat") for n in g]
        assert len(set(got)) == len(got), got
    assert crop_folder(FrameRef(7, "clip.mp4#7"), 0, "", "flat") == "clip_000007_f0.png"


def test_frame_files_with_hash_and_unicode_names_are_cropped_not_crashed(tmp_path):
    """A frame called ``cam#1.png`` is a file name, not a video index: data faces must not crash on it."""
    from runtime_fixtures import synthetic_frames

    from fer_edge.data.faces.extract import extract_faces
    from fer_edge.runtime.crop import CropPolicy

    src = tmp_path / "frames"
    src.mkdir()
    frame = synthetic_frames(1, size=(200, 160), faces=((100, 80, 40),))[0]
    names = ["cam#1.png", "cam#b.png", "图片1.png", "图像1.png", "a..b c.png"]
    for n in names:
        cv2.imwrite(str(src / "tmp.png"), frame)
        (src / "tmp.png").rename(src / n)
    out = tmp_path / "out"
    extract_faces(src, out, CropPolicy(detector="haar", min_face=24, margin=0.2, square=True), workers=1,
                  progress=False, contact_sheet=False)
    import csv

    rows = list(csv.DictReader(open(out / "faces.csv", encoding="utf-8")))
    crops = [r["crop"] for r in rows]
    assert sorted({r["source"] for r in rows}) == sorted(names)
    assert len(set(crops)) == len(crops)
    for c in crops:
        assert (out / c).resolve().is_file() and out.resolve() in (out / c).resolve().parents
    assert not any(p.name.startswith(".out.partial") for p in tmp_path.iterdir())


def test_outputs_never_replace_a_folder_that_is_not_theirs(tmp_path):
    from fer_edge.data.faces.extract import extract_faces
    from fer_edge.data.synth.writer import generate
    from fer_edge.runtime.crop import CropPolicy

    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "thesis.tex").write_text("keep me")
    frames = tmp_path / "frames"
    _good(frames, "f.png")
    with pytest.raises(DataError, match="not an earlier"):
        extract_faces(frames, precious, CropPolicy(), workers=1, progress=False)
    with pytest.raises(DataError, match="not a fer-edge synthetic dataset"):
        generate("studio", "crops", precious, 2, workers=1)
    assert (precious / "thesis.tex").read_text() == "keep me" and sorted(p.name for p in precious.iterdir()) == [
        "thesis.tex"]


def test_method_names_cannot_steer_the_train_output_folder():
    from fer_edge.train.methods import method_class

    for evil in ("../../etc", "/tmp/x", "dann/../../x"):
        with pytest.raises(ConfigError):
            method_class(evil)
