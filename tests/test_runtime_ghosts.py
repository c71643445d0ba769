"""Tracks without ghosts: a face that walks out and comes back, ``select: largest``, a reused Pipeline.

The clip is the project's synthetic world with its true boxes (``runtime_fixtures.leave_and_return_clip``).
A reported box that no true face covers (``covered`` < 0.2 of its area) is a ghost: a box left on the
wall after the face moved, or carried from an earlier run.
"""
from __future__ import annotations

import numpy as np
import pytest
from runtime_fixtures import covered, leave_and_return_clip, make_onnx, synthetic_frames

from fer_edge.runtime.detect import Detection
from fer_edge.runtime.pipeline import Pipeline
from fer_edge.runtime.sources import Frame
from fer_edge.runtime.track import IoUTracker


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_onnx(tmp_path_factory.mktemp("ghost-model") / "model.onnx")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return leave_and_return_clip(tmp_path_factory.mktemp("ghost-clip"))


def _ghosts(results, truths):
    return [(i, f.bbox) for i, (r, t) in enumerate(zip(results, truths)) for f in r.faces if covered(f.bbox, t) < 0.2]


@pytest.mark.parametrize("select", ["largest", "all"])
def test_a_face_that_leaves_and_comes_back_leaves_no_ghost(model, clip, select):
    frames, truths = clip
    pipe = Pipeline.from_model(model, threads=1, detect_mode="sync", select=select)  # default: detect every 5
    results = list(pipe.run(frames))
    assert len(results) == len(frames)
    assert _ghosts(results, truths) == []
    if select == "largest":
        assert max(len(r.faces) for r in results) == 1  # never two faces, before or after tracking
    whole = [i for i, t in enumerate(truths) if t and t[0][2] >= 140]  # the face fully in view
    found = sum(1 for i in whole if results[i].faces)
    assert found >= 0.9 * len(whole), (found, len(whole))
    empty = [i for i, t in enumerate(truths) if not t]
    assert empty and all(not results[i].faces for i in empty)


def test_async_detection_leaves_no_ghost_either(model, clip):
    frames, truths = clip
    pipe = Pipeline.from_model(model, threads=1, detect_mode="async")
    results = []
    for i, f in enumerate(frames):
        results.append(pipe.process(Frame(i, f, i / 15.0)))
        if pipe._worker is not None and pipe._worker.busy:
            pipe._worker.wait()  # a detector as fast as the camera: deterministic
    pipe.close()
    assert _ghosts(results, truths) == []
    assert max(len(r.faces) for r in results) == 1


def test_a_reused_pipeline_returns_nothing_from_the_previous_run(model):
    pipe = Pipeline.from_model(model, threads=1, detect_mode="sync", detect_every=50)
    with_face = synthetic_frames(6, size=(320, 240), faces=((120, 120, 45),))
    first = list(pipe.run(with_face))
    assert all(len(r.faces) == 1 for r in first) and first[0].faces[0].track_id == 1
    empty = [np.full((240, 320, 3), 90, np.uint8)] * 4
    second = list(pipe.run(empty))
    assert [len(r.faces) for r in second] == [0, 0, 0, 0]  # no box carried over from the first run
    third = list(pipe.run(with_face[:2]))
    assert third[0].faces[0].track_id == 1 and pipe.stats.frames == 2  # ids and counts start again


def test_tracker_hides_an_unconfirmed_track_at_once_and_forgets_it_after_max_misses():
    tr = IoUTracker(iou_threshold=0.3, max_age=10, max_misses=1)
    tr.update([Detection((100, 100, 50, 50))], 0)
    tr.update([], 5)  # one detection pass without the face
    assert [t.track_id for t in tr.tracks] == [1] and tr.visible() == []
    tr.update([Detection((102, 101, 50, 50))], 10)  # back at the same place: same id, reported again
    assert [t.track_id for t in tr.visible()] == [1]
    tr.update([], 15)
    tr.update([], 20)  # a second miss in a row: gone
    assert tr.tracks == []


def test_a_new_detection_over_a_hidden_track_replaces_it():
    tr = IoUTracker(iou_threshold=0.3, max_age=10, max_misses=3)
    tr.update([Detection((100, 100, 60, 60))], 0)
    tr.update([Detection((140, 100, 60, 60))], 5)  # moved too far to match (IoU 0.2): a new track over the old
    assert [t.track_id for t in tr.tracks] == [2]


def test_appearance_similarity_drops_when_the_face_leaves_its_box():
    from fer_edge.runtime.track import appearance, similarity

    face = synthetic_frames(1, size=(320, 240), faces=((120, 120, 45),))[0]
    moved = synthetic_frames(1, size=(320, 240), faces=((124, 121, 45),))[0]
    gone = np.full_like(face, 90)
    gone[::7] = 140  # a textured wall
    box = (80, 70, 80, 100)
    ref = appearance(face, box)
    assert similarity(ref, appearance(moved, box)) > 0.8
    assert similarity(ref, appearance(gone, box)) < 0.5
    assert appearance(face, (400, 400, 30, 30)) is None and similarity(ref, None) == 0.0


def test_follow_moves_the_box_onto_the_face_between_detections():
    from fer_edge.runtime.track import appearance, follow

    face = synthetic_frames(1, size=(320, 240), faces=((120, 120, 45),))[0]
    moved = synthetic_frames(1, size=(320, 240), faces=((138, 126, 45),))[0]  # 18 px right, 6 px down
    box = (84, 75, 72, 90)
    patch = appearance(face, box)
    new, score = follow(moved, box, patch)
    assert score > 0.8 and abs(new[0] - (box[0] + 18)) <= 6 and abs(new[1] - (box[1] + 6)) <= 6
    assert new[2:] == box[2:]  # the size is the next detection's job
    wall = np.full_like(face, 90)
    wall[::7] = 140
    _, score = follow(wall, box, patch)
    assert score < 0.5
    assert follow(face, box, None) == (None, 0.0)
