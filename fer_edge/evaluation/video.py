"""End-to-end runtime FPS on a synthetic video: capture → detect → track → classify → smooth.

Model speed alone overstates what a camera gets: face detection, cropping and tracking cost time
too. This runs the runtime's own :class:`Pipeline` on a generated video so the figure is the
product's, and reports a skip with its reason when the runtime pipeline is not installed.
"""
from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import cv2
import numpy as np

log = logging.getLogger(__name__)


def synthetic_frames(n: int, size=(640, 480), seed: int = 0) -> List[np.ndarray]:
    """``n`` gray-ish BGR frames with a drawn face drifting across (enough for Haar to fire)."""
    rng = np.random.default_rng(seed)
    w, h = size
    frames = []
    for i in range(n):
        img = np.full((h, w, 3), 70, np.uint8)
        img += rng.integers(0, 12, size=img.shape, dtype=np.uint8)
        cx, cy, r = w // 3 + (i % 120), h // 2, h // 5
        cv2.ellipse(img, (cx, cy), (int(r * 0.8), r), 0, 0, 360, (200, 200, 200), -1)
        for dx in (-r // 3, r // 3):
            cv2.ellipse(img, (cx + dx, cy - r // 4), (r // 7, r // 10), 0, 0, 360, (30, 30, 30), -1)
        cv2.ellipse(img, (cx, cy + r // 3), (r // 3, r // 6), 0, 0, 180, (40, 40, 40), max(1, r // 12))
        frames.append(img)
    return frames


def write_video(path: Path, frames: List[np.ndarray], fps: float = 30.0) -> Path:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    if not writer.isOpened():
        raise OSError(f"OpenCV cannot write {path}")
    for f in frames:
        writer.write(f)
    writer.release()
    return path


def video_fps(model: Optional[str], frames: int = 300) -> Dict[str, Any]:
    """FPS of ``Pipeline.from_model(model)`` over a ``frames``-long synthetic video, or a skip reason."""
    if model is None:
        return {"status": "skipped", "reason": "no ONNX/engine path ran"}
    try:
        from fer_edge.runtime.pipeline import Pipeline
    except ImportError as exc:
        return {"status": "skipped", "reason": f"fer_edge.runtime.pipeline is not available ({exc})"}
    if not hasattr(Pipeline, "from_model"):
        return {"status": "skipped", "reason": "runtime Pipeline has no from_model()"}
    with tempfile.TemporaryDirectory(prefix="fer-edge-bench-") as tmp:
        video = write_video(Path(tmp) / "synthetic.avi", synthetic_frames(frames))
        try:
            return _run_pipeline(Pipeline, model, video, Path(tmp), frames)
        except Exception as exc:  # noqa: BLE001 - the benchmark reports, it does not crash
            log.warning("bench: end-to-end video run failed: %s", exc)
            return {"status": "failed", "reason": f"{type(exc).__name__}: {str(exc)[:300]}", "model": model}


def _run_pipeline(Pipeline: Any, model: str, video: Path, tmp: Path, frames: int) -> Dict[str, Any]:
    pipe = Pipeline.from_model(model)
    try:
        t0 = time.perf_counter()
        done = sum(1 for _ in pipe.run(str(video)))
        seconds = time.perf_counter() - t0
        summary = pipe.summary() if hasattr(pipe, "summary") else {}
    finally:
        if hasattr(pipe, "close"):
            pipe.close()
    lat = (summary.get("latency_ms") or {}).get("total", {})
    return {"status": "ok", "model": model, "frames": done, "seconds": seconds,
            "fps": done / seconds if seconds > 0 else 0.0, "faces": summary.get("faces"),
            "frames_with_faces": summary.get("frames_with_faces"), "frame_latency_ms": lat,
            "faults": summary.get("faults"),
            "detail": f"wall clock over the whole run: decode, detection every "
                      f"{summary.get('detect_every', '?')} frames, tracking, crop, inference, smoothing; "
                      f"{summary.get('frames_with_faces', '?')}/{done} frames with a face"}
