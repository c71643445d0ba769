"""An IoU tracker: face identities that persist between detections.

The detector runs every N frames (it is the most expensive stage on a CPU); between detections the
tracker carries each face's last box so every frame is still classified, and the track id lets the
smoother average one person's predictions over time. Greedy matching by IoU is enough for the one
to few faces of a cabin or kiosk camera and has no dependency.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from .detect import Detection, Point


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x, y, w, h) boxes (0 when either is empty)."""
    ax0, ay0, aw, ah = (float(v) for v in a[:4])
    bx0, by0, bw, bh = (float(v) for v in b[:4])
    if aw <= 0 or ah <= 0 or bw <= 0 or bh <= 0:
        return 0.0
    iw = min(ax0 + aw, bx0 + bw) - max(ax0, bx0)
    ih = min(ay0 + ah, by0 + bh) - max(ay0, by0)
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / (aw * ah + bw * bh - inter)


def greedy_iou_match(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]],
                     threshold: float) -> List[Tuple[int, int, float]]:
    """Greedy one-to-one matching of boxes ``a`` to boxes ``b``, best IoU first, pairs with IoU >= ``threshold``.

    Returns ``(index in a, index in b, iou)``. Shared by the tracker, ground-truth matching in ``data faces``
    and the recall benchmarks, so every count of "found faces" means the same thing.
    """
    pairs = sorted(((iou(x, y), i, j) for i, x in enumerate(a) for j, y in enumerate(b)), reverse=True)
    used_a, used_b, out = set(), set(), []
    for score, i, j in pairs:
        if score < threshold:
            break
        if i in used_a or j in used_b:
            continue
        used_a.add(i)
        used_b.add(j)
        out.append((i, j, score))
    return out


@dataclass
class Track:
    """One face over time. ``last_seen`` is the frame of the last matched detection."""

    track_id: int
    bbox: Tuple[int, int, int, int]
    score: float
    eyes: Optional[Tuple[Point, Point]]
    first_seen: int
    last_seen: int
    hits: int = 1

    def as_detection(self) -> Detection:
        return Detection(self.bbox, self.score, self.eyes)


class IoUTracker:
    """Match detections to tracks by IoU ≥ ``iou_threshold`` (greedy, best pairs first).

    An unmatched detection starts a new track (ids increase, never reused); a track unmatched for more
    than ``max_age`` frames is dropped. Between detections :attr:`tracks` keeps the last boxes.
    """

    def __init__(self, iou_threshold: float = 0.3, max_age: int = 10):
        self.iou_threshold = float(iou_threshold)
        self.max_age = int(max_age)
        self.tracks: List[Track] = []
        self._next_id = 1

    def reset(self) -> None:
        """Forget all tracks (frame size changed, source reconnected); ids keep increasing."""
        self.tracks = []

    def update(self, detections: Sequence[Detection], frame_index: int) -> List[Track]:
        """Fold one frame's detections in; returns the live tracks (matched ones carry the new box)."""
        used_d = set()
        for ti, di, _ in greedy_iou_match([t.bbox for t in self.tracks], [d.bbox for d in detections],
                                          self.iou_threshold):
            used_d.add(di)
            t, d = self.tracks[ti], detections[di]
            t.bbox, t.score, t.eyes, t.last_seen = tuple(int(v) for v in d.bbox), d.score, d.eyes, frame_index
            t.hits += 1
        for di, d in enumerate(detections):
            if di not in used_d:
                self.tracks.append(Track(self._next_id, tuple(int(v) for v in d.bbox), d.score, d.eyes,
                                         frame_index, frame_index))
                self._next_id += 1
        self.tracks = [t for t in self.tracks if frame_index - t.last_seen <= self.max_age]
        return list(self.tracks)

    def expire(self, frame_index: int) -> List[Track]:
        """Drop tracks older than ``max_age`` on a frame without detection; returns the live ones."""
        self.tracks = [t for t in self.tracks if frame_index - t.last_seen <= self.max_age]
        return list(self.tracks)
