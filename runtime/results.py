"""What the runtime reports: per-frame results, the JSONL writer and the annotated video writer.

JSONL schema ``fer-edge.runtime/2`` (one object per frame, documented in docs/runtime.md)::

    {"schema": "fer-edge.runtime/2", "source": "cabin.mp4", "path": null, "frame": 12, "timestamp": 0.48,
     "detected": false, "fault": null, "model_sha256": "…",
     "faces": [{"track_id": 1, "bbox": [x, y, w, h], "det_score": 0.8,
       "label": "happiness", "score": 0.71, "probs": [...],
       "label_smoothed": "happiness", "score_smoothed": 0.66, "probs_smoothed": [...]}],
     "latency_ms": {"capture": 0.9, "detect": 0.0, "preprocess": 0.1, "infer": 0.6, "post": 0.1}}

``source`` names what was run (the ``--source`` value); ``path`` is the image file of the frame for a folder
or list of images (``null`` for video, cameras and streams, whose frames are ``frame`` and ``timestamp``).
Version 2 added ``source`` and ``path`` (version 1 lines could not be traced back to their file).
``probs`` follow the model's label order, written once into the run summary (``<out>.summary.json``).
Both files are written atomically: the JSONL appears under its name when the run ends (normally,
by Ctrl-C or SIGTERM); a ``kill -9`` leaves no half-written file that looks complete.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from .atomic import atomic_path, atomic_write

SCHEMA = "fer-edge.runtime/2"
PROB_DECIMALS = 4


@dataclass
class FaceResult:
    """One face in one frame: raw and smoothed predictions of its track."""

    track_id: int
    bbox: Tuple[int, int, int, int]
    det_score: float
    label: str
    score: float
    probs: List[float]
    label_smoothed: str
    score_smoothed: float
    probs_smoothed: List[float]

    def to_dict(self) -> Dict[str, Any]:
        r = PROB_DECIMALS
        return {"track_id": int(self.track_id), "bbox": [int(v) for v in self.bbox],
                "det_score": round(float(self.det_score), 3), "label": self.label,
                "score": round(float(self.score), r), "probs": [round(float(p), r) for p in self.probs],
                "label_smoothed": self.label_smoothed, "score_smoothed": round(float(self.score_smoothed), r),
                "probs_smoothed": [round(float(p), r) for p in self.probs_smoothed]}


@dataclass
class FrameResult:
    """Everything the pipeline knows about one frame (``image`` is kept for annotation, not written)."""

    frame: int
    timestamp: float
    faces: List[FaceResult] = field(default_factory=list)
    latency_ms: Dict[str, float] = field(default_factory=dict)
    detected: bool = False
    fault: Optional[str] = None
    model_sha256: str = ""
    image: Any = None
    #: what was run (video file, folder, camera, URL) and, for stills and image sequences, this frame's file
    source: str = ""
    path: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        return {"schema": SCHEMA, "source": self.source, "path": self.path, "frame": int(self.frame),
                "timestamp": round(float(self.timestamp), 4),
                "detected": bool(self.detected), "fault": self.fault, "model_sha256": self.model_sha256,
                "faces": [f.to_dict() for f in self.faces],
                "latency_ms": {k: round(float(v), 3) for k, v in self.latency_ms.items()}}

    def to_json(self) -> str:
        return json.dumps(finite(self.to_dict()), separators=(",", ":"), allow_nan=False)


def finite(obj: Any) -> Any:
    """``obj`` with NaN/±inf floats replaced by ``null``: JSON has no such numbers, and a consumer's strict
    parser (JavaScript, Go, jq) rejects the whole line if Python writes its ``NaN``/``Infinity`` extension."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


REQUIRED_FRAME_KEYS = ("schema", "source", "path", "frame", "timestamp", "detected", "fault", "model_sha256", "faces",
                       "latency_ms")
REQUIRED_FACE_KEYS = ("track_id", "bbox", "det_score", "label", "score", "probs", "label_smoothed",
                      "score_smoothed", "probs_smoothed")


def validate_line(obj: Any) -> List[str]:
    """Problems with one parsed JSONL object against the current schema (empty list = valid)."""
    if not isinstance(obj, dict):
        return [f"line is a {type(obj).__name__}, not an object"]
    errs = [f"missing {k!r}" for k in REQUIRED_FRAME_KEYS if k not in obj]
    if obj.get("schema") != SCHEMA:
        errs.append(f"schema {obj.get('schema')!r} != {SCHEMA!r}")
    for i, face in enumerate(obj.get("faces") or []):
        errs += [f"face {i}: missing {k!r}" for k in REQUIRED_FACE_KEYS if k not in face]
        if isinstance(face.get("bbox"), list) and len(face["bbox"]) != 4:
            errs.append(f"face {i}: bbox has {len(face['bbox'])} numbers")
    return errs


