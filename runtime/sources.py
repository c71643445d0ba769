"""Frame sources: camera index (V4L2), video file, image folder, RTSP/HTTP URL, GStreamer pipeline.

Every source yields :class:`Frame` objects and never hides a problem: a frame that cannot be decoded
comes through with ``image=None`` and a ``fault`` so the pipeline counts it. Live sources (camera,
URL, GStreamer) reconnect with exponential backoff when the stream drops, and give up with a
:class:`SourceError` after ``retries`` attempts; files end at their last frame.

Jetson CSI camera (needs an OpenCV built with GStreamer, as JetPack's is — the pip wheel is not)::

    nvarguscamerasrc sensor-id=0 ! video/x-raw(memory:NVMM),width=1280,height=720,framerate=30/1 !
    nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! appsink drop=1 max-buffers=1
"""
from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, List, Optional, Tuple, Union

import cv2
import numpy as np

from .errors import SourceError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm", ".tif", ".tiff", ".webp")
URL_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")
#: Consecutive failed reads inside a video file before we call it the end (a few corrupt packets are skipped).
FILE_MAX_BAD_READS = 5

CSI_PIPELINE = ("nvarguscamerasrc sensor-id={sensor} ! video/x-raw(memory:NVMM),width={width},height={height},"
                "framerate={fps}/1 ! nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! "
                "video/x-raw,format=BGR ! appsink drop=1 max-buffers=1")


def csi_pipeline(sensor: int = 0, width: int = 1280, height: int = 720, fps: int = 30) -> str:
    """The GStreamer pipeline string for a Jetson CSI camera (``--source "$(...)"``)."""
    return CSI_PIPELINE.format(sensor=sensor, width=width, height=height, fps=fps)


@dataclass
class Frame:
    """One captured frame. ``image`` may be ``None`` or malformed; ``fault`` names a source-side problem.

    ``path`` is the image file the frame was read from (folders and lists of stills), ``None`` for a
    video, camera or stream, whose frames are named by ``index`` and ``timestamp``.
    """

    index: int
    image: Any
    timestamp: float
    capture_ms: float = 0.0
    fault: Optional[str] = None
    path: Optional[str] = None


class CaptureSource:
    """A ``cv2.VideoCapture``-like stream (``read() -> (ok, img)``, ``isOpened()``, ``release()``).

    ``opener`` makes a fresh capture object; it is called again to reconnect a live stream. Tests
    pass a fake opener to inject raising, stalling and vanishing cameras.
    """

    def __init__(self, opener: Callable[[], Any], name: str, live: bool, retries: int = 5,
                 backoff_s: float = 0.5, max_backoff_s: float = 8.0, sleep: Callable[[float], None] = time.sleep):
        self.opener, self.name, self.live = opener, name, live
        self.retries, self.backoff_s, self.max_backoff_s = int(retries), float(backoff_s), float(max_backoff_s)
        self.sleep = sleep
        self.reconnects = 0
        self._cap: Any = None
        self._closed = False

    def _open_once(self) -> Any:
        try:
            cap = self.opener()
        except Exception as exc:  # noqa: BLE001 - backends raise anything; a failed open is retried
            log.debug("%s: open failed: %s", self.name, exc)
            return None
        if cap is None or not cap.isOpened():
            _release(cap)
            return None
        return cap

    def retry_plan(self) -> List[float]:
        """The waits (s) before each reconnect attempt: exponential backoff, capped at ``max_backoff_s``."""
        waits, delay = [], self.backoff_s
        for _ in range(self.retries if self.live else 0):
            waits.append(delay)
            delay = min(self.max_backoff_s, delay * 2.0)
        return waits

    def _open(self, first: bool) -> Any:
        cap = self._open_once()
        waits = self.retry_plan()
        attempts = len(waits)
        if cap is None and attempts and not self._closed:
            # Said once, with the whole plan: a dead camera must not print the same line per attempt.
            log.warning("%s: %s; retrying %d times over up to %.1f s (waits %s s)", self.name,
                        "cannot open" if first else "stream lost", attempts, sum(waits),
                        ", ".join(f"{w:g}" for w in waits))
        for attempt, delay in enumerate(waits, 1):
            if cap is not None or self._closed:
                break
            log.debug("%s: retry %d/%d in %.1fs", self.name, attempt, attempts, delay)
            self.sleep(delay)
            cap = self._open_once()
        if cap is None and not self._closed:
            tried = f" after {attempts} retries" if attempts else ""
            hint = (" — check the device/URL, that the camera is not used by another process, and (for a "
                    "GStreamer pipeline) that this OpenCV was built with GStreamer") if self.live else \
                " — check that the file exists and is a video OpenCV can decode"
            raise SourceError(f"{self.name}: cannot {'open' if first else 'reconnect'}{tried}{hint}")
        return cap

    def frames(self) -> Iterator[Frame]:
        self._cap = self._open(first=True)
        index, bad_reads, t_start = 0, 0, time.monotonic()
        while not self._closed:
            t0 = time.perf_counter()
            fault = None
            try:
                ok, img = self._cap.read()
            except Exception as exc:  # noqa: BLE001 - a driver error must not end the run
                ok, img, fault = False, None, "read_error"
                log.debug("%s: read raised %s", self.name, exc)
            ms = (time.perf_counter() - t0) * 1e3
            if ok:
                bad_reads = 0
                yield Frame(index, img, time.monotonic() - t_start, ms, None)
                index += 1
                continue
            if self.live:
                yield Frame(index, None, time.monotonic() - t_start, ms, fault or "source_lost")
                index += 1
                _release(self._cap)
                self._cap = None
                self.reconnects += 1
                self._cap = self._open(first=False)
                continue
            bad_reads += 1
            if fault is None and not self._more_frames_in_file():
                return
            if bad_reads > FILE_MAX_BAD_READS:
                return
            yield Frame(index, None, time.monotonic() - t_start, ms, fault or "decode_error")
            index += 1

    def _more_frames_in_file(self) -> bool:
        try:
            pos = self._cap.get(cv2.CAP_PROP_POS_FRAMES)
            total = self._cap.get(cv2.CAP_PROP_FRAME_COUNT)
        except Exception:  # noqa: BLE001 - fakes and some backends lack these properties
            return False
        return bool(total and total > 0 and pos + 1 < total)

    def close(self) -> None:
        self._closed = True
        _release(self._cap)
        self._cap = None


