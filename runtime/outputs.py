"""Where ``fer-edge run`` writes, checked before the first frame, and annotated stills (``--save-dir``).

A run over a long video must not process every frame and then die with a traceback because ``--out``
names a folder, sits under a file, or points somewhere read-only (``/proc``): every output path is
tried here first, and a problem is one :class:`~fer_edge.runtime.errors.ConfigError` line naming the
flag and what to do. Annotated stills are written the way detection tools write them: one image per
input, named after it, box and smoothed label drawn on.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Optional, Sequence, Union

import cv2
import numpy as np

from .atomic import atomic_write
from .errors import ConfigError
from .results import VIDEO_SUFFIXES, FaceResult, annotate

PathLike = Union[str, os.PathLike]


def _writable_folder(folder: Path, flag: str, target: PathLike) -> None:
    """Create ``folder`` (and parents) if needed and prove a file can be created in it."""
    for parent in [folder, *folder.parents]:
        if parent.exists() and not parent.is_dir():
            raise ConfigError(f"{flag} {target}: {parent} is a file, not a folder; choose another path")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".fer-edge-probe.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(f"{flag} {target}: cannot write in {folder} ({exc.strerror or exc}); choose a "
                          "writable folder") from exc


def check_output_file(path: PathLike, flag: str) -> Path:
    """Refuse an output file path that cannot be written, before any work is done."""
    p = Path(path)
    if str(path).strip() == "" or p.name in ("", ".", ".."):
        raise ConfigError(f"{flag} {path!r}: give a file name")
    if p.is_dir():
        raise ConfigError(f"{flag} {path}: is an existing folder; give a file name (e.g. {p / 'results.jsonl'})")
    _writable_folder(p.parent if str(p.parent) else Path("."), flag, path)
    return p


def check_video_out(path: PathLike) -> Path:
    """``--video-out``: a writable ``.mp4``/``.avi`` this OpenCV can encode (tried on a tiny temp file)."""
    p = check_output_file(path, "--video-out")
    if p.suffix.lower() not in VIDEO_SUFFIXES:
        raise ConfigError(f"--video-out {path}: give a file name ending in {' or '.join(VIDEO_SUFFIXES)} "
                          "(the suffix picks the codec: mp4v or Motion-JPEG)")
    fd, probe = tempfile.mkstemp(prefix=".fer-edge-probe.", suffix=p.suffix, dir=p.parent)
    os.close(fd)
    try:
        fourcc = cv2.VideoWriter_fourcc(*("mp4v" if p.suffix.lower() == ".mp4" else "MJPG"))
        writer = cv2.VideoWriter(probe, fourcc, 25.0, (64, 64))
        ok = writer.isOpened()
        writer.release()
    finally:
        with contextlib.suppress(OSError):
            os.unlink(probe)
    if not ok:
        raise ConfigError(f"--video-out {path}: this OpenCV build cannot encode {p.suffix} video; try .avi")
    return p


def check_output_dir(path: PathLike, flag: str) -> Path:
    """An output folder: created when missing, refused when it is a file or not writable."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ConfigError(f"{flag} {path}: is a file, not a folder; choose another path")
    _writable_folder(p, flag, path)
    return p


class ImageSink:
    """``--save-dir``: one annotated JPEG per frame, named after its input so it can be found again.

    Stills keep their file's stem (``000003_IMG_0042.jpg``: the index keeps two ``img.png`` from
    different folders apart and the order of the input); video and camera frames are
    ``frame_000123.jpg``. Written atomically, like every other output.
    """

    def __init__(self, folder: PathLike, quality: int = 90):
        self.folder = check_output_dir(folder, "--save-dir")
        self.quality = int(quality)
        self.written = 0

    def name_for(self, frame: int, path: Optional[str]) -> str:
        if path:
            stem = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in Path(path).stem)[:80]
            return f"{int(frame):06d}_{stem.lstrip('.') or 'image'}.jpg"
        return f"frame_{int(frame):06d}.jpg"

    def write(self, image: Optional[np.ndarray], faces: Sequence[FaceResult], frame: int,
              path: Optional[str] = None) -> Optional[Path]:
        if image is None:
            return None
        ok, buf = cv2.imencode(".jpg", annotate(image, faces), [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:  # pragma: no cover - a uint8 BGR image always encodes
            raise OSError(f"--save-dir: JPEG encoding failed for frame {frame}")
        out = atomic_write(self.folder / self.name_for(frame, path), buf.tobytes())
        self.written += 1
        return out