class JsonlWriter:
    """Append one JSON line per frame into a temp file; :meth:`close` renames it into place."""

    def __init__(self, path: Union[str, os.PathLike], flush_every: int = 50):
        self.path = Path(path)
        self._stack = contextlib.ExitStack()
        self._tmp = self._stack.enter_context(atomic_path(self.path))
        self._fh = self._stack.enter_context(open(self._tmp, "w", encoding="utf-8"))
        self.flush_every, self.lines = int(flush_every), 0

    def write(self, result: FrameResult) -> None:
        self._fh.write(result.to_json())
        self._fh.write("\n")
        self.lines += 1
        if self.lines % self.flush_every == 0:
            self._fh.flush()

    def close(self) -> Path:
        """Flush, fsync and rename into place (idempotent)."""
        self._stack.close()
        return self.path


def write_summary(path: Union[str, os.PathLike], summary: Dict[str, Any]) -> Path:
    return atomic_write(path, json.dumps(finite(summary), indent=2, sort_keys=True, allow_nan=False) + "\n")


def summary_path(out: Union[str, os.PathLike]) -> Path:
    p = Path(out)
    return p.with_name(p.name + ".summary.json") if p.suffix != ".json" else p.with_suffix(".summary.json")


_PALETTE = [(80, 200, 80), (60, 160, 255), (255, 120, 60), (200, 80, 200), (60, 220, 220), (220, 220, 60)]


def annotate(image: np.ndarray, faces: Sequence[FaceResult]) -> np.ndarray:
    """A BGR copy of ``image`` with each face's box, track id and smoothed label drawn on it."""
    from .detect import to_bgr

    out = to_bgr(image).copy()
    for f in faces:
        x, y, w, h = f.bbox
        colour = _PALETTE[f.track_id % len(_PALETTE)]
        cv2.rectangle(out, (x, y), (x + w, y + h), colour, 2)
        text = f"#{f.track_id} {f.label_smoothed} {f.score_smoothed:.2f}"
        cv2.putText(out, text, (x, max(12, y - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
    return out


#: Annotated-video containers the pip OpenCV can write (mp4v in .mp4, Motion-JPEG in .avi).
VIDEO_SUFFIXES = (".mp4", ".avi")


class VideoSink:
    """Annotated MP4/AVI writer. Opens on the first frame; later frames of another size are resized to it.

    A name without a known suffix is refused here, before the first frame (OpenCV would otherwise
    write a 0-byte file and say nothing), and a writer OpenCV cannot open is an ``OSError`` naming it.
    """

    def __init__(self, path: Union[str, os.PathLike], fps: float = 25.0):
        from .errors import ConfigError

        self.path = Path(path)
        if self.path.suffix.lower() not in VIDEO_SUFFIXES:
            raise ConfigError(f"--video-out {path}: give a file name ending in {' or '.join(VIDEO_SUFFIXES)} "
                              "(the suffix picks the codec: mp4v or Motion-JPEG)")
        self.fps = float(fps) if fps and fps > 0 else 25.0
        self._stack = contextlib.ExitStack()
        self._writer: Any = None
        self._size: Optional[Tuple[int, int]] = None
        self.frames = 0

    def write(self, image: Optional[np.ndarray], faces: Sequence[FaceResult]) -> None:
        if image is None:
            return
        img = annotate(image, faces)
        if self._writer is None:
            tmp = self._stack.enter_context(atomic_path(self.path))
            fourcc = cv2.VideoWriter_fourcc(*("mp4v" if self.path.suffix.lower() == ".mp4" else "MJPG"))
            self._size = (img.shape[1], img.shape[0])
            self._writer = cv2.VideoWriter(str(tmp), fourcc, self.fps, self._size)
            self._stack.callback(self._writer.release)
            if not self._writer.isOpened():
                err = OSError(f"--video-out {self.path}: OpenCV cannot write this video here (no "
                              f"{self.path.suffix} encoder in this OpenCV build); try .avi")
                self._stack.__exit__(OSError, err, None)  # the temp file goes; no 0-byte video is left
                self._stack, self._writer = contextlib.ExitStack(), None
                raise err
        if (img.shape[1], img.shape[0]) != self._size:
            img = cv2.resize(img, self._size)
        self._writer.write(img)
        self.frames += 1

    def close(self) -> Optional[Path]:
        self._stack.close()
        return self.path if self.frames else None
