"""Calibration and evaluation images: real target faces through the one ``preprocess``, with refusals.

INT8 ranges are only as good as the images they were measured on, so this module refuses rather
than guesses: no images, a folder whose images all fail to decode or preprocess, or fewer usable
images than ``min_images`` each stop calibration with a :class:`DataError` that says what to do.
Nothing here ever generates inputs. With ``detect=True`` the images are full camera frames and
faces are cut with the runtime's detector and crop policy (``detect_and_crop``), exactly as the
runtime will cut them. Imports numpy/OpenCV only.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import AbstractSet, List, Optional, Union

import numpy as np

from fer_edge.export.images import dataset_arrays, list_hash, load_folder
from fer_edge.runtime.contract import Contract
from fer_edge.runtime.errors import ConfigError, DataError

log = logging.getLogger(__name__)


@dataclass
class ImageSet:
    """Preprocessed inputs with where they came from; ``labels`` is -1 where unknown."""

    x: np.ndarray
    labels: np.ndarray
    paths: List[str]
    skipped: List[str] = field(default_factory=list)
    found: int = 0
    source: str = ""
    #: sha256 of each kept image's bytes (same order as ``paths``): what disjointness is checked on
    digests: List[str] = field(default_factory=list)
    #: images left out because another set (the gate's, the validation set) holds the same bytes
    excluded: int = 0

    @property
    def list_hash(self) -> str:
        return list_hash(self.paths)

    def __len__(self) -> int:
        return len(self.x)

    def summary(self) -> dict:
        """Count, where from and the list hash: what a report needs to say which images these were."""
        return {"count": len(self), "found": self.found, "source": self.source, "skipped": len(self.skipped),
                "list_sha256": self.list_hash, "excluded_as_overlap": self.excluded}


def record_digest(ds, rec) -> str:
    """sha256 of one record's image bytes (a file, or the decoded pixels a CSV dataset holds in memory).

    Content, not path: the same face copied into two folders is still the same face.
    """
    if rec.path in getattr(ds, "memory", {}):
        return hashlib.sha256(ds.memory[rec.path].tobytes()).hexdigest()
    try:
        return hashlib.sha256(ds.image_path(rec).read_bytes()).hexdigest()
    except OSError:  # unreadable: it will be skipped when decoded; keep it distinct by name
        return hashlib.sha256(f"unreadable:{rec.path}".encode()).hexdigest()


def _drop_digests(ds, exclude: Optional[AbstractSet[str]]):
    """(``ds`` without the records whose bytes are in ``exclude``, how many were dropped). Hashes every
    record only when there is something to exclude."""
    if not exclude:
        return ds, 0
    keep = [i for i, r in enumerate(ds.records) if record_digest(ds, r) not in exclude]
    return ds.subset(keep), len(ds) - len(keep)


def _arrays(ds, spec, limit: int, seed: int, progress: bool = False):
    """A seeded subset of ``ds`` through ``preprocess``: (x, y, paths, skipped, digests of the kept images)."""
    ds = ds.subset(_pick(len(ds), limit, seed))
    x, y, paths, skipped = dataset_arrays(ds, spec, progress=progress)
    by_path = {r.path: r for r in ds.records}
    return x, y, paths, skipped, [record_digest(ds, by_path[p]) for p in paths]


def _pick(n_total: int, n: int, seed: int) -> List[int]:
    """A reproducible spread-out subset (seeded shuffle, then sorted) so a huge dump is not just its first clip."""
    if n >= n_total:
        return list(range(n_total))
    return sorted(np.random.default_rng(seed).permutation(n_total)[:n].tolist())


def _detect_arrays(folder: Path, contract: Contract, limit: int, labelled: bool, seed: int,
                   exclude: Optional[AbstractSet[str]] = None) -> ImageSet:
    """Full frames → the largest face per frame (the model's crop policy, the runtime's ``detect_and_crop``).

    Goes through the footage cache of ``fer-edge data faces``, so frames that training (``data.detect``)
    or an earlier calibration already cut with the same policy are not detected again.
    """
    from fer_edge.data.faces import footage_dataset

    policy = contract.policy
    ds = footage_dataset(folder, policy, contract.labels, progress=False)
    if labelled:
        ds = ds.subset([i for i, r in enumerate(ds.records) if r.label >= 0])
    ds, dropped = _drop_digests(ds, exclude)
    x, y, paths, skipped, digests = _arrays(ds, contract.preprocess, limit, seed)
    return ImageSet(x, y, paths, skipped, digests=digests, excluded=dropped)


def load_images(folder: Union[str, Path], contract: Contract, num_images: int, min_images: int,
                detect: bool = False, labelled: bool = False, seed: int = 0, role: str = "calibration",
                exclude: Optional[AbstractSet[str]] = None) -> ImageSet:
    """Up to ``num_images`` usable faces from ``folder``; refuse empty, unusable and too-small sets.

    ``labelled=True`` (a labelled validation set) keeps only images whose folder names a class.
    ``exclude`` holds sha256 digests of image bytes another set already uses (the gate's): those images
    are left out before the subset is picked, so the two sets are disjoint by content.
    """
    if num_images < 1 or min_images < 0:
        raise ConfigError(f"{role}: num_images ({num_images}) must be >= 1 and min_images ({min_images}) >= 0")
    if min_images > num_images:
        raise ConfigError(f"{role}: min_images {min_images} is more than num_images {num_images}; "
                          "raise --num-images or lower --min-images")
    folder = Path(folder)
    if not folder.exists():
        raise DataError(f"{role} images: {folder} does not exist")
    ds = load_folder(folder, contract.labels)
    unreadable = [str(sk) for sk in ds.skipped]  # files the loader already refused while listing
    if labelled:
        ds = ds.subset([i for i, r in enumerate(ds.records) if r.label >= 0])
    found = len(ds) + len(unreadable)
    if found == 0:
        what = "labelled images (class-named folders such as happy/, sad/)" if labelled else "images"
        raise DataError(f"{role} images: no {what} found in {folder}; give a folder of face crops from the "
                        "deployment camera")
    if detect:
        result = _detect_arrays(folder, contract, num_images, labelled, seed, exclude)
    else:
        from fer_edge.data.faces import precut_finish

        ds.finish = precut_finish(folder, contract.policy)  # refuses crops cut under another policy; CLAHE as deployed
        ds, dropped = _drop_digests(ds, exclude)
        x, y, paths, skipped, digests = _arrays(ds, contract.preprocess, num_images, seed,
                                                progress=min(len(ds), num_images) > 200)
        result = ImageSet(x, y, paths, skipped, digests=digests, excluded=dropped)
    result.found, result.source = found, str(folder)
    result.skipped = unreadable + result.skipped
    if len(result) == 0:
        first = f" (first: {result.skipped[0]})" if result.skipped else ""
        raise DataError(f"{role} images: all {len(result.skipped)} images in {folder} failed to "
                        f"{'yield a face' if detect else 'decode or preprocess'}{first}; check the folder")
    if len(result) < min_images:
        raise DataError(f"{role} images: only {len(result)} usable image(s) in {folder} ({len(result.skipped)} "
                        f"skipped) but at least {min_images} are needed for reliable INT8 ranges; add more "
                        "deployment-camera faces or lower --min-images")
    if result.skipped:
        log.warning("%s: %d image(s) skipped, e.g. %s", folder, len(result.skipped), result.skipped[0])
    log.info("%s images: %d usable of %d found in %s (list sha256 %s…)", role, len(result), found, folder,
             result.list_hash[:12])
    return result
