"""``extract_faces``: a frames folder or video → a dataset of face crops, in parallel, with a progress bar.

Frames are processed in chunks by a pool of worker processes (each builds its own detector once);
a folder's frames are decoded inside the workers, a video's frames are decoded in order by the main
process and shipped to the workers with a bounded number of chunks in flight, so a long clip never
sits in memory. The whole output is written into a temporary sibling folder and renamed into place
at the end, so an interrupted run never leaves a half dataset that looks finished.
"""
from __future__ import annotations

import logging
import os
import shutil
import time
from collections import Counter, deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Deque, Dict, Iterable, Iterator, List, Optional, Tuple

import cv2
import numpy as np

from fer_edge.runtime.atomic import partial_dir
from fer_edge.runtime.bars import bars_off
from fer_edge.runtime.crop import CropPolicy
from fer_edge.runtime.detect import make_detector
from fer_edge.runtime.errors import DataError

from .detect_frame import FrameOutcome, process_frame
from .frames import Footage, FrameRef, load_frame, open_footage, video_frames, video_length

log = logging.getLogger("fer_edge.data.faces")

#: Written last into a finished output folder; a folder without it is not a finished extraction.
SUMMARY_NAME = "summary.json"
CHUNK = 8

_WORKER: Dict[str, Any] = {}


@dataclass
class Extraction:
    """Everything one run produced, before it is written to the report files."""

    footage: Footage
    policy: CropPolicy
    every: int
    layout: str
    outcomes: List[FrameOutcome] = field(default_factory=list)
    seconds: float = 0.0
    workers: int = 1

    @property
    def faces(self) -> int:
        return sum(len(o.rows) for o in self.outcomes)

    def counters(self) -> Dict[str, int]:
        c: Counter = Counter()
        for o in self.outcomes:
            c.update(o.counters)
        return dict(c)


def choose_layout(foot: Footage) -> str:
    """``truth`` (synthetic ground truth → labels.csv), ``classes`` (class sub-folders) or ``flat`` (unlabelled)."""
    if foot.has_truth:
        return "truth"
    return "classes" if foot.labelled else "flat"


def _init_worker(policy: Dict[str, Any], detect_width: int) -> None:
    cv2.setNumThreads(1)
    _WORKER["policy"] = CropPolicy.from_dict(policy)
    _WORKER["detector"] = make_detector(_WORKER["policy"], detect_width=detect_width)


def _folder_chunk(job: Tuple[str, List[FrameRef], str, str]) -> List[FrameOutcome]:
    root, refs, out_root, layout = job
    out = []
    for ref in refs:
        try:
            frame, err = load_frame(Path(root), ref), None
        except (ValueError, OSError, DataError, cv2.error) as exc:
            frame, err = None, f"unreadable frame ({exc})"
        out.append(process_frame(frame, ref, _WORKER["detector"], _WORKER["policy"], Path(out_root), layout, err))
    return out


def _video_chunk(job: Tuple[List[Tuple[FrameRef, Optional[np.ndarray]]], str, str]) -> List[FrameOutcome]:
    items, out_root, layout = job
    return [process_frame(frame, ref, _WORKER["detector"], _WORKER["policy"], Path(out_root), layout,
                          None if frame is not None else "undecodable video frame") for ref, frame in items]


def _chunked(it: Iterable[Any], n: int) -> Iterator[List[Any]]:
    buf: List[Any] = []
    for x in it:
        buf.append(x)
        if len(buf) >= n:
            yield buf
            buf = []
    if buf:
        yield buf


def _jobs(foot: Footage, out_root: Path, layout: str, every: int) -> Iterator[Tuple[Any, Tuple]]:
    if foot.kind == "folder":
        for refs in _chunked(foot.refs, CHUNK):
            yield _folder_chunk, (str(foot.path), refs, str(out_root), layout)
    else:
        for items in _chunked(video_frames(foot, every), CHUNK):
            yield _video_chunk, (items, str(out_root), layout)


def _run(jobs: Iterator[Tuple[Any, Tuple]], workers: int, policy: CropPolicy, detect_width: int,
         bar: Any) -> List[FrameOutcome]:
    """Run ``jobs`` in order on ``workers`` processes (in-process for 1), at most 2×workers chunks in flight."""
    outcomes: List[FrameOutcome] = []
    if workers <= 1:
        saved = dict(_WORKER)
        _WORKER.update(policy=policy, detector=make_detector(policy, detect_width=detect_width))
        try:
            for fn, job in jobs:
                res = fn(job)
                outcomes += res
                bar.update(len(res))
        finally:
            _WORKER.clear()
            _WORKER.update(saved)
        return outcomes
    # spawn, not fork: a fork after OpenCV's thread pool has run (video decode, synth rendering) can hang
    # the children forever inside OpenCV; a fresh interpreter costs ~0.5 s per worker, once.
    pending: Deque[Future] = deque()
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"), initializer=_init_worker,
                             initargs=(policy.to_dict(), detect_width)) as pool:
        for fn, job in jobs:
            pending.append(pool.submit(fn, job))
            while len(pending) >= 2 * workers:
                res = pending.popleft().result()
                outcomes += res
                bar.update(len(res))
        while pending:
            res = pending.popleft().result()
            outcomes += res
            bar.update(len(res))
    return outcomes


