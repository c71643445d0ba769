"""``data faces`` / footage: runtime-identical crops, layouts, reports, bad input, cache, alignment fallback."""
from __future__ import annotations

import argparse
import csv
import json
import shutil
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_edge.data.dataset import read_image
from fer_edge.data.faces import cache as faces_cache
from fer_edge.data.faces import cache_key, content_hash, extract_faces, footage_dataset
from fer_edge.data.faces import extract as faces_extract
from fer_edge.data.faces.detect_frame import match_truth
from fer_edge.runtime.contract import Contract, PreprocessSpec, preprocess
from fer_edge.runtime.crop import CropPolicy, crop_face
from fer_edge.runtime.detect import Detection, make_detector
from fer_edge.runtime.errors import ConfigError, DataError

POLICY = CropPolicy(min_face=24, margin=0.2, square=True)


@pytest.fixture(scope="session")
def scenes(tmp_path_factory):
    """Six synthetic cabin-nir 640×480 frames with frames.jsonl truth (frames 0 and 1 hold Haar-visible faces)."""
    from fer_edge.data.synth import generate

    return generate("cabin-nir", "scenes", tmp_path_factory.mktemp("scenes") / "cabin", 6, seed=0, workers=1)


class FixedDetector:
    """Always the same boxes, so layout/label/report tests do not depend on Haar."""

    name = "fixed"
    has_landmarks = False

    def __init__(self, boxes):
        self.boxes = boxes

    def detect(self, frame):
        if frame.ndim == 2 and frame.max() == 0:  # an all-black frame has no face
            return []
        return [Detection(b, 0.9) for b in self.boxes]


@pytest.fixture
def fixed(monkeypatch):
    boxes = [(20, 20, 60, 60), (100, 30, 40, 40)]
    monkeypatch.setattr(faces_extract, "make_detector", lambda policy, detect_width=640: FixedDetector(boxes))
    return boxes


def _gray(seed: int, h: int = 120, w: int = 160) -> np.ndarray:
    return np.random.default_rng(seed).integers(30, 220, (h, w), dtype=np.uint8)


def _write(path: Path, img: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)
    return path


