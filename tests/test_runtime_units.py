"""Tracker, smoother, frame queue and frame checks against small obvious references."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from fer_edge.runtime.capture import FrameQueue, resolve_drop_policy
from fer_edge.runtime.detect import Detection
from fer_edge.runtime.errors import ConfigError
from fer_edge.runtime.pipeline import check_frame
from fer_edge.runtime.smooth import Smoother
from fer_edge.runtime.track import IoUTracker, iou


def test_iou_reference_values():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (10, 0, 10, 10)) == 0.0
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 0, 10), (0, 0, 10, 10)) == 0.0


def test_tracker_keeps_ids_and_creates_new_ones():
    tr = IoUTracker(iou_threshold=0.3, max_age=10)
    a, b = Detection((0, 0, 50, 50)), Detection((200, 0, 50, 50))
    t = tr.update([a, b], 0)
    ids = {x.bbox[0]: x.track_id for x in t}
    assert sorted(ids.values()) == [1, 2]
    # both move a little; order of detections swapped: ids follow the boxes, not the order
    t = tr.update([Detection((205, 2, 50, 50)), Detection((4, 3, 50, 50))], 5)
    got = {x.bbox[0]: x.track_id for x in t}
    assert got == {4: ids[0], 205: ids[200]}
    # a far-away detection is a new person with a new id, never a reused one
    t = tr.update([Detection((400, 300, 50, 50))], 10)
    assert {x.track_id for x in t} == {1, 2, 3}
    # unmatched tracks expire after max_age frames without a matched detection
    assert {x.track_id for x in tr.expire(15)} == {1, 2, 3}
    assert {x.track_id for x in tr.expire(16)} == {3}


def test_tracker_greedy_best_pair_first():
    tr = IoUTracker(iou_threshold=0.1)
    tr.update([Detection((0, 0, 100, 100))], 0)
    # two candidates overlap the track; the better-overlapping one inherits id 1
    t = tr.update([Detection((60, 0, 100, 100)), Detection((10, 0, 100, 100))], 1)
    by_id = {x.track_id: x.bbox for x in t}
    assert by_id[1] == (10, 0, 100, 100) and by_id[2] == (60, 0, 100, 100)


def _ema_reference(seq, alpha):
    s = np.asarray(seq[0], dtype=np.float64)
    out = [s.copy()]
    for p in seq[1:]:
        s = alpha * np.asarray(p) + (1 - alpha) * s
        out.append(s.copy())
    return out


def test_smoother_ema_matches_reference():
    rng = np.random.default_rng(0)
    seq = [rng.dirichlet(np.ones(7)) for _ in range(20)]
    sm = Smoother(alpha=0.3, margin=0.0, frames=1)
    got = [sm.update(1, p)[0] for p in seq]
    for g, r in zip(got, _ema_reference(seq, 0.3)):
        np.testing.assert_allclose(g, r, atol=1e-6)


def test_hysteresis_needs_margin_for_k_frames():
    a, b = np.array([0.9, 0.1]), np.array([0.1, 0.9])
    sm = Smoother(alpha=1.0, margin=0.2, frames=3)  # alpha 1: no EMA, hysteresis only
    assert sm.update(7, a)[1] == 0
    # one- and two-frame spikes of class 1 do not change the label
    assert [sm.update(7, p)[1] for p in (b, a, b, b, a)] == [0, 0, 0, 0, 0]
    # three frames in a row do
    assert [sm.update(7, p)[1] for p in (b, b, b)] == [0, 0, 1]
    # a lead below the margin never switches
    near = np.array([0.55, 0.45])
    assert all(sm.update(7, near)[1] == 1 for _ in range(10))


def test_smoother_tracks_are_independent_and_pruned():
    sm = Smoother(alpha=0.5, margin=0.1, frames=2)
    sm.update(1, np.array([1.0, 0.0]))
    sm.update(2, np.array([0.0, 1.0]))
    assert sm.update(1, np.array([1.0, 0.0]))[1] == 0 and sm.update(2, np.array([0.0, 1.0]))[1] == 1
    sm.prune([2])
    assert len(sm) == 1
    with pytest.raises(ValueError):
        Smoother(alpha=0.0)


def test_queue_drop_oldest_keeps_newest():
    q = FrameQueue(3, drop_oldest=True)
    for i in range(10):
        q.put(i)
    assert [q.get(0.1) for _ in range(3)] == [7, 8, 9] and q.dropped == 7
    with pytest.raises(TimeoutError):
        q.get(0.01)


def test_queue_block_waits_for_consumer():
    q = FrameQueue(2, drop_oldest=False)
    done = []

    def producer():
        for i in range(6):
            q.put(i)
        done.append(True)

    th = threading.Thread(target=producer, daemon=True)
    th.start()
    time.sleep(0.1)
    assert not done and len(q) == 2  # producer is blocked on a full queue
    got = [q.get(1.0) for _ in range(6)]
    th.join(1.0)
    assert got == list(range(6)) and done and q.dropped == 0


def test_drop_policy_resolution():
    assert resolve_drop_policy("auto", live=True) is True
    assert resolve_drop_policy("auto", live=False) is False
    assert resolve_drop_policy("block", live=True) is False
    assert resolve_drop_policy("drop_oldest", live=False) is True
    with pytest.raises(ConfigError):
        resolve_drop_policy("newest", live=True)


@pytest.mark.parametrize("image,kind", [
    (None, "none_frame"),
    ("not an image", "bad_type"),
    (np.zeros((0, 640, 3), np.uint8), "empty_frame"),
    (np.zeros((48, 64, 3), np.float32), "bad_dtype"),
    (np.zeros((48, 64, 2), np.uint8), "bad_shape"),
    (np.zeros((48, 64, 3, 1), np.uint8), "bad_shape"),
    (np.zeros((8, 640, 3), np.uint8), "bad_shape"),
])
def test_check_frame_names_each_bad_kind(image, kind):
    assert check_frame(image) == (None, kind)


def test_check_frame_accepts_gray_bgr_bgra():
    for shape in ((48, 64), (48, 64, 1), (48, 64, 3), (48, 64, 4)):
        img, fault = check_frame(np.zeros(shape, np.uint8))
        assert fault is None and img.ndim in (2, 3) and (img.ndim == 2 or img.shape[2] == 3)


def test_a_superscript_digit_is_not_a_camera_index():
    from fer_edge.runtime.sources import describe_source

    assert describe_source("0") == "camera"
    assert describe_source("\u00b9") != "camera"  # "¹".isdigit() is True but int("¹") raises


def test_greedy_iou_match_against_an_exhaustive_reference():
    """Best pair first, one-to-one, threshold inclusive — checked against a brute-force rerun of the rule."""
    from fer_edge.runtime.track import greedy_iou_match, iou

    a = [(0, 0, 10, 10), (5, 0, 10, 10), (40, 40, 10, 10)]
    b = [(1, 0, 10, 10), (6, 0, 10, 10), (100, 100, 5, 5)]
    got = greedy_iou_match(a, b, 0.5)
    left_a, left_b, ref = set(range(3)), set(range(3)), []
    while True:
        cands = [(iou(a[i], b[j]), i, j) for i in left_a for j in left_b if iou(a[i], b[j]) >= 0.5]
        if not cands:
            break
        s, i, j = max(cands)
        ref.append((i, j, s))
        left_a.discard(i)
        left_b.discard(j)
    assert got == ref and [(i, j) for i, j, _ in got] == [(1, 1), (0, 0)]


def test_clahe_gives_the_same_crop_on_concurrent_threads():
    """CLAHE is on in the default contract; cv2's CLAHE object keeps buffers, so a shared one mixed up crops
    cut on two threads at once (seen: 41 wrong of 1200). Each thread must get its own."""
    from fer_edge.runtime.crop import apply_clahe

    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 255, (96, 96), dtype=np.uint8) for _ in range(8)]
    ref = [apply_clahe(i) for i in imgs]
    wrong = []

    def work(k: int) -> None:
        for n in range(300):
            j = (k + n) % len(imgs)
            if not np.array_equal(apply_clahe(imgs[j]), ref[j]):
                wrong.append(j)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not wrong
    colour = np.dstack([imgs[0], imgs[1], imgs[2]])
    assert apply_clahe(colour).shape == colour.shape