def _progress(total: Optional[int], desc: str, enabled: bool) -> Any:
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a core dependency
        class _Null:
            def update(self, n: int) -> None: ...
            def close(self) -> None: ...
        return _Null()
    return tqdm(total=total or None, desc=desc, unit="frame", disable=not enabled or bars_off(), leave=False)


def prepare_out(out_dir: Path) -> Path:
    """A fresh temporary sibling of ``out_dir``; refuses to replace a folder that is not an earlier extraction."""
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or (any(out_dir.iterdir())
                                                      and not (out_dir / SUMMARY_NAME).is_file())):
        raise DataError(f"{out_dir}: exists and is not an earlier `fer-edge data faces` output; "
                        "choose an empty or new --out folder")
    tmp = partial_dir(out_dir)
    tmp.mkdir(parents=True)
    return tmp


def commit_out(tmp: Path, out_dir: Path, replace: bool = True) -> Path:
    """Swap the finished temporary folder into place.

    ``replace=True`` (``data faces --out``) removes an earlier output first. ``replace=False`` (the
    cache) keeps a finished entry another process committed meanwhile (two training ranks extracting
    the same footage), so no reader ever sees its folder disappear.
    """
    if (out_dir / SUMMARY_NAME).is_file() and not replace:
        shutil.rmtree(tmp, ignore_errors=True)
        return out_dir
    if out_dir.exists():
        shutil.rmtree(out_dir)
    try:
        os.replace(tmp, out_dir)
    except OSError:
        if replace or not (out_dir / SUMMARY_NAME).is_file():
            raise
        shutil.rmtree(tmp, ignore_errors=True)  # lost the race to an identical entry
    return out_dir


def extract_faces(source: Any, out_dir: Any, policy: CropPolicy, every: int = 1, workers: int = 2,
                  detect_width: int = 640, progress: bool = True, contact_sheet: bool = True,
                  input_sha256: str = "", replace: bool = True) -> Extraction:
    """Detect and crop every face of ``source`` (frames folder or video) into ``out_dir``.

    Writes ``faces/`` (the crop dataset: flat, class sub-folders, or ``images/`` + ``labels.csv`` when
    the source has ``frames.jsonl`` ground truth), ``faces.csv``, ``no_face.txt``, ``skipped.txt``,
    ``contact_sheet.png`` and ``summary.json`` (last). Frames with no face and unreadable frames are
    counted and listed; a source in which no face is found at all raises :class:`DataError`.
    ``replace=False`` keeps an existing finished ``out_dir`` (see :func:`commit_out`).
    """
    from .report import write_reports

    t0 = time.perf_counter()
    foot = open_footage(source, every)
    layout = choose_layout(foot)
    workers = max(1, int(workers))
    total = len(foot.refs) if foot.kind == "folder" else (video_length(foot.path) + every - 1) // every
    workers = min(workers, max(1, -(-total // CHUNK)))  # no process start-up for a handful of frames
    log.info("data faces: %s (%s%s) → %s; detector %s, min_face %d, margin %.2f, square %s, select %s, "
             "every %d, %d worker(s)", foot.path, foot.kind, ", ground truth" if foot.has_truth else "",
             out_dir, policy.detector, policy.min_face, policy.margin, policy.square, policy.select, every, workers)
    out_dir = Path(out_dir)
    tmp = prepare_out(out_dir)
    try:
        (tmp / "faces").mkdir()
        bar = _progress(total, f"faces {foot.path.name}", progress)
        try:
            outcomes = _run(_jobs(foot, tmp, layout, every), workers, policy, detect_width, bar)
        finally:
            bar.close()
        ext = Extraction(foot, policy, every, layout, outcomes, time.perf_counter() - t0, workers)
        read = [o for o in outcomes if o.error is None or o.rows]
        if not read:
            raise DataError(f"{foot.path}: no readable frame among {len(outcomes)} "
                            f"({outcomes[0].name}: {outcomes[0].error})" if outcomes else
                            f"{foot.path}: no frame could be decoded; check the file")
        if ext.faces == 0:
            raise DataError(f"{foot.path}: no face found — all {len(read)} readable frames failed to yield a face "
                            f"(detector {policy.detector}, min_face {policy.min_face}); try a smaller crop.min_face "
                            "(e.g. --policy min_face=24) or another detector (--policy detector=yunet "
                            "yunet_model=face_detection_yunet.onnx)")
        write_reports(ext, tmp, contact_sheet=contact_sheet, input_sha256=input_sha256)
        commit_out(tmp, out_dir, replace)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ext
