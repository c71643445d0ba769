"""Every loader layout, built on the fly with corrupt images and bad rows: counts, labels, skip report."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_edge.data.dataset import FaceDataset, FaceRecord
from fer_edge.data.loaders import detect_format, load_dataset
from fer_edge.runtime.contract import LABELS, PreprocessSpec, preprocess
from fer_edge.runtime.crop import CropPolicy, crop_face
from fer_edge.runtime.errors import DataError

SPEC = PreprocessSpec(size=32, colour="gray", mean=(0.5,), std=(0.25,))


def _png(path: Path, value: int = 128, shape=(40, 40, 3)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.full(shape, value, np.uint8)
    img[::4] = 255 - value
    assert cv2.imwrite(str(path), img)
    return path


def _corrupt(root: Path, rel_zero: str, rel_trunc: str, rel_garbage: str) -> None:
    (root / rel_zero).parent.mkdir(parents=True, exist_ok=True)
    (root / rel_zero).write_bytes(b"")
    good = cv2.imencode(".jpg", np.full((40, 40, 3), 90, np.uint8))[1].tobytes()
    (root / rel_trunc).parent.mkdir(parents=True, exist_ok=True)
    (root / rel_trunc).write_bytes(good[: len(good) // 2])
    (root / rel_garbage).parent.mkdir(parents=True, exist_ok=True)
    (root / rel_garbage).write_bytes(b"this is not a png")


def _reasons(ds: FaceDataset) -> str:
    return "\n".join(str(s) for s in ds.skipped)


def test_imagefolder_aliases_contempt_and_corrupt_files(tmp_path):
    root = tmp_path / "faces"
    for k, folder in enumerate(["happy", "Sadness", "SU", "4_fear", "neutral", "disgusted", "angry"]):
        _png(root / folder / f"a{k}.png", 40 + k)
        _png(root / folder / f"b{k}.png", 60 + k, shape=(30, 50))  # gray, non-square
    _png(root / "contempt" / "c.png")
    _png(root / "holiday" / "x.png")
    (root / "happy" / "notes.txt").write_text("hi")
    _corrupt(root, "happy/zero.png", "sad/trunc.jpg", "Sadness/garbage.png")
    assert detect_format(root) == "imagefolder"
    ds = load_dataset(root)
    assert set(ds.labels) == set(LABELS)
    counts = ds.class_counts()
    # "Sadness/" and "sad/" are both sadness: 2 good + 1 garbage + 1 truncated.
    assert counts["happiness"] == 2 and counts["sadness"] == 4 and counts["fear"] == 2
    reasons = _reasons(ds)
    assert "contempt is not in the label set" in reasons
    assert "holiday/ — folder name is not an expression" in reasons
    assert "zero-byte" in reasons and "notes.txt" in reasons
    x, keep = ds.arrays(SPEC)
    assert x.shape == (len(keep), 1, 32, 32)
    assert len(keep) == len(ds) - 2  # the garbage png and the truncated jpeg are found at decode time
    assert "garbage.png — not a decodable image" in ds.skip_summary()
    assert "trunc.jpg — truncated JPEG" in ds.skip_summary()
    with_contempt = load_dataset(root, contempt=True)
    assert with_contempt.labels[-1] == "contempt" and with_contempt.class_counts()["contempt"] == 1


def test_truncated_jpeg_is_skipped_at_decode(tmp_path):
    root = tmp_path / "f"
    _png(root / "happy" / "ok.png")
    _corrupt(root, "sad/z.png", "sad/trunc.jpg", "sad/g.png")
    ds = load_dataset(root, "imagefolder")
    _, keep = ds.arrays(SPEC)
    assert len(keep) == 1
    assert "truncated JPEG" in ds.skip_summary()


def _fer_row(emotion, usage="Training", n=48 * 48, value=100):
    return f"{emotion},{' '.join([str(value)] * n)},{usage}"


def test_fer2013_csv_maps_order_and_skips_bad_rows(tmp_path):
    lines = ["emotion,pixels,Usage"] + [_fer_row(e) for e in range(7)]
    lines += [_fer_row(9), _fer_row(3, n=100), "x,1 2 3,Training", _fer_row(3, value=300)]
    path = tmp_path / "fer2013.csv"
    path.write_text("\n".join(lines) + "\n")
    assert detect_format(path) == "fer2013" and detect_format(tmp_path) == "fer2013"
    ds = load_dataset(path)
    assert len(ds) == 7 and len(ds.skipped) == 4
    # FER order angry, disgust, fear, happy, sad, surprise, neutral → canonical indices.
    assert [ds.labels[r.label] for r in ds] == ["anger", "disgust", "fear", "happiness", "sadness", "surprise",
                                                "neutral"]
    x, keep = ds.arrays(SPEC)
    assert x.shape == (7, 1, 32, 32)
    np.testing.assert_allclose(x[0], preprocess(np.full((48, 48), 100, np.uint8), SPEC), atol=1e-6)
    assert "malformed row" in _reasons(ds)
    sub = ds.subset([1, 2])
    assert sub.arrays(SPEC)[0].shape[0] == 2  # in-memory images travel with subsets


def test_rafdb_list_and_aligned_images(tmp_path):
    root = tmp_path / "basic"
    lines = []
    for k in range(1, 8):
        _png(root / "Image" / "aligned" / f"train_{k:05d}_aligned.jpg", 30 * k)
        lines.append(f"train_{k:05d}.jpg {k}")
    lines += ["test_00001.jpg 9", "broken line here", "test_00002.jpg 1"]  # bad label, bad line, missing file
    (root / "EmoLabel").mkdir(parents=True)
    (root / "EmoLabel" / "list_patition_label.txt").write_text("\n".join(lines) + "\n")
    assert detect_format(root) == "rafdb"
    ds = load_dataset(root)
    assert len(ds) == 7
    assert [ds.labels[r.label] for r in ds] == ["surprise", "fear", "disgust", "happiness", "sadness", "anger",
                                                "neutral"]
    reasons = _reasons(ds)
    assert reasons.count("malformed line") == 2 and "file not found" in reasons


def test_affectnet_drops_classes_8_to_10_and_contempt(tmp_path):
    root = tmp_path / "affectnet"
    rows = ["subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal"]
    for e in range(11):
        _png(root / "Manually_Annotated_Images" / "1" / f"{e}.jpg", 20 + e)
        rows.append(f"1/{e}.jpg,0,0,40,40,,{e},0,0")
    rows += ["1/x.jpg,0,0,40,40,,seven,0,0", "../../etc/passwd,0,0,1,1,,1,0,0"]
    (root / "training.csv").write_text("\n".join(rows) + "\n")
    assert detect_format(root) == "affectnet"
    ds = load_dataset(root)
    assert len(ds) == 7
    assert ds.labels[ds.records[1].label] == "happiness"
    reasons = _reasons(ds)
    assert reasons.count("is not an expression; dropped") == 3
    assert "contempt is not in the label set" in reasons
    assert "escapes the dataset root" in reasons and "malformed row" in reasons
    assert len(load_dataset(root, contempt=True)) == 8


def test_synth_csv_layout_and_path_escape(tmp_path):
    root = tmp_path / "s"
    _png(root / "images" / "a.png")
    _png(root / "images" / "b.png")
    (root / "labels.csv").write_text(
        "path,expression,intensity,identity,yaw,pitch,roll,domain\n"
        "images/a.png,happy,0.7,id1,1,2,3,studio\n"
        "images/b.png,anger,0.2,id2,0,0,0,studio\n"
        "../outside.png,sad,1,id3,0,0,0,studio\n"
        "images/c.png,bored,1,id3,0,0,0,studio\n"
        ",,,,,,,\n")
    ds = load_dataset(root)
    assert len(ds) == 2
    r = ds.records[0]
    assert (ds.labels[r.label], r.intensity, r.identity, r.yaw, r.domain) == ("happiness", 0.7, "id1", 1.0, "studio")
    reasons = _reasons(ds)
    assert "escapes the dataset root" in reasons and "unknown expression 'bored'" in reasons
    assert "malformed row" in reasons
    bad = FaceDataset(root, [FaceRecord("../outside.png", 0)])
    with pytest.raises(DataError, match="escapes"):
        bad.image_path(bad.records[0])


def test_unlabelled_folder(tmp_path):
    root = tmp_path / "cam"
    _png(root / "a.png")
    _png(root / "sub" / "b.jpg")
    (root / "readme.md").write_text("x")
    (root / "clip.mp4").write_bytes(b"\0")
    ds = load_dataset(root)
    assert len(ds) == 2 and not ds.labelled
    assert "clip.mp4 — not an image file" in _reasons(ds)
    with pytest.raises(DataError, match="no labels"):
        ds.require(labelled=True)


def test_empty_and_missing_class_errors(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_dataset(tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no dataset found"):
        load_dataset(empty)
    only_zero = tmp_path / "z"
    (only_zero / "happy").mkdir(parents=True)
    (only_zero / "happy" / "a.png").write_bytes(b"")
    with pytest.raises(DataError, match="no usable face.*zero-byte"):
        load_dataset(only_zero)
    root = tmp_path / "two"
    _png(root / "happy" / "a.png")
    _png(root / "sad" / "b.png")
    ds = load_dataset(root)
    with pytest.raises(DataError, match="neutral"):
        ds.require(all_classes=True)
    with pytest.raises(DataError, match="format"):
        load_dataset(root, "coco")


def test_training_input_equals_runtime_input(tmp_path):
    """FaceDataset.arrays and preprocess(crop_face(...)) on the same image agree to 1e-6."""
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    policy = CropPolicy()
    crop = crop_face(frame, (50, 30, 48, 52), policy)
    root = tmp_path / "p"
    (root / "happy").mkdir(parents=True)
    cv2.imwrite(str(root / "happy" / "a.png"), crop)
    for spec in (SPEC, PreprocessSpec(size=64, colour="rgb", mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3))):
        x, _ = load_dataset(root).arrays(spec)
        runtime = preprocess(crop_face(frame, (50, 30, 48, 52), policy), spec)
        assert float(np.abs(x[0] - runtime).max()) <= 1e-6
