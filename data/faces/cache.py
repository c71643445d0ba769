"""Faces detected once per (footage content, crop policy): the cache training, calibration and eval share.

Detection is the slow part of using footage (a 640×480 frame costs tens of milliseconds on a
small CPU), and training, ``calibrate --detect`` and ``eval --detect`` all read the same recordings.
The cache key is a SHA-256 of the bytes of every frame (or the video) and its ground truth, plus
every crop-policy field and ``every``: renaming the folder keeps the cache, changing one frame or
the margin makes a new entry. Entries are ordinary ``data faces`` outputs under ``<cache_root>/<key>``.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Optional, Sequence

from fer_edge.data.dataset import FaceDataset
from fer_edge.runtime.crop import CropPolicy
from fer_edge.runtime.errors import ConfigError, DataError

from .extract import SUMMARY_NAME, extract_faces
from .frames import open_footage

log = logging.getLogger("fer_edge.data.faces")

#: Bump when the extraction's output changes for the same input and policy (invalidates old entries).
CACHE_VERSION = 1
#: Where calibration and eval (which have no ``data.root``) keep entries; ``$FER_EDGE_FACES_CACHE`` moves it.
DEFAULT_CACHE_ROOT = Path("runs/data/faces")


def default_cache_root() -> Path:
    return Path(os.environ.get("FER_EDGE_FACES_CACHE") or DEFAULT_CACHE_ROOT)


def _file_sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def content_hash(source: Any) -> str:
    """SHA-256 over the relative names and bytes of the frames (or video) and ground truth of ``source``."""
    foot = open_footage(source, 1)
    h = hashlib.sha256(f"fer-edge-footage:{foot.kind}".encode())
    base = foot.path if foot.kind == "folder" else foot.path.parent
    for f in foot.files():
        h.update(f.relative_to(base).as_posix().encode() + b"\0")
        h.update(_file_sha256(f).encode())
    return h.hexdigest()


def cache_key(input_sha256: str, policy: CropPolicy, every: int = 1) -> str:
    """Key of a cache entry: input content + every policy field (+ the YuNet model's bytes) + ``every``."""
    pol = policy.to_dict()
    if policy.detector == "yunet" and policy.yunet_model and Path(policy.yunet_model).is_file():
        pol["yunet_model"] = _file_sha256(Path(policy.yunet_model))
    key = {"v": CACHE_VERSION, "input": input_sha256, "policy": pol, "every": int(every)}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def cached_faces(source: Any, policy: CropPolicy, cache_root: Any = None, every: int = 1, workers: int = 2,
                 progress: bool = True) -> Path:
    """The ``data faces`` output folder for ``source`` under ``policy``, extracting only on a cache miss."""
    root = Path(cache_root) if cache_root is not None else default_cache_root()
    digest = content_hash(source)
    out = root / cache_key(digest, policy, every)
    if (out / SUMMARY_NAME).is_file():
        log.info("faces of %s: cached at %s", source, out)
        return out
    extract_faces(source, out, policy, every=every, workers=workers, progress=progress, input_sha256=digest,
                  replace=False)
    return out


def footage_dataset(source: Any, policy: CropPolicy, labels: Sequence[str], contempt: bool = False,
                    cache_root: Any = None, name: Optional[str] = None, every: int = 1, workers: int = 2,
                    progress: bool = True) -> FaceDataset:
    """Footage as a :class:`FaceDataset` of crops (labelled where the footage has labels), via the cache.

    This is what ``data.detect: true`` resolves a ``data.target*`` frames folder or video to, and what
    ``calibrate --detect`` and ``eval --detect`` read, so all three cut the same faces once.
    """
    from fer_edge.data.loaders import load_dataset

    out = cached_faces(source, policy, cache_root, every, workers, progress)
    summ = json.loads((out / SUMMARY_NAME).read_text(encoding="utf-8"))
    if summ.get("faces", 0) == 0:  # pragma: no cover - extract_faces refuses this already
        raise DataError(f"{source}: no face found; try a smaller crop.min_face or another detector")
    fmt = {"truth": "auto", "classes": "imagefolder", "flat": "unlabelled"}.get(summ.get("layout"), "auto")
    return load_dataset(out / "faces", fmt, labels, contempt, name=name or Path(str(source)).name)


def check_crop_folder(path: Any, policy: CropPolicy) -> None:
    """Refuse crops that ``data faces`` cut under a policy other than ``policy`` (the model's or the config's).

    A ``data faces`` output records its policy in ``summary.json``; ``path`` may be that output or its
    ``faces/`` folder. A different margin, squareness, CLAHE or alignment is the silent accuracy loss the
    crop policy exists to prevent, so it is a :class:`ConfigError` that says what to change. Folders that
    are not ``data faces`` outputs are not checked (their policy is unknown).
    """
    p = Path(str(path))
    summ = next((c / SUMMARY_NAME for c in (p, p.parent) if (c / SUMMARY_NAME).is_file()), None)
    if summ is None:
        return
    try:
        made = json.loads(summ.read_text(encoding="utf-8"))
        if made.get("kind") != "faces":
            return
        cut = CropPolicy.from_dict(made["policy"])
    except (ValueError, KeyError, TypeError, ConfigError):
        return
    want = policy
    diff = want.compatible_with(cut)
    if diff:
        raise ConfigError(f"{p}: these crops were cut by `data faces` under another crop policy ({diff}); re-run "
                          f"`fer-edge data faces` with --policy {' '.join(f'{k}={v}' for k, v in _pixel_keys(want))} "
                          "or train/export the model with the crops' policy")


def _pixel_keys(policy: CropPolicy):
    return [(k, str(v).lower()) for k, v in policy.pixels().items()]


def cut_by_fer_edge(path: Any) -> bool:
    """Whether ``path`` holds crops a fer-edge tool cut with :func:`~fer_edge.runtime.crop.crop_face` (a
    ``data faces`` output or a synthetic-world folder): their crop finish is already in their pixels."""
    from fer_edge.data.sources import is_synthetic

    p = Path(str(path))
    return is_synthetic(p) or any((c / SUMMARY_NAME).is_file() for c in (p, p.parent))


def precut_finish(path: Any, policy: CropPolicy) -> Optional[CropPolicy]:
    """The crop finish a folder of pre-cut faces needs at decode time (``FaceDataset.finish``), or None.

    Faces cut by fer-edge are finished already (and refused when cut under another policy, as
    :func:`check_crop_folder`); faces cut by anyone else (FER2013, BUAA, a vendor's crops) get the policy's
    finish -- CLAHE when ``crop.clahe`` -- exactly as the runtime applies it to a detected face.
    """
    check_crop_folder(path, policy)
    if cut_by_fer_edge(path):
        return None
    return policy if policy.clahe else None