def _release(cap: Any) -> None:
    if cap is not None:
        try:
            cap.release()
        except Exception:  # noqa: BLE001 - closing must never raise
            pass


def list_images(folder: Union[str, os.PathLike]) -> List[Path]:
    """THE rule for what a frames folder holds: every image file below it, recursively, in path order.

    Sub-folders count (class folders of frames, one folder per camera or day), and so does anything
    inside them; a path part that starts with a dot (``.cache/``, ``.DS_Store``, an editor's temp file)
    is skipped. ``fer-edge run --source DIR``, ``fer-edge data faces --in DIR`` and ``calibrate
    --detect`` list the same files for the same folder (``tests/test_runtime_stills.py`` checks it).
    """
    root = Path(folder)
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


def read_image_file(path: Path) -> Tuple[Any, Optional[str], float]:
    """``(image or None, fault, ms)``: a missing, unreadable or non-image file is a ``decode_error`` frame.

    Decoded the way training reads frames (``IMREAD_UNCHANGED``, 16-bit scaled to 8, a JPEG without
    its end marker refused rather than decoded with a grey tail), so a still gives the runtime the
    pixels ``fer-edge data faces`` cut its training crops from.
    """
    t0 = time.perf_counter()
    img = None
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
        truncated_jpeg = data[:2].tobytes() == b"\xff\xd8" and b"\xff\xd9" not in data[-64:].tobytes()
        if data.size and not truncated_jpeg:
            img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
        if img is not None and img.dtype == np.uint16:
            img = (img >> 8).astype(np.uint8)
    except (OSError, ValueError, cv2.error) as exc:
        log.debug("%s: cannot read (%s)", path, exc)
        img = None
    return img, None if img is not None else "decode_error", (time.perf_counter() - t0) * 1e3


class ImageListSource:
    """Image files as frames, each naming its file (``Frame.path``); an unreadable one is a ``decode_error``.

    ``stills`` (the default) means the images are unrelated photos: the pipeline detects on every one
    and carries no track or smoothed label from one to the next. ``sequence=True`` says they are the
    frames of one video (exported in name order), which the pipeline then tracks and smooths.
    """

    live = False

    def __init__(self, paths: Iterable[Union[str, os.PathLike]], name: str = "<images>", sequence: bool = False):
        self.files: List[Path] = [Path(p) for p in paths]
        self.name = name
        self.stills = not sequence
        self._closed = False

    def frames(self) -> Iterator[Frame]:
        t_start = time.monotonic()
        for index, path in enumerate(self.files):
            if self._closed:
                return
            img, fault, ms = read_image_file(path)
            yield Frame(index, img, time.monotonic() - t_start, ms, fault, str(path))

    def close(self) -> None:
        self._closed = True


