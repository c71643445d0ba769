"""``generate``: write a synthetic dataset folder (crops, scenes or video) in parallel, atomically.

Everything is written into a hidden ``.<name>.partial-<host>-<pid>`` folder next to the target and renamed
into place at the end, so an interrupted run never leaves a folder that looks finished. Files inside
the partial folder are written plainly (an fsync per PNG would cost more than rendering it); the
folder rename is the commit point.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from fer_edge import __version__
from fer_edge.runtime.atomic import atomic_write, partial_dir
from fer_edge.runtime.bars import bars_off
from fer_edge.runtime.crop import CropPolicy
from fer_edge.runtime.errors import DataError

from .domains import get_domain
from .sample import render_crop

log = logging.getLogger("fer_edge.data.synth")

KINDS = ("crops", "scenes", "video")
CROP_COLUMNS = ["path", "expression", "intensity", "identity", "yaw", "pitch", "roll", "domain"]
SCENE_COLUMNS = ["path", "x", "y", "w", "h", "expression", "intensity", "identity", "yaw", "pitch", "roll",
                 "domain"]
MARKER = "synth.json"
#: zlib level 1 with the run-length strategy: PNG is lossless, so this changes only speed and size. Sensor
#: noise leaves deflate's string matching little to find; on 112-px crops this encodes ~40 % faster than
#: the default strategy at level 3, with files of similar size (smaller for studio and cabin-nir).
PNG = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]
Identities = Union[int, Sequence[int]]


def identity_pool(identities: Identities, offset: int = 0) -> List[int]:
    """``K`` → ids ``offset … offset+K-1``; an explicit sequence is used as given."""
    if isinstance(identities, (int, np.integer)):
        if int(identities) < 1:
            raise DataError(f"identities: {identities} must be >= 1")
        return list(range(int(offset), int(offset) + int(identities)))
    ids = [int(i) for i in identities]
    if not ids:
        raise DataError("identities: the identity pool is empty")
    return ids


def write_png(path: Path, img: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", img, PNG)
    if not ok:  # pragma: no cover - OpenCV always encodes uint8 images
        raise DataError(f"{path}: PNG encoding failed")
    path.write_bytes(buf.tobytes())


def _crop_chunk(job: Tuple[str, Sequence[int], int, List[int], int, dict, str]) -> List[Dict[str, str]]:
    domain, indices, seed, idents, size, policy, images = job
    cv2.setNumThreads(1)
    pol = CropPolicy.from_dict(policy)
    rows = []
    for i in indices:
        img, truth = render_crop(domain, i, seed, idents, size, pol)
        rel = f"images/{i:06d}.png"
        write_png(Path(images).parent / rel, img)
        rows.append({"path": rel, **truth.row()})
    return rows


def crop_chunk(count: int, workers: int) -> int:
    """Crops per worker job: at least 8 per worker and 8 jobs (a job costs ~1 ms of IPC), at most 32.

    A crop takes a few milliseconds, so a 32-crop job is ~0.1 s: the pool stays balanced to the end
    (the last jobs finish close together even on a machine shared with other work) while the
    per-job overhead stays around 1 %. Samples are seeded by index, so the split never changes bytes.
    """
    return max(8, min(32, count // (workers * 8)))


def _single_threaded() -> bool:
    """True when this process runs one thread, i.e. forking it is safe.

    A fork taken while another thread (torch's pool, tqdm's monitor, an executor) holds a lock leaves
    the child waiting on that lock forever; then forkserver/spawn children, which start clean, are used.
    """
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


def run_chunks(fn, jobs: List[tuple], workers: int, desc: str) -> List:
    """Map ``fn`` over ``jobs`` in ``workers`` processes (in order), with a progress bar."""
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        def tqdm(it, **_kw):
            return it
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    if workers > 1 and main_file and not Path(main_file).is_file():  # `python -` or a REPL: spawn cannot start
        log.warning("running %s in this process: worker processes cannot start from %s", desc, main_file)
        workers = 1
    if workers <= 1 or len(jobs) <= 1:
        return [fn(j) for j in tqdm(jobs, desc=desc, leave=False, disable=len(jobs) < 4 or bars_off())]
    method = "fork" if _single_threaded() and "fork" in get_all_start_methods() else (
        "forkserver" if "forkserver" in get_all_start_methods() else "spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context(method)) as pool:
        return list(tqdm(pool.map(fn, jobs), total=len(jobs), desc=desc, leave=False,
                         disable=len(jobs) < 4 or bars_off()))


def write_csv(path: Path, columns: Sequence[str], rows: Sequence[Dict[str, str]]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    atomic_write(path, buf.getvalue())


def _prepare(out_dir: Path) -> Path:
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / MARKER).is_file():
        raise DataError(f"{out_dir}: exists and is not a fer-edge synthetic dataset; choose an empty or new folder")
    tmp = partial_dir(out_dir)
    (tmp / "images").mkdir(parents=True)
    return tmp


def _commit(tmp: Path, out_dir: Path, meta: dict) -> Path:
    atomic_write(tmp / MARKER, json.dumps(meta, indent=2, sort_keys=True) + "\n")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    return out_dir


def generate(domain: str, kind: str, out_dir: Union[str, Path], count: int, identities: Identities = 60,
             size: int = 112, seed: int = 0, workers: int = 2, crop: Optional[CropPolicy] = None,
             frames: int = 300) -> Path:
    """Write ``count`` synthetic samples of ``domain`` as ``kind`` into ``out_dir`` and return it.

    ``crops``: ``count`` face crops (``size``×``size``) cut with :func:`crop_face` under ``crop``
    (default: the runtime's default policy). ``scenes``: ``count`` 640×480 frames with 0–3 faces.
    ``video``: one clip of ``count`` frames (``frames`` is used when ``count`` is 0). ``identities``
    is a pool size or an explicit list of identity numbers (disjoint lists → disjoint people).
    Same arguments → byte-identical files, whatever ``workers`` is.
    """
    spec = get_domain(domain)
    if kind not in KINDS:
        raise DataError(f"unknown kind {kind!r}; choose one of {list(KINDS)}")
    if int(count) < 0 or (kind != "video" and int(count) < 1):
        raise DataError(f"count: {count} must be >= 1")
    if not 16 <= int(size) <= 1024:
        raise DataError(f"size: {size} must be in 16..1024")
    policy = crop or CropPolicy()
    idents = identity_pool(identities)
    out_dir = Path(out_dir)
    workers = max(1, int(workers))
    meta = {"producer": "fer-edge", "version": __version__, "domain": spec.name, "kind": kind, "count": int(count),
            "identities": idents if len(idents) <= 64 else [idents[0], "…", idents[-1], len(idents)],
            "size": int(size), "seed": int(seed), "crop": policy.to_dict()}
    t0 = time.time()
    log.info("synth %s %s: %d → %s (%d workers)", spec.name, kind, count, out_dir, workers)
    tmp = _prepare(out_dir)
    try:
        if kind == "crops":
            step = crop_chunk(int(count), workers)
            jobs = [(spec.name, range(s, min(int(count), s + step)), int(seed), idents, int(size),
                     policy.to_dict(), str(tmp / "images")) for s in range(0, int(count), step)]
            rows = [r for chunk in run_chunks(_crop_chunk, jobs, workers, f"synth {spec.name}") for r in chunk]
            write_csv(tmp / "labels.csv", CROP_COLUMNS, rows)
        elif kind == "scenes":
            from .scenes import write_scenes

            write_scenes(spec, tmp, int(count), idents, int(seed), workers)
        else:
            from .scenes import write_video

            meta["video"] = write_video(spec, tmp, int(count) or int(frames), idents, int(seed))
            (tmp / "images").rmdir()  # a clip has no image files
        _commit(tmp, out_dir, meta)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    dt = time.time() - t0
    log.info("synth %s %s: done, %d in %.1f s (%.0f/s)", spec.name, kind, count, dt, count / max(dt, 1e-6))
    return out_dir
