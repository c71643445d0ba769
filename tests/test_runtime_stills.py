"""Folders of stills are not a video: every image is its own frame, names its file, and carries nothing over.

Also the Python API as the README shows it (``from fer_edge import Pipeline``, ``run([paths])``,
``process(ndarray)``) and one rule for what a frames folder is (recursive, as ``data faces`` reads it).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from runtime_fixtures import make_onnx, synthetic_frames

from fer_edge.runtime.pipeline import Pipeline

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_onnx(tmp_path_factory.mktemp("stills-model") / "model.onnx")


def _still(cx: int, r: int = 45) -> np.ndarray:
    return synthetic_frames(1, size=(320, 240), faces=((cx, 120, r),), drift=0)[0]


@pytest.fixture
def photos(tmp_path):
    """Unrelated photos, one of them without a face, one in a class sub-folder, plus files to skip."""
    d = tmp_path / "photos"
    (d / "happy").mkdir(parents=True)
    (d / ".thumbs").mkdir()
    cv2.imwrite(str(d / "a.png"), _still(100))
    cv2.imwrite(str(d / "b.png"), np.full((240, 320, 3), 90, np.uint8))  # nobody in this one
    cv2.imwrite(str(d / "c.jpg"), _still(220, 40))
    cv2.imwrite(str(d / "happy" / "d.png"), _still(160, 50))
    cv2.imwrite(str(d / ".thumbs" / "a.png"), _still(100))
    (d / "notes.txt").write_text("not an image")
    return d


def _pipe(model, **kw):
    kw.setdefault("threads", 1)
    return Pipeline.from_model(model, **kw)


def test_a_folder_of_stills_gives_one_result_per_image_each_from_its_own_detection(model, photos):
    pipe = _pipe(model, detect_every=5)  # a video setting: it must not apply across unrelated photos
    results = list(pipe.run(str(photos)))
    names = [Path(r.path).relative_to(photos).as_posix() for r in results]
    assert names == ["a.png", "b.png", "c.jpg", "happy/d.png"]  # recursive, hidden folders skipped
    assert all(r.detected for r in results) and all(r.source == str(photos) for r in results)
    assert [len(r.faces) for r in results] == [1, 0, 1, 1]  # b.png gets no box carried from a.png
    for r in results:
        for f in r.faces:
            assert f.track_id == 1 and f.probs_smoothed == pytest.approx(f.probs)  # nothing smoothed across
            assert f.label_smoothed == f.label
    assert results[0].faces[0].bbox != results[2].faces[0].bbox
    assert pipe.summary()["stills"] is True


def test_a_folder_declared_a_sequence_is_tracked_and_smoothed(model, tmp_path):
    d = tmp_path / "frames"
    d.mkdir()
    for i, f in enumerate(synthetic_frames(12, size=(320, 240), faces=((120, 120, 45),))):
        cv2.imwrite(str(d / f"frame_{i:04d}.png"), f)
    results = list(_pipe(model, detect_every=5).run(str(d), sequence=True))
    assert [r.detected for r in results[:6]] == [True, False, False, False, False, True]
    assert len({f.track_id for r in results for f in r.faces}) == 1
    assert any(f.probs_smoothed != pytest.approx(f.probs) for r in results[1:] for f in r.faces)
    assert results[3].path.endswith("frame_0003.png")


def test_a_list_of_paths_and_a_single_image_are_read(model, photos):
    pipe = _pipe(model)
    results = list(pipe.run([str(photos / "a.png"), photos / "c.jpg"]))
    assert [r.fault for r in results] == [None, None] and [len(r.faces) for r in results] == [1, 1]
    assert results[1].path == str(photos / "c.jpg")
    one = list(pipe.run(str(photos / "happy" / "d.png")))
    assert len(one) == 1 and len(one[0].faces) == 1 and one[0].path.endswith("d.png")


def test_process_takes_an_image_array_or_a_path(model, photos):
    pipe = _pipe(model, detect_every=1)
    r = pipe.process(_still(100))
    assert r.fault is None and len(r.faces) == 1 and r.frame == 0
    r = pipe.process(str(photos / "c.jpg"))
    assert r.fault is None and len(r.faces) == 1 and r.path.endswith("c.jpg") and r.frame == 1


def test_the_readme_import_works_without_loading_torch():
    code = ("import sys\nfrom fer_edge import Pipeline\n"
            "assert Pipeline.__name__ == 'Pipeline' and hasattr(Pipeline, 'from_model')\n"
            "sys.exit(1 if 'torch' in sys.modules else 0)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_one_rule_for_a_frames_folder_shared_with_data_faces(photos):
    from fer_edge.data.faces.frames import open_footage
    from fer_edge.runtime.sources import list_images

    (photos / "happy" / "deeper").mkdir()
    cv2.imwrite(str(photos / "happy" / "deeper" / "e.bmp"), _still(100))
    ours = [p.relative_to(photos).as_posix() for p in list_images(photos)]
    theirs = [r.name for r in open_footage(photos).refs]
    assert ours == theirs and "happy/deeper/e.bmp" in ours and not any(".thumbs" in n for n in ours)


def _cli(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "fer_edge.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def test_cli_names_every_result_and_saves_annotated_stills(model, photos, tmp_path):
    out, saved = tmp_path / "r.jsonl", tmp_path / "annotated"
    p = _cli("run", "--model", model, "--source", photos, "--out", out, "--save-dir", saved, "--threads", "1",
             "--no-progress")
    assert p.returncode == 0, p.stderr
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [Path(x["path"]).name for x in lines] == ["a.png", "b.png", "c.jpg", "d.png"]
    assert all(x["schema"] == "fer-edge.runtime/2" and x["source"] == str(photos) for x in lines)
    written = sorted(q.name for q in saved.iterdir())
    assert written == ["000000_a.jpg", "000001_b.jpg", "000002_c.jpg", "000003_d.jpg"]
    img = cv2.imread(str(saved / "000000_a.jpg"))
    assert img.shape == (240, 320, 3) and not np.array_equal(img, _still(100))  # the box is drawn on it


def test_video_results_carry_source_frame_and_timestamp(model, tmp_path):
    from runtime_fixtures import write_video

    video = write_video(tmp_path / "clip.avi", synthetic_frames(8, size=(320, 240), faces=((120, 120, 45),)))
    results = list(_pipe(model).run(str(video)))
    lines = [r.to_dict() for r in results]
    assert [x["frame"] for x in lines] == list(range(8)) and all(x["path"] is None for x in lines)
    assert all(x["source"] == str(video) for x in lines)
    assert lines[-1]["timestamp"] >= lines[0]["timestamp"]
