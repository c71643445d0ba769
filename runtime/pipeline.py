"""The lean runtime loop: capture → detect → track → classify → smooth → results.

``Pipeline.from_model(path)`` opens the model (ONNX Runtime or TensorRT), takes its crop policy and
preprocessing from the model's own contract, and ``pipeline.run(source)`` yields one
:class:`~fer_edge.runtime.results.FrameResult` per frame. All faces of a frame go to the backend in
ONE batched call. Nothing a camera can send stops the loop: bad frames, failed crops and stalls are
counted in :attr:`Pipeline.stats` (logged once per kind) and the loop goes on.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import time
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

import numpy as np

from .async_detect import AsyncDetector
from .backends import open_backend
from .capture import CaptureThread, FrameQueue, _End, resolve_drop_policy
from .config import RuntimeConfig
from .contract import preprocess
from .crop import CropPolicy, crop_face
from .detect import FaceDetector, make_detector
from .errors import ConfigError, FerEdgeError, SourceError
from .policy import BACKEND_KEYS, DETECTOR_KEYS, check_frame, check_sidecar_crop, runtime_policy
from .results import FaceResult, FrameResult
from .schedule import DetectionSchedule
from .smooth import Smoother
from .sources import Frame, open_source, read_image_file
from .stats import RunStats
from .track import IoUTracker, Track

log = logging.getLogger(__name__)

__all__ = ["BACKEND_KEYS", "DETECTOR_KEYS", "Pipeline", "check_frame", "runtime_policy"]


class Pipeline(DetectionSchedule):
    """One model + detector + tracker + smoother. Not thread-safe; one per stream.

    Each :meth:`run` starts from scratch (:meth:`reset`): no box, id or smoothed label of an earlier run
    leaks into the next. A folder or list of images is run as *stills* (every image detected on its own,
    nothing tracked or smoothed across images) unless it is declared a ``sequence``.
    """

    def __init__(self, backend: Any, policy: CropPolicy, detector: FaceDetector,
                 config: Optional[RuntimeConfig] = None, model_sha256: str = ""):
        self.backend = backend
        self.contract = backend.contract
        self.spec = backend.contract.preprocess
        self.labels = list(backend.contract.labels)
        self.policy = policy
        self.detector = detector
        self.config = (config or RuntimeConfig()).validate()
        self.model_sha256 = model_sha256 or str(backend.info().get("sha256", ""))
        self._worker: Optional[AsyncDetector] = None
        #: "sync" or "async"; ``run`` resolves ``auto`` by the source (async on live sources).
        self.detect_mode = "async" if self.config.detect_mode == "async" else "sync"
        self.reset()

    def reset(self) -> None:
        """Forget the previous stream: tracks (ids restart at 1), smoothing, detection schedule and stats."""
        cfg = self.config
        self.close()
        self.stats = RunStats()
        self.tracker = IoUTracker(cfg.track_iou, cfg.track_max_age, cfg.track_max_misses)
        self.smoother = Smoother(cfg.ema_alpha, cfg.hysteresis_margin, cfg.hysteresis_frames)
        self._processed = 0
        self._usable = 0
        self._since_detect = 0
        self._since_full = 0
        self._frame_shape: Optional[Tuple[int, ...]] = None
        self._force_detect = True   # detect now, scanning the whole frame (start, size change, reconnect)
        self._force_full = False    # the next detection scans the whole frame (a tracked face was not re-found)
        self._redetect = False      # detect now, near the tracked faces (one no longer looks like its face)
        self._generation = 0
        self._t0 = time.monotonic()
        #: True while running unrelated images: each is detected alone, nothing carried between them
        self.stills = False
        self.source_name = ""

    @classmethod
    def from_model(cls, path: Union[str, os.PathLike], backend: str = "auto",
                   config: Optional[RuntimeConfig] = None, **options: Any) -> Pipeline:
        """Open ``path`` and build a pipeline.

        ``options``: any :class:`RuntimeConfig` field (``detect_every=5``, ``drop_policy=...``), detector
        keys of the crop policy (``detector``, ``yunet_model``, ``min_face``, ``select``,
        ``score_threshold``) and backend keys (``providers``, ``threads``). A pixel-changing crop key
        (``margin``, ``square``, ``clahe``, ``align``) other than the model's is refused.
        """
        cfg = dataclasses.replace(config) if config is not None else RuntimeConfig()
        fields = {f.name for f in dataclasses.fields(RuntimeConfig)}
        crop_over, backend_kw = {}, {}
        for key, value in options.items():
            if key in fields:
                setattr(cfg, key, value)
            elif key in BACKEND_KEYS:
                backend_kw[key] = value
            elif key in CropPolicy.__dataclass_fields__:
                crop_over[key] = value
            else:
                raise ConfigError(f"Pipeline.from_model: unknown option {key!r}; runtime options are "
                                  f"{sorted(fields | set(DETECTOR_KEYS) | set(BACKEND_KEYS))}")
        cfg.validate()
        if backend == "auto":
            backend = cfg.backend
        backend_kw.setdefault("threads", cfg.threads)
        be = open_backend(path, backend=backend, **backend_kw)
        check_sidecar_crop(path, be.contract)
        policy = runtime_policy(be.contract.crop, crop_over)
        detector = make_detector(policy, detect_width=cfg.detect_width)
        log.info("pipeline: %s, detector %s, detect every %d frame(s), crop margin %.2f square %s",
                 getattr(be, "name", "backend"), detector.name, cfg.detect_every, policy.margin, policy.square)
        return cls(be, policy, detector, cfg)

    # --- one frame -------------------------------------------------------------------------------
    def _as_frame(self, frame: Any) -> Frame:
        """A :class:`Frame` for ``process``: an image array (or an image file's path) is wrapped as the next one."""
        if isinstance(frame, Frame):
            return frame
        now = time.monotonic() - self._t0
        if isinstance(frame, (str, os.PathLike)):
            img, fault, ms = read_image_file(frame)
            return Frame(self._processed, img, now, ms, fault, str(frame))
        return Frame(self._processed, frame, now, 0.0)

    def _new_still(self) -> None:
        """The next image is unrelated to the last: nothing tracked, smoothed or scheduled carries over."""
        self.tracker.reset(restart_ids=True)
        self.smoother.prune(())
        self._frame_shape = None
        self._force_detect = True
        self._force_full = True
        self._generation += 1

    def process(self, frame: Any) -> FrameResult:
        """Run one frame through detect → track → classify → smooth; never raises for bad input.

        ``frame`` is a :class:`~fer_edge.runtime.sources.Frame`, an image array (BGR, BGRA or grey uint8)
        or the path of an image file.
        """
        frame = self._as_frame(frame)
        lat = {"capture": float(frame.capture_ms), "detect": 0.0, "preprocess": 0.0, "infer": 0.0, "post": 0.0}
        result = FrameResult(frame=frame.index, timestamp=frame.timestamp, latency_ms=lat,
                             model_sha256=self.model_sha256, source=self.source_name, path=frame.path)
        if self.stills:
            self._new_still()
        if frame.fault:
            what = f" for {frame.path}" if frame.path else ""
            return self._faulted(result, frame.fault, f"the source delivered no usable frame{what}")
        img, fault = check_frame(frame.image)
        if fault:
            shape = getattr(frame.image, "shape", None)
            return self._faulted(result, fault, f"got {type(frame.image).__name__} {shape} "
                                                f"{getattr(frame.image, 'dtype', '')}")
        result.image = img
        if self._frame_shape is not None and img.shape != self._frame_shape:
            self.tracker.reset()
            self._force_detect = True
            self._generation += 1
            self.stats.events["size_change"] += 1
        self._frame_shape = img.shape

        t0 = time.perf_counter()
        self._detect_async(img, result) if self.detect_mode == "async" else self._detect_sync(img, result)
        tracks = self._reported()
        t1 = time.perf_counter()

        batch, kept = [], []
        for track in tracks:
            try:
                crop = crop_face(img, track.bbox, self.policy, eyes=track.eyes)
                batch.append(preprocess(crop, self.spec))
                kept.append(track)
            except ValueError as exc:
                self.stats.fault("bad_crop", f"track {track.track_id} box {track.bbox}: {exc}")
        t2 = time.perf_counter()

        probs = None
        if batch:
            try:
                probs = self.backend.infer(np.stack(batch))
            except Exception as exc:  # noqa: BLE001 - counted; the next frame may be fine
                self.stats.fault("infer_error", str(exc))
        t3 = time.perf_counter()

        if probs is not None:
            for track, p in zip(kept, probs):
                if not np.all(np.isfinite(p)):
                    self.stats.fault("nonfinite_probs", f"track {track.track_id}")
                    continue
                ps, ls = self.smoother.update(track.track_id, p)
                li = int(np.argmax(p))
                result.faces.append(FaceResult(track.track_id, track.bbox, track.score, self.labels[li],
                                               float(p[li]), p.tolist(), self.labels[ls], float(ps[ls]),
                                               ps.tolist()))
        if result.detected:
            self.smoother.prune(t.track_id for t in self.tracker.tracks)
        t4 = time.perf_counter()
        lat.update(detect=(t1 - t0) * 1e3, preprocess=(t2 - t1) * 1e3, infer=(t3 - t2) * 1e3,
                   post=(t4 - t3) * 1e3)
        self._processed += 1
        self._usable += 1
        self.stats.frame(len(result.faces), lat)
        return result

    def _reported(self) -> List[Track]:
        """The tracks this frame reports: confirmed by the last detection, at most one with ``select: largest``."""
        tracks = self.tracker.visible()
        if self.policy.select == "largest" and len(tracks) > 1:
            tracks = sorted(tracks, key=lambda t: (-t.area, -t.last_seen))[:1]
        return tracks

    def close(self) -> None:
        """Stop the background detector (if any); the pipeline can run again afterwards."""
        if self._worker is not None:
            self._worker.close()
            self._worker = None

    def _faulted(self, result: FrameResult, kind: str, detail: str) -> FrameResult:
        result.fault = kind
        self.stats.fault(kind, detail)
        self._processed += 1
        self.stats.frame(0, result.latency_ms)
        return result

    # --- a stream --------------------------------------------------------------------------------
    def run(self, source: Any, max_frames: Optional[int] = None, live: Optional[bool] = None,
            sequence: Optional[bool] = None) -> Iterator[FrameResult]:
        """Yield one result per frame of ``source``.

        ``source``: a video file, image file, folder of images (recursive), list of image paths, camera
        index, URL, GStreamer string, or an iterable of image arrays. Images (a folder, a list of paths,
        one file) are stills — each detected alone, nothing carried between them — unless
        ``sequence=True`` says they are the frames of one video. A capture thread feeds a bounded queue
        (drop oldest on live sources, block on files, per ``runtime.drop_policy``). Stalls are counted
        every ``stall_timeout_s``; after ``stall_give_up_s`` without a frame the run ends. A source that
        delivered no usable frame, or a live source that does not come back, raises
        :class:`SourceError` after the results so far were yielded.
        """
        cfg = self.config
        max_frames = max_frames if max_frames is not None else cfg.max_frames
        if max_frames is not None and (isinstance(max_frames, bool) or int(max_frames) < 1):
            raise ConfigError(f"max_frames: {max_frames!r} must be >= 1 (leave it unset for the whole source)")
        src = source if hasattr(source, "frames") else open_source(
            source, retries=cfg.reconnect_retries, backoff_s=cfg.reconnect_backoff_s, live=live,
            sequence=bool(sequence))
        self.reset()
        live_src = bool(getattr(src, "live", False))
        self.stills = bool(getattr(src, "stills", False)) and not sequence
        self.source_name = str(getattr(src, "name", source))
        queue = FrameQueue(cfg.queue_size, resolve_drop_policy(cfg.drop_policy, live_src))
        thread = CaptureThread(src, queue, max_frames)
        self.detect_mode = {"auto": "async" if live_src else "sync"}.get(cfg.detect_mode, cfg.detect_mode)
        if self.stills:
            self.detect_mode = "sync"  # each image's own detection lands on it
        error: Optional[BaseException] = None
        thread.start()
        stalled = 0.0
        try:
            while True:
                try:
                    item = queue.get(timeout=cfg.stall_timeout_s)
                except TimeoutError:
                    stalled += cfg.stall_timeout_s
                    self.stats.fault("stall", f"no frame from the source for {cfg.stall_timeout_s:.1f}s")
                    self._force_detect = True
                    if stalled >= cfg.stall_give_up_s:
                        self.stats.error = f"no frame for {stalled:.0f}s; giving up on {getattr(src, 'name', src)}"
                        if self.stats.frames == 0:  # never delivered anything: that is a source that failed
                            error = SourceError(f"{self.stats.error} — it never delivered a frame; check the "
                                                "URL/device/pipeline string and that the camera is streaming")
                        break
                    continue
                stalled = 0.0
                if isinstance(item, _End):
                    error = item.error
                    break
                if item.fault in ("source_lost", "read_error"):
                    self.tracker.reset()  # the scene may have changed while the camera was gone
                    self._generation += 1
                    self._force_detect = True
                yield self.process(item)
        finally:
            thread.stop()
            self.close()
            self.stats.events["dropped_frames"] += queue.dropped
            if getattr(src, "reconnects", 0):
                self.stats.events["reconnects"] += src.reconnects
            self.stats.finish()
        if error is None:
            error = self._nothing_done(src)
        if error is not None:
            self.stats.error = str(error)
            if isinstance(error, FerEdgeError):
                raise error
            raise SourceError(f"{getattr(src, 'name', 'source')}: failed with {type(error).__name__}: {error}") \
                from error

    def _nothing_done(self, src: Any) -> Optional[SourceError]:
        """A run that ended without one usable frame is a failure to name, never a silent success."""
        name = getattr(src, "name", "source")
        if self.stats.frames == 0:
            return SourceError(f"{name}: delivered no frame — check that it is a video OpenCV can decode, a "
                               "folder of images or a streaming camera")
        if self._usable == 0:
            faults = ", ".join(f"{k} {v}" for k, v in sorted(self.stats.faults.items())) or "none usable"
            return SourceError(f"{name}: none of its {self.stats.frames} frame(s) could be used ({faults}); "
                               "check that the files are images (or the video decodes) — the results file "
                               "lists each one")
        return None

    def summary(self) -> Dict[str, Any]:
        """Final stats plus what ran: backend info, labels, crop policy."""
        s = self.stats.summary()
        s.update(labels=self.labels, model_sha256=self.model_sha256, backend=self.backend.info(),
                 crop=self.policy.to_dict(), detector=self.detector.name, detect_every=self.config.detect_every,
                 source=self.source_name, stills=self.stills)
        return s
