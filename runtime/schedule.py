"""When and where the runtime looks for faces: the detection schedule of :class:`~.pipeline.Pipeline`.

Every ``detect_every`` frames, faces already tracked are re-detected in a window around their boxes
(cheap); a tracked face that window does not find, and every ``rescan_every`` frames, the whole frame is
scanned. Between detections a reported box follows its face (:func:`~.track.follow`); a box whose face
is gone is not reported and detection runs now, rather than a ghost box being reported. ``sync`` runs
detection in line (the boxes land on the frame they were found on); ``async`` in a background thread with
its own detector.
Kept apart from the pipeline's frame loop so each stays one job.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np

from .async_detect import AsyncDetector
from .detect import Detection, FaceDetector, detect_near, eyes_for, make_detector, select_faces
from .results import FrameResult
from .track import Track, appearance, follow, iou, similarity


class DetectionSchedule:
    """Mixin of :class:`~.pipeline.Pipeline`: uses its ``config``, ``policy``, ``detector``, ``tracker``,
    ``stats`` and the scheduling counters that ``Pipeline.reset`` sets."""

    def _detect(self, img: np.ndarray, detector: Optional[FaceDetector] = None) -> List[Detection]:
        """A full-frame scan: min_face, selection and eye alignment applied (runs in either thread)."""
        self.stats.events["full_scans"] += 1
        found = (detector or self.detector).detect(img)
        dets = [d for d in found if min(d.bbox[2], d.bbox[3]) >= self.policy.min_face]
        return self._finish(img, dets)

    def _finish(self, img: np.ndarray, dets: List[Detection]) -> List[Detection]:
        dets = select_faces(dets, self.policy)
        if self.policy.align:
            dets = [Detection(d.bbox, d.score, eyes_for(img, d, self.policy, self.stats.events)) for d in dets]
        return dets

    def _due(self) -> bool:
        return self._force_detect or self._redetect or self._since_detect >= self.config.detect_every

    def _roi_pass(self) -> bool:
        """Re-detect around the tracked faces only (cheap), or is a full-frame scan due?"""
        return bool(self.tracker.tracks) and not self._force_detect and not self._force_full and \
            self._since_full < max(self.config.rescan_every, self.config.detect_every)

    def _roi_detect(self, img: np.ndarray, boxes: Optional[list] = None,
                    detector: Optional[FaceDetector] = None) -> List[Detection]:
        self.stats.events["roi_scans"] += 1
        boxes = [t.bbox for t in self.tracker.tracks] if boxes is None else boxes
        dets = detect_near(detector or self.detector, img, boxes)
        return self._finish(img, [d for d in dets if min(d.bbox[2], d.bbox[3]) >= self.policy.min_face])

    def _covers(self, dets: List[Detection], boxes: List[Tuple[int, int, int, int]]) -> bool:
        """Did a re-detection find a face at every reported box? If not, the face moved: scan the frame.

        Only reported (visible) tracks count: a hidden one is already not shown, and the periodic full scan
        looks for it, so it never makes every re-detection a full scan."""
        thr = self.config.track_iou
        return all(any(iou(b, d.bbox) >= thr for d in dets) for b in boxes)

    def _follow(self, img: np.ndarray) -> List[Track]:
        """Move each reported box onto its face between detections; returns the tracks whose face is gone.

        A box that still looks like its face (:func:`~.track.similarity` ≥ 0.8) stays; otherwise its face
        patch is searched for around it (:func:`~.track.follow`) and the box moves there. When even the best
        match is below ``track_min_similarity`` the face left the box (a wall, a chin, the next photo).
        """
        thr = self.config.track_min_similarity
        gone: List[Track] = []
        if thr <= 0:
            return gone
        for t in self.tracker.visible():
            if t.patch is None or similarity(t.patch, appearance(img, t.bbox)) >= max(thr, 0.8):
                continue
            box, score = follow(img, t.bbox, t.patch)
            if box is None or score < thr:
                gone.append(t)
                continue
            dx, dy = box[0] - t.bbox[0], box[1] - t.bbox[1]
            t.bbox = box
            if t.eyes is not None:
                t.eyes = tuple((ex + dx, ey + dy) for ex, ey in t.eyes)
            self.stats.events["followed"] += 1
        return gone

    def _detect_sync(self, img: np.ndarray, result: FrameResult) -> None:
        self._since_full += 1
        due = self._due()
        if not due and self._follow(img):
            due = True  # the face left its box between detections: look now instead of reporting a ghost
            self.stats.events["appearance_redetect"] += 1
        if due:
            result.detected = True
            roi = self._roi_pass()
            self._since_detect, self._force_detect, self._redetect = 0, False, False
            self.stats.detections += 1
            try:
                dets: List[Detection] = []
                if roi:
                    dets = self._roi_detect(img, [t.bbox for t in self.tracker.tracks])
                    if not self._covers(dets, [t.bbox for t in self.tracker.visible()]):
                        roi = False
                        self.stats.events["roi_miss_rescan"] += 1
                if not roi:
                    self._since_full, self._force_full = 0, False
                    dets = self._detect(img)
                self.tracker.update(dets, self._processed, img)
            except Exception as exc:  # noqa: BLE001 - a detector error on one frame must not stop the run
                self.stats.fault("detect_error", str(exc))
                self.tracker.expire(self._processed)
        else:
            self.tracker.expire(self._processed)
        self._since_detect += 1

    def _detect_async(self, img: np.ndarray, result: FrameResult) -> None:
        """All detection in the background thread; its result is folded in on the frame it arrives.

        The job is a full scan or a re-detection around the tracked boxes (same rule as sync mode), so
        no frame ever waits for the detector; the boxes it returns are a frame or two old.
        """
        if self._worker is None:
            # OpenCV cascades are not thread-safe: the background thread gets its own detector.
            bg = make_detector(self.policy, detect_width=self.config.detect_width)
            self._worker = AsyncDetector(lambda job: self._background_detect(bg, *job))
        self._since_full += 1
        done = self._worker.poll()
        if done is not None:
            (generation, _, job_img, confirm), dets = done
            if isinstance(dets, Exception):
                self.stats.fault("detect_error", str(dets))
            elif generation == self._generation:
                result.detected = True
                if confirm is not None and not self._covers(dets, confirm):
                    self._force_full = True  # the next job scans the whole frame for the face that moved
                    self.stats.events["roi_miss_rescan"] += 1
                self.tracker.update(dets, self._processed, job_img)
        for track in self._follow(img):
            self.tracker.hide(track)
            self._redetect = True  # a re-detection near the box finds the face if it only moved
            self.stats.events["appearance_redetect"] += 1
        if self._due():
            roi = self._roi_pass()
            boxes = [t.bbox for t in self.tracker.tracks] if roi else None
            confirm = [t.bbox for t in self.tracker.visible()] if roi else None
            if self._worker.submit((img, boxes), (self._generation, self._processed, img, confirm)):
                self._since_detect, self._force_detect, self._redetect = 0, False, False
                if boxes is None:
                    self._since_full, self._force_full = 0, False
                self.stats.detections += 1
        self._since_detect += 1
        # Tracks age out only when a returned detection misses them (in ``update``): a file read faster
        # than the detector must not lose its faces while a scan is still running.

    def _background_detect(self, detector: FaceDetector, img: np.ndarray,
                           boxes: Optional[List[Tuple[int, int, int, int]]]) -> List[Detection]:
        if boxes is None:
            return self._detect(img, detector)
        return self._roi_detect(img, boxes, detector)
