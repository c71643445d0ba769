"""Face detection and the frame → crops path shared by the runtime and data preparation."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from runtime_fixtures import draw_face, synthetic_frames

from fer_edge.runtime.crop import CropPolicy, crop_face
from fer_edge.runtime.detect import (
    Detection,
    HaarDetector,
    HaarEyeFinder,
    detect_and_crop,
    eyes_for,
    make_detector,
    select_faces,
)
from fer_edge.runtime.errors import ConfigError, ModelError


def _two_faces():
    img = np.full((240, 400, 3), 90, np.uint8)
    draw_face(img, 100, 120, 60)
    draw_face(img, 300, 120, 30)
    return img


def test_haar_finds_the_face_and_scales_boxes_back():
    frame = synthetic_frames(1, size=(640, 480), faces=((300, 240, 60),))[0]
    full = HaarDetector(min_face=40, detect_width=0).detect(frame)
    small = HaarDetector(min_face=40, detect_width=320).detect(frame)
    assert len(full) == 1 and len(small) == 1
    x, y, w, h = small[0].bbox
    assert abs(x + w / 2 - 300) < 15 and abs(y + h / 2 - 240) < 20 and 0 < small[0].score < 1
    # downscaled detection lands (after scaling back) on the full-resolution box
    fx, fy, fw, fh = full[0].bbox
    assert abs(fx - x) < 10 and abs(fw - w) < 15


def test_haar_on_gray_and_empty_frames():
    frame = synthetic_frames(1, faces=((160, 120, 50),))[0]
    gray = frame[:, :, 1].copy()
    assert len(HaarDetector(min_face=24).detect(gray)) == 1
    assert HaarDetector(min_face=24).detect(np.full((240, 320), 90, np.uint8)) == []


def test_select_largest_or_all():
    dets = [Detection((0, 0, 40, 40)), Detection((100, 0, 80, 80)), Detection((200, 0, 60, 60))]
    assert [d.bbox[2] for d in select_faces(dets, CropPolicy(select="largest"))] == [80]
    assert [d.bbox[2] for d in select_faces(dets, CropPolicy(select="all"))] == [80, 60, 40]


def test_detect_and_crop_uses_the_one_crop_function():
    img = _two_faces()
    policy = CropPolicy(min_face=24, select="all", margin=0.1)
    det = make_detector(policy)
    out = detect_and_crop(img, det, policy)
    assert len(out) == 2 and out[0][0].area > out[1][0].area
    for d, crop in out:
        np.testing.assert_array_equal(crop, crop_face(img, d.bbox, policy))
    largest = detect_and_crop(img, det, CropPolicy(min_face=24, select="largest", margin=0.1))
    assert len(largest) == 1 and largest[0][0].bbox == out[0][0].bbox


def test_min_face_filters_small_faces():
    img = _two_faces()
    small = CropPolicy(min_face=24, select="all")
    assert sorted(d.bbox[2] for d, _ in detect_and_crop(img, make_detector(small), small))[0] < 90
    policy = CropPolicy(min_face=100, select="all")
    assert [d.bbox[2] >= 100 for d, _ in detect_and_crop(img, make_detector(policy), policy)] == [True]


class _FixedDetector:
    name, has_landmarks = "fixed", False

    def __init__(self, dets):
        self.dets = dets

    def detect(self, frame):
        return list(self.dets)


def test_off_image_box_is_counted_not_raised():
    img = np.full((100, 100, 3), 90, np.uint8)
    policy = CropPolicy(min_face=10, select="all")
    counters = Counter()
    out = detect_and_crop(img, _FixedDetector([Detection((500, 500, 40, 40)), Detection((10, 10, 40, 40))]),
                          policy, counters)
    assert len(out) == 1 and counters["bad_crop"] == 1


def test_align_falls_back_and_counts_when_no_eyes():
    blank = np.full((200, 200, 3), 120, np.uint8)  # a "face" box with nothing in it: no eyes
    policy = CropPolicy(min_face=20, align=True)
    counters = Counter()
    out = detect_and_crop(blank, _FixedDetector([Detection((50, 50, 100, 100))]), policy, counters)
    assert len(out) == 1 and out[0][0].eyes is None and counters["align_fallback"] == 1
    # the fallback crop is the unrotated one
    np.testing.assert_array_equal(out[0][1], crop_face(blank, (50, 50, 100, 100), CropPolicy(min_face=20)))


def test_align_uses_detector_landmarks_and_rotates():
    img = np.full((200, 200, 3), 120, np.uint8)
    img[80:90, 60:140] = 0  # a stripe, so rotation visibly changes the crop
    eyes = ((70.0, 80.0), (130.0, 100.0))  # tilted by ~18 degrees
    det = Detection((50, 50, 100, 100), 0.9, eyes)
    policy = CropPolicy(min_face=20, align=True)
    assert eyes_for(img, det, policy) == eyes
    out = detect_and_crop(img, _FixedDetector([det]), policy, Counter())
    assert out[0][0].eyes == eyes
    assert not np.array_equal(out[0][1], crop_face(img, det.bbox, CropPolicy(min_face=20)))


def test_eye_finder_returns_none_or_two_points_inside_the_box():
    img = synthetic_frames(1, faces=((160, 120, 60),))[0]
    eyes = HaarEyeFinder().find(img, (100, 60, 120, 120))
    assert eyes is None or (len(eyes) == 2 and all(100 <= x <= 220 and 60 <= y <= 180 for x, y in eyes))
    assert HaarEyeFinder().find(img, (0, 0, 5, 5)) is None


def test_yunet_needs_its_model_file(tmp_path):
    with pytest.raises(ConfigError):
        CropPolicy(detector="yunet")
    with pytest.raises(ModelError, match="not found"):
        make_detector(CropPolicy(detector="yunet", yunet_model=str(tmp_path / "missing.onnx")))
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage")
    with pytest.raises(ModelError):
        make_detector(CropPolicy(detector="yunet", yunet_model=str(bad)))


def test_detect_near_finds_only_faces_around_the_hint():
    from fer_edge.runtime.detect import detect_near

    img = _two_faces()
    det = HaarDetector(min_face=24)
    full = {d.bbox for d in det.detect(img)}
    big = max(full, key=lambda b: b[2])
    near = detect_near(det, img, [big])
    assert len(near) == 1
    (x, y, w, h), (bx, by, bw, bh) = near[0].bbox, big
    assert abs(h - bh) <= 16
    assert abs(x - bx) <= 8 and abs(y - by) <= 8 and abs(w - bw) <= 16  # frame coordinates, not window ones
    assert detect_near(det, img, [(5, 5, 10, 10)]) == []  # window too small / nothing there
