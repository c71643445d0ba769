"""Where full camera frames come from: a folder of images (maybe with class sub-folders) or a video file.

Recorded footage is messy: a dump has a broken JPEG, a thumbnail file, a video that OpenCV cannot
open. This module names each frame (``relative/path.png`` or ``clip.mp4#123``), attaches what is
known about it (the class of its folder, the synthetic ground truth of ``frames.jsonl``) and turns
an unreadable frame into a reason string so the caller counts it and goes on. Only a source with no
readable frame at all is an error. numpy/OpenCV only.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import cv2
import numpy as np

from fer_edge.data.dataset import read_image
from fer_edge.data.loaders.common import IMAGE_SUFFIXES
from fer_edge.runtime.contract import canonical_label
from fer_edge.runtime.errors import DataError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mpg", ".mpeg")
TRUTH_NAME = "frames.jsonl"


@dataclass(frozen=True)
class FrameRef:
    """One frame of a source: its position, its name in reports, and what is known about it.

    ``label`` is the canonical class of the frame's folder (``happy/img.png`` → ``happiness``);
    ``truth`` is the list of true faces from ``frames.jsonl`` (synthetic footage), else ``None``.
    """

    index: int
    name: str
    label: Optional[str] = None
    truth: Optional[Tuple[Dict[str, Any], ...]] = None


@dataclass
class Footage:
    """A resolved source: ``kind`` is ``folder`` or ``video``; ``refs`` are the frames to process."""

    path: Path
    kind: str
    refs: List[FrameRef] = field(default_factory=list)
    labelled: bool = False
    has_truth: bool = False
    #: frames that could not even be listed (e.g. a non-image file in a frames folder), with reasons
    skipped: List[Tuple[str, str]] = field(default_factory=list)

    def files(self) -> List[Path]:
        """The files whose bytes decide the result (the content hash reads these)."""
        if self.kind == "video":
            out = [self.path]
            truth = self.path.parent / TRUTH_NAME
        else:
            out = [self.path / r.name for r in self.refs]
            truth = self.path / TRUTH_NAME
        return out + ([truth] if self.has_truth and truth.is_file() else [])


def is_video(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES


def read_truth(path: Path) -> List[Dict[str, Any]]:
    """Lines of a ``frames.jsonl`` (``{"frame", "path"?, "faces": [{"bbox", "expression", "yaw", …}]}``)."""
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{n}: not valid JSON ({exc}); fix or delete the ground-truth file") from exc
        if not isinstance(row, dict) or not isinstance(row.get("faces", []), list):
            raise DataError(f"{path}:{n}: expected an object with a 'faces' list")
        rows.append(row)
    return rows


def _folder_label(rel: str) -> Optional[str]:
    parent = Path(rel).parent
    return canonical_label(parent.name) if parent.name else None


def open_footage(path: Any, every: int = 1) -> Footage:
    """Resolve ``path`` (frames folder, or video file) and list every ``every``-th frame.

    A folder that holds exactly one video and no images is read as that video (the synthetic clip
    layout: ``video.mp4`` + ``frames.jsonl``).
    """
    path = Path(path)
    every = int(every)
    if every < 1:
        raise DataError(f"--every {every}: must be >= 1")
    if not path.exists():
        raise DataError(f"{path}: no such frames folder or video file")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not any(
            s.startswith(".") for s in p.relative_to(path).parts))
        images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
        videos = [p for p in files if p.suffix.lower() in VIDEO_SUFFIXES]
        if not images and len(videos) == 1:
            return open_footage(videos[0], every)
        if not images:
            what = f" ({len(videos)} videos: give one of them as --in)" if videos else ""
            raise DataError(f"{path}: no image frames found{what}; give a folder of frames or a video file")
        foot = Footage(path, "folder")
        for p in files:
            if p.suffix.lower() not in IMAGE_SUFFIXES and p.suffix.lower() not in (".jsonl", ".csv", ".json", ".txt"):
                foot.skipped.append((p.relative_to(path).as_posix(), f"not an image file ({p.suffix or 'no suffix'})"))
        truth_by_path: Dict[str, Tuple[Dict[str, Any], ...]] = {}
        if (path / TRUTH_NAME).is_file():
            for row in read_truth(path / TRUTH_NAME):
                if "path" in row:
                    truth_by_path[str(row["path"])] = tuple(row.get("faces", []))
        foot.has_truth = bool(truth_by_path)
        for k, p in enumerate(images):
            if k % every:
                continue
            rel = p.relative_to(path).as_posix()
            label = _folder_label(rel)
            foot.labelled = foot.labelled or label is not None
            foot.refs.append(FrameRef(k, rel, label, truth_by_path.get(rel) if foot.has_truth else None))
        return foot
    if not is_video(path):
        raise DataError(f"{path}: not a video file ({', '.join(VIDEO_SUFFIXES)}) nor a frames folder")
    foot = Footage(path, "video")
    truth_path = path.parent / TRUTH_NAME
    if truth_path.is_file():
        rows = [r for r in read_truth(truth_path) if "path" not in r]
        foot.has_truth = bool(rows)
        foot.refs = [FrameRef(int(r.get("frame", k)), f"{path.name}#{int(r.get('frame', k))}", None,
                              tuple(r.get("faces", []))) for k, r in enumerate(rows)]
    return foot


def video_frames(foot: Footage, every: int = 1) -> Iterator[Tuple[FrameRef, Optional[np.ndarray]]]:
    """Decode ``foot``'s video; yields ``(ref, frame)`` for every ``every``-th frame (``None`` = undecodable).

    Unreadable as a whole (no codec, not a video) is a DataError naming the file.
    """
    cap = cv2.VideoCapture(str(foot.path))
    if not cap.isOpened():
        raise DataError(f"{foot.path}: OpenCV cannot open this video (corrupt, or no decoder for it); "
                        "check the file or extract its frames to a folder")
    truth = {r.index: r for r in foot.refs}
    i = 0
    try:
        while True:
            if i % every:
                if not cap.grab():
                    return
                i += 1
                continue
            ok, frame = cap.read()
            if not ok:
                return
            ref = truth.get(i) or FrameRef(i, f"{foot.path.name}#{i}")
            yield ref, (frame if isinstance(frame, np.ndarray) and frame.size else None)
            i += 1
    finally:
        cap.release()


def video_length(path: Path) -> int:
    """The container's frame count (0 when unknown); used only for the progress bar."""
    cap = cv2.VideoCapture(str(path))
    try:
        return max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)) if cap.isOpened() else 0
    finally:
        cap.release()


def load_frame(root: Path, ref: FrameRef) -> np.ndarray:
    """Decode one frame of a folder (uint8 gray or BGR); ValueError with the reason when unreadable."""
    return read_image(root / ref.name)