class ImageFolderSource(ImageListSource):
    """The images of a folder tree (:func:`list_images`), as stills unless ``sequence``."""

    def __init__(self, folder: Union[str, os.PathLike], sequence: bool = False):
        self.folder = Path(folder)
        files = list_images(self.folder)
        if not files:
            raise SourceError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder or its "
                              "sub-folders; give a folder of frames, a video file, a camera index or a URL")
        super().__init__(files, name=str(folder), sequence=sequence)


class IterableSource:
    """Frames from any Python iterable of images or image paths (library use, tests).

    ``live`` picks the queue policy. The frames are taken as one stream (tracked and smoothed); a list
    of paths handed to :func:`open_source` becomes an :class:`ImageListSource` of stills instead.
    """

    def __init__(self, images: Iterable[Any], name: str = "<iterable>", live: bool = False):
        self.images, self.name, self.live = images, name, live
        self._closed = False

    def frames(self) -> Iterator[Frame]:
        t_start = time.monotonic()
        it = iter(self.images)
        index = 0
        while not self._closed:
            t0 = time.perf_counter()
            try:
                img = next(it)
            except StopIteration:
                return
            if isinstance(img, (str, os.PathLike)):  # a path among the images: read the file it names
                path = str(img)
                img, fault, ms = read_image_file(Path(path))
                yield Frame(index, img, time.monotonic() - t_start, ms, fault, path)
            else:
                yield Frame(index, img, time.monotonic() - t_start, (time.perf_counter() - t0) * 1e3, None)
            index += 1

    def close(self) -> None:
        self._closed = True


def _camera_opener(index: int) -> Callable[[], Any]:
    api = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
    return lambda: cv2.VideoCapture(index, api)


def describe_source(spec: Union[str, int, os.PathLike]) -> str:
    """``camera``, ``url``, ``gstreamer``, ``folder``, ``image`` or ``video`` for a ``--source`` value."""
    s = str(spec).strip()
    if isinstance(spec, int) or (s.isascii() and s.isdigit()):  # "¹".isdigit() is True but int() refuses it
        return "camera"
    if s.lower().startswith(URL_SCHEMES):
        return "url"
    if "!" in s:
        return "gstreamer"
    if Path(s).is_dir():
        return "folder"
    if Path(s).suffix.lower() in IMAGE_SUFFIXES:
        return "image"
    return "video"


def open_source(spec: Union[str, int, os.PathLike, Iterable[Any]], retries: int = 5, backoff_s: float = 0.5,
                live: Optional[bool] = None, sequence: bool = False) -> Any:
    """A frame source for ``--source``: camera index, video file, image folder or file, URL or GStreamer string.

    A list or tuple of image paths is a list of stills; any other iterable (numpy images, a generator)
    is wrapped as one stream. ``live`` overrides the guess (live sources reconnect and may drop frames
    when inference is slower than capture). ``sequence`` says a folder or list of images holds the
    frames of one video (tracked and smoothed) rather than unrelated stills.
    """
    if not isinstance(spec, (str, int, os.PathLike)):
        if isinstance(spec, np.ndarray):
            spec = [spec]
        if isinstance(spec, (list, tuple)) and spec and all(isinstance(x, (str, os.PathLike)) for x in spec):
            return ImageListSource(spec, name=f"{len(spec)} image file(s)", sequence=sequence)
        return IterableSource(spec, live=bool(live))
    kind = describe_source(spec)
    s = str(spec).strip()
    if kind == "camera":
        return CaptureSource(_camera_opener(int(s)), f"camera {s}", live=True if live is None else live,
                             retries=retries, backoff_s=backoff_s)
    if kind == "url":
        return CaptureSource(lambda: cv2.VideoCapture(s, cv2.CAP_FFMPEG), s, live=True if live is None else live,
                             retries=retries, backoff_s=backoff_s)
    if kind == "gstreamer":
        if "GStreamer:                   YES" not in cv2.getBuildInformation():
            raise SourceError("this OpenCV was built without GStreamer (the pip wheels are); use the system "
                              "OpenCV of JetPack (`sudo apt install python3-opencv`) for a GStreamer/CSI source")
        return CaptureSource(lambda: cv2.VideoCapture(s, cv2.CAP_GSTREAMER), "gstreamer pipeline",
                             live=True if live is None else live, retries=retries, backoff_s=backoff_s)
    if kind == "folder":
        return ImageFolderSource(s, sequence=sequence)
    if not Path(s).is_file():
        raise SourceError(f"{s}: no such video file, image, folder, camera index or URL")
    if kind == "image":
        return ImageListSource([s], name=s, sequence=sequence)
    return CaptureSource(lambda: cv2.VideoCapture(s), s, live=bool(live), retries=retries, backoff_s=backoff_s)