def _rows(out: Path):
    with open(out / "faces.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_data_faces_crop_is_byte_identical_to_the_runtime_crop(scenes, tmp_path, monkeypatch):
    from fer_edge.runtime import pipeline as rt
    from fer_edge.runtime.sources import Frame

    frames = tmp_path / "frames"
    frame = read_image(scenes / "images/frame_000000.png")
    _write(frames / "f0.png", frame)
    extract_faces(frames, tmp_path / "out", POLICY, workers=1, progress=False)
    row = _rows(tmp_path / "out")[0]
    ours = read_image(tmp_path / "out" / row["crop"])

    seen = []

    def recording_crop(*a, **kw):
        seen.append(crop_face(*a, **kw))
        return seen[-1]

    class Backend:
        contract = Contract(preprocess=PreprocessSpec(size=32, colour="gray", mean=(0.5,), std=(0.25,)),
                            crop=POLICY.to_dict())

        def infer(self, batch):
            return np.full((len(batch), 7), 1 / 7, np.float32)

        def info(self):
            return {"sha256": "x"}

    monkeypatch.setattr(rt, "crop_face", recording_crop)
    pipe = rt.Pipeline(Backend(), POLICY, make_detector(POLICY))
    res = pipe.process(Frame(0, frame, 0.0))
    assert len(res.faces) == 1 and tuple(res.faces[0].bbox) == tuple(int(row[k]) for k in "xywh")
    assert seen[0].dtype == ours.dtype and seen[0].shape == ours.shape
    assert seen[0].tobytes() == ours.tobytes()


def test_scene_truth_gives_labels_recall_and_a_synth_layout(scenes, tmp_path):
    out = tmp_path / "out"
    ext = extract_faces(scenes, out, CropPolicy(min_face=24, select="all"), workers=2, progress=False)
    s = json.loads((out / "summary.json").read_text())
    assert s["layout"] == "truth" and s["frames"] == 6 and s["faces"] == ext.faces >= 2
    truth = [json.loads(line) for line in (scenes / "frames.jsonl").read_text().splitlines()]
    assert s["recall_all"]["true_faces"] == sum(len(t["faces"]) for t in truth)
    frontal = sum(abs(f["yaw"]) <= 30 for t in truth for f in t["faces"])
    assert s["recall_frontal"]["true_faces"] == frontal
    assert 0 < s["recall_all"]["found"] <= s["recall_all"]["true_faces"]
    labelled = [r for r in _rows(out) if r["label"]]
    assert labelled and all(float(r["truth_iou"]) >= 0.5 for r in labelled)
    ds = footage_dataset(scenes, CropPolicy(min_face=24, select="all"), ("neutral", "happiness", "sadness",
                         "surprise", "fear", "disgust", "anger"), cache_root=tmp_path / "cache", workers=1,
                         progress=False)
    assert len(ds) == len(labelled) and ds.labelled
    assert (out / "contact_sheet.png").is_file()
    # workers=1 writes the very same rows and crop bytes as 2 workers
    extract_faces(scenes, tmp_path / "one", CropPolicy(min_face=24, select="all"), workers=1, progress=False)
    assert _rows(tmp_path / "one") == _rows(out)
    for r in _rows(out):
        assert (out / r["crop"]).read_bytes() == (tmp_path / "one" / r["crop"]).read_bytes()


def test_match_truth_is_greedy_best_iou_at_half():
    dets = [Detection((0, 0, 10, 10)), Detection((100, 100, 10, 10)), Detection((1, 0, 10, 10))]
    truth = [{"bbox": [0, 0, 10, 10]}, {"bbox": [50, 50, 10, 10]}]
    assert match_truth(dets, truth) == {0: (0, 1.0)}  # det 2 overlaps 0.82 but truth 0 is taken


def test_class_folders_label_only_the_largest_face(fixed, tmp_path):
    src = tmp_path / "frames"
    _write(src / "happy" / "a.png", _gray(1))
    _write(src / "sad" / "b.png", _gray(2))
    ext = extract_faces(src, tmp_path / "out", CropPolicy(min_face=24, select="all"), workers=1, progress=False)
    assert ext.layout == "classes"
    rows = _rows(tmp_path / "out")
    assert [(r["source"], r["face"], r["label"]) for r in rows] == [
        ("happy/a.png", "0", "happiness"), ("happy/a.png", "1", ""), ("sad/b.png", "0", "sadness"),
        ("sad/b.png", "1", "")]
    assert rows[0]["crop"] == "faces/happiness/happy__a_f0.png" and rows[1]["crop"].startswith("faces/unlabelled/")
    assert [r["w"] for r in rows[:2]] == ["60", "40"] and rows[0]["score"] == "0.9"
    img = read_image(tmp_path / "out" / rows[0]["crop"])
    assert img.ndim == 2 and img.tobytes() == crop_face(_gray(1), fixed[0], POLICY).tobytes()
    ds = footage_dataset(src, CropPolicy(min_face=24, select="all"), ("neutral", "happiness", "sadness"),
                         cache_root=tmp_path / "cache", workers=1, progress=False)
    assert sorted(ds.labels[r.label] for r in ds.records) == ["happiness", "sadness"]


def test_no_face_frames_are_listed_unreadable_frames_named_and_the_run_goes_on(fixed, tmp_path):
    src = tmp_path / "frames"
    _write(src / "a.png", _gray(1))
    _write(src / "dark.png", np.zeros((120, 160), np.uint8))
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (src / "notes.doc").write_bytes(b"x")
    extract_faces(src, tmp_path / "out", POLICY, workers=1, progress=False)
    out = tmp_path / "out"
    s = json.loads((out / "summary.json").read_text())
    assert (s["faces"], s["frames_no_face"], s["frames_unreadable"]) == (1, 1, 2)
    assert (out / "no_face.txt").read_text() == "dark.png\n"
    skipped = (out / "skipped.txt").read_text()
    assert "broken.png — unreadable frame" in skipped and "notes.doc — not an image file" in skipped
    assert ext_layout(out) == "flat" and (out / "faces" / "a_f0.png").is_file()


def ext_layout(out: Path) -> str:
    return json.loads((out / "summary.json").read_text())["layout"]


def test_no_face_anywhere_is_an_error_that_suggests_what_to_change(tmp_path):
    src = tmp_path / "frames"
    for k in range(2):
        _write(src / f"{k}.png", np.full((120, 160), 90, np.uint8))
    with pytest.raises(DataError, match=r"no face found — all 2 readable frames.*smaller crop.min_face.*detector"):
        extract_faces(src, tmp_path / "out", POLICY, workers=1, progress=False)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.partial*"))


def test_unreadable_video_and_empty_inputs_are_named(tmp_path):
    bad = tmp_path / "cam.mp4"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(DataError, match="cam.mp4"):
        extract_faces(bad, tmp_path / "o1", POLICY, workers=1, progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no image frames"):
        extract_faces(tmp_path / "empty", tmp_path / "o2", POLICY, workers=1, progress=False)
    with pytest.raises(DataError, match="no such"):
        extract_faces(tmp_path / "missing", tmp_path / "o3", POLICY, workers=1, progress=False)
    src = tmp_path / "frames"
    (src).mkdir()
    (src / "x.png").write_bytes(b"garbage")
    with pytest.raises(DataError, match="no readable frame"):
        extract_faces(src, tmp_path / "o4", POLICY, workers=1, progress=False)
    other = tmp_path / "precious"
    other.mkdir()
    (other / "thesis.txt").write_text("x")
    _write(tmp_path / "ok" / "a.png", _gray(3))
    with pytest.raises(DataError, match="not an earlier"):
        extract_faces(tmp_path / "ok", other, POLICY, workers=1, progress=False)


def test_video_every_n_with_truth(tmp_path_factory, tmp_path):
    from fer_edge.data.synth import generate

    clip = generate("cabin-nir", "video", tmp_path_factory.mktemp("clip") / "v", 9, seed=0, workers=1)
    ext = extract_faces(clip, tmp_path / "out", POLICY, every=3, workers=1, progress=False)
    assert ext.footage.kind == "video" and [o.index for o in ext.outcomes] == [0, 3, 6]
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["recall_all"]["true_faces"] == 3 and s["frames"] == 3
    assert all(r["source"].startswith("video.") and "#" in r["source"] for r in _rows(tmp_path / "out"))
    video = next(clip.glob("video.*"))  # the file itself is a source too (data.target=clip.mp4)
    ds = footage_dataset(video, POLICY, ("neutral", "happiness", "sadness", "surprise", "fear", "disgust", "anger"),
                         cache_root=tmp_path / "cache", every=3, workers=1, progress=False)
    assert len(ds) == len([r for r in _rows(tmp_path / "out") if r["label"]]) and ds.labelled


def test_align_fallback_is_counted_and_the_crop_stays_unrotated(fixed, tmp_path):
    src = tmp_path / "frames"
    _write(src / "a.png", _gray(5))
    pol = CropPolicy(min_face=24, align=True)
    extract_faces(src, tmp_path / "out", pol, workers=1, progress=False)
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["counters"] == {"align_fallback": 1}
    crop = read_image(tmp_path / "out" / "faces" / "a_f0.png")
    assert crop.tobytes() == crop_face(_gray(5), fixed[0], pol, eyes=None).tobytes()


def test_cache_hits_by_content_and_policy(fixed, tmp_path, monkeypatch):
    src = tmp_path / "frames"
    _write(src / "a.png", _gray(1))
    labels = ("neutral", "happiness")
    footage_dataset(src, POLICY, labels, cache_root=tmp_path / "cache", workers=1, progress=False)
    calls = Counter()
    real = faces_cache.extract_faces

    def counting(*a, **kw):
        calls["extract"] += 1
        return real(*a, **kw)

    monkeypatch.setattr(faces_cache, "extract_faces", counting)
    renamed = tmp_path / "renamed"
    shutil.copytree(src, renamed)
    assert len(footage_dataset(renamed, POLICY, labels, cache_root=tmp_path / "cache", progress=False)) == 1
    assert calls["extract"] == 0  # same bytes, other folder name: cached
    h = content_hash(src)
    assert cache_key(h, POLICY) != cache_key(h, CropPolicy(min_face=24, margin=0.3))
    assert cache_key(h, POLICY) != cache_key(h, POLICY, every=2)
    _write(src / "a.png", _gray(9))
    assert content_hash(src) != h
    footage_dataset(src, POLICY, labels, cache_root=tmp_path / "cache", workers=1, progress=False)
    assert calls["extract"] == 1 and len(list((tmp_path / "cache").iterdir())) == 2


def test_cli_policy_overrides_go_through_the_config(tmp_path):
    from fer_edge.commands import data_faces

    p = argparse.ArgumentParser()
    data_faces.add_arguments(p)
    args = p.parse_args(["--in", "x", "--out", "y", "--policy", "min_face=30", "clahe=true", "--all-faces",
                         "--config", "ci"])
    pol = data_faces.policy_from_args(args)
    assert (pol.min_face, pol.clahe, pol.select, pol.margin) == (30, True, "all", 0.2)
    with pytest.raises(ConfigError, match="marginn"):
        data_faces.policy_from_args(p.parse_args(["--in", "x", "--out", "y", "--policy", "marginn=0.1"]))


def test_cli_run_prints_counts(fixed, tmp_path, capsys):
    from fer_edge.cli import main

    _write(tmp_path / "frames" / "a.png", _gray(1))
    rc = main(["data", "faces", "--in", str(tmp_path / "frames"), "--out", str(tmp_path / "out"), "--workers", "1",
               "--config", "ci"])
    assert rc == 0 and "faces: 1 from 1 of 1 frames" in capsys.readouterr().out
    rc = main(["data", "faces", "--in", str(tmp_path / "nothing"), "--out", str(tmp_path / "o2")])
    assert rc == 1 and "no such frames folder" in capsys.readouterr().err


def test_a_policy_the_model_does_not_match_is_refused_with_what_to_change():
    from fer_edge.runtime.pipeline import runtime_policy

    model = POLICY  # the contract's typed policy
    assert runtime_policy(model, {"min_face": 60}).min_face == 60  # detector side: allowed
    with pytest.raises(ConfigError, match=r"margin: model expects 0.2, got 0.3.*retrain"):
        runtime_policy(model, {"margin": 0.3})


def test_calibrate_detect_reads_the_shared_cache(scenes, tmp_path, monkeypatch):
    from fer_edge.calibration.images import load_images

    monkeypatch.setenv("FER_EDGE_FACES_CACHE", str(tmp_path / "cache"))
    frames = tmp_path / "frames"
    frames.mkdir()
    for k in (0, 1):
        shutil.copy(scenes / f"images/frame_00000{k}.png", frames / f"{k}.png")
    contract = Contract(preprocess=PreprocessSpec(size=32, colour="gray", mean=(0.5,), std=(0.25,)),
                        crop=POLICY.to_dict())
    first = load_images(frames, contract, num_images=4, min_images=1, detect=True)
    entries = list((tmp_path / "cache").iterdir())
    assert len(first) == 2 and len(entries) == 1
    monkeypatch.setattr(faces_cache, "extract_faces", lambda *a, **k: pytest.fail("detected twice"))
    again = load_images(frames, contract, num_images=4, min_images=1, detect=True)
    assert np.array_equal(first.x, again.x)
    crop = read_image(entries[0] / _rows(entries[0])[0]["crop"])
    assert np.array_equal(first.x[0], preprocess(crop, contract.preprocess))


def test_crops_cut_under_another_policy_are_refused_where_they_are_loaded(fixed, tmp_path):
    from fer_edge.config import load_config
    from fer_edge.data.faces import check_crop_folder
    from fer_edge.data.sources import load_split

    _write(tmp_path / "frames" / "a.png", _gray(1))
    extract_faces(tmp_path / "frames", tmp_path / "out", POLICY, workers=1, progress=False)
    faces = tmp_path / "out" / "faces"
    check_crop_folder(faces, POLICY)
    check_crop_folder(faces, CropPolicy(min_face=60, detector="haar"))  # where faces are, not their pixels
    check_crop_folder(tmp_path / "frames", CropPolicy(margin=0.4))  # not a data faces output: unknown, not checked
    with pytest.raises(ConfigError, match=r"margin: model expects 0.3, got 0.2.*--policy margin=0.3"):
        check_crop_folder(faces, CropPolicy(margin=0.3))
    cfg = load_config("ci", [f"data.target={faces}", "crop.square=false", f"data.root={tmp_path / 'data'}"])
    with pytest.raises(ConfigError, match="square"):
        load_split(cfg, "target")
    cfg = load_config("ci", [f"data.target={faces}", f"data.root={tmp_path / 'data'}"])
    assert len(load_split(cfg, "target")) == 1


def test_a_cache_entry_committed_by_another_process_is_kept(tmp_path):
    """Two training ranks extracting the same footage: the second commit keeps the first finished entry."""
    out = tmp_path / "entry"
    out.mkdir()
    (out / "summary.json").write_text("{}")
    tmp = tmp_path / ".entry.partial-1"
    tmp.mkdir()
    (tmp / "summary.json").write_text('{"late": 1}')
    faces_extract.commit_out(tmp, out, replace=False)
    assert (out / "summary.json").read_text() == "{}" and not tmp.exists()
    tmp.mkdir()
    (tmp / "summary.json").write_text('{"new": 1}')
    faces_extract.commit_out(tmp, out, replace=True)  # data faces --out: a re-run replaces the old output
    assert (out / "summary.json").read_text() == '{"new": 1}'
