"""An IoU tracker: face identities that persist between detections.

The detector runs every N frames (it is the most expensive stage on a CPU); between detections the
tracker carries each face's last box so every frame is still classified, and the track id lets the
smoother average one person's predictions over time. Greedy matching by IoU is enough for the one
to few faces of a cabin or kiosk camera and has no dependency.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

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


#: Side of the grey patch a track remembers of its face (see :func:`appearance`).
PATCH = 16


def appearance(image: np.ndarray, bbox: Sequence[int]) -> Optional[np.ndarray]:
    """A zero-mean, unit-norm ``PATCH``×``PATCH`` grey thumbnail of ``bbox`` (``None`` when it is off the frame).

    Normalised correlation of two of these is insensitive to exposure changes and a few pixels of motion
    but drops when the face has gone from the box (a wall, a chin, the next photo). It costs one small
    resize per tracked face per frame.
    """
    h, w = image.shape[:2]
    x, y, bw, bh = (int(v) for v in bbox[:4])
    x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + bw), min(h, y + bh)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    roi = image[y0:y1, x0:x1]
    if roi.ndim == 3:
        roi = cv2.cvtColor(roi, cv2.COLOR_BGR2GRAY if roi.shape[2] == 3 else cv2.COLOR_BGRA2GRAY)
    patch = cv2.resize(roi, (PATCH, PATCH), interpolation=cv2.INTER_AREA).astype(np.float32)
    patch -= patch.mean()
    norm = float(np.linalg.norm(patch))
    return patch / norm if norm > 1e-3 else patch


def similarity(a: Optional[np.ndarray], b: Optional[np.ndarray]) -> float:
    """Normalised correlation of two :func:`appearance` patches in [-1, 1]; 0 when either is missing or flat."""
    if a is None or b is None:
        return 0.0
    return float(np.sum(a * b))


def follow(image: np.ndarray, bbox: Sequence[int], patch: Optional[np.ndarray],
           search: float = 0.5) -> Tuple[Optional[Tuple[int, int, int, int]], float]:
    """Where the face of ``patch`` is now near ``bbox``: ``(moved box, correlation)``, or ``(None, 0)``.

    The tracker's step between two detections: the box grown by ``search`` × its size on every side is
    shrunk to the patch's scale (a box of any size is searched at ``PATCH`` pixels, so a 1080p face
    costs what a 16-pixel one does) and the patch is matched in it (normalised cross-correlation).
    The box keeps its size (the next detection corrects the scale) and stays inside the frame. A low
    correlation means the face left the box: the caller stops reporting it and detects.
    """
    if patch is None:
        return None, 0.0
    h, w = image.shape[:2]
    x, y, bw, bh = (int(v) for v in bbox[:4])
    if bw < 4 or bh < 4 or bw > w or bh > h:
        return None, 0.0
    if float(np.linalg.norm(patch)) < 1e-3:  # a flat patch has nothing to follow or compare
        return (x, y, bw, bh), 1.0
    px, py = int(search * bw), int(search * bh)
    x0, y0, x1, y1 = max(0, x - px), max(0, y - py), min(w, x + bw + px), min(h, y + bh + py)
    if x1 - x0 < bw or y1 - y0 < bh:
        return None, 0.0
    sx, sy = PATCH / float(bw), PATCH / float(bh)
    roi = image[y0:y1, x0:x1]
    if roi.ndim == 3:
        roi = cv2.cvtColor(roi, cv2.COLOR_BGR2GRAY if roi.shape[2] == 3 else cv2.COLOR_BGRA2GRAY)
    size = (max(PATCH, int(round((x1 - x0) * sx))), max(PATCH, int(round((y1 - y0) * sy))))
    small = cv2.resize(roi, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    scores = cv2.matchTemplate(small, patch.astype(np.float32), cv2.TM_CCOEFF_NORMED)
    _, best, _, (bx, by) = cv2.minMaxLoc(scores)
    if not np.isfinite(best):
        return None, 0.0
    nx = min(max(x0 + int(round(bx / sx)), 0), w - bw)
    ny = min(max(y0 + int(round(by / sy)), 0), h - bh)
    return (nx, ny, bw, bh), float(best)


@dataclass
class Track:
    """One face over time. ``last_seen`` is the frame of the last matched detection.

    ``misses`` counts the detection passes in a row that did not confirm the track; a track with a miss
    is not reported (``visible`` is False) but is kept for ``max_misses`` passes so a face the detector
    lost for one pass gets its id (and smoothed label) back. ``patch`` is its face at the last match.
    """

    track_id: int
    bbox: Tuple[int, int, int, int]
    score: float
    eyes: Optional[Tuple[Point, Point]]
    first_seen: int
    last_seen: int
    hits: int = 1
    misses: int = 0
    patch: Optional[np.ndarray] = field(default=None, repr=False, compare=False)

    @property
    def visible(self) -> bool:
        return self.misses == 0

    @property
    def area(self) -> int:
        return int(self.bbox[2]) * int(self.bbox[3])

    def as_detection(self) -> Detection:
        return Detection(self.bbox, self.score, self.eyes)


class IoUTracker:
    """Match detections to tracks by IoU ≥ ``iou_threshold`` (greedy, best pairs first).

    An unmatched detection starts a new track (ids increase, never reused). A detection pass that does
    not confirm a track hides it at once (no ghost box is reported after the face went), and forgets it
    after ``max_misses`` such passes in a row, when it has not been matched for more than ``max_age``
    frames, or when a new detection overlaps it (the face moved; its new box is the new track). Between
    detections :attr:`tracks` keeps the last boxes; :meth:`visible` are the ones to report.
    """

    def __init__(self, iou_threshold: float = 0.3, max_age: int = 10, max_misses: int = 1):
        self.iou_threshold = float(iou_threshold)
        self.max_age = int(max_age)
        self.max_misses = int(max_misses)
        self.tracks: List[Track] = []
        self._next_id = 1

    def reset(self, restart_ids: bool = False) -> None:
        """Forget all tracks (frame size changed, source reconnected, next still); ids keep increasing
        unless ``restart_ids`` (a new run, or a new unrelated image)."""
        self.tracks = []
        if restart_ids:
            self._next_id = 1

    def update(self, detections: Sequence[Detection], frame_index: int,
               image: Optional[np.ndarray] = None) -> List[Track]:
        """Fold one detection pass in; returns the live tracks (matched ones carry the new box).

        ``image`` (the frame detected on) refreshes the matched tracks' appearance patches.
        """
        used_d, matched = set(), set()
        for ti, di, _ in greedy_iou_match([t.bbox for t in self.tracks], [d.bbox for d in detections],
                                          self.iou_threshold):
            used_d.add(di)
            matched.add(ti)
            t, d = self.tracks[ti], detections[di]
            t.bbox, t.score, t.eyes, t.last_seen = tuple(int(v) for v in d.bbox), d.score, d.eyes, frame_index
            t.hits += 1
            t.misses = 0
            if image is not None:
                t.patch = appearance(image, t.bbox)
        new = []
        for di, d in enumerate(detections):
            if di not in used_d:
                t = Track(self._next_id, tuple(int(v) for v in d.bbox), d.score, d.eyes, frame_index, frame_index)
                if image is not None:
                    t.patch = appearance(image, t.bbox)
                new.append(t)
                self._next_id += 1
        kept = []
        for ti, t in enumerate(self.tracks):
            if ti not in matched:
                t.misses += 1
                if t.misses > self.max_misses or any(iou(t.bbox, n.bbox) > 0.0 for n in new):
                    continue
            kept.append(t)
        self.tracks = [t for t in kept + new if frame_index - t.last_seen <= self.max_age]
        return list(self.tracks)

    def expire(self, frame_index: int) -> List[Track]:
        """Drop tracks older than ``max_age`` on a frame without detection; returns the live ones."""
        self.tracks = [t for t in self.tracks if frame_index - t.last_seen <= self.max_age]
        return list(self.tracks)

    def hide(self, track: Track) -> None:
        """The face is no longer in ``track``'s box (its appearance check failed): stop reporting it."""
        track.misses = max(track.misses, 1)

    def visible(self) -> List[Track]:
        """The tracks confirmed by the latest detection pass, oldest first: what a frame reports."""
        return [t for t in self.tracks if t.visible]
