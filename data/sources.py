"""``load_split(cfg, role)``: the dataset behind each role of the config's ``data:`` section.

A role's value is a path (loaded with :func:`load_dataset`) or ``synth:<domain>``, which is generated
once and cached under ``data.root`` in a folder named by a hash of everything that decides its
pixels, so a changed setting regenerates and an unchanged one is free. Identity pools are disjoint
between roles, so no synthetic person is in both a training and a test split.
"""
from __future__ import annotations

import hashlib
import json
import logging
import zlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, List, Optional

import numpy as np

from fer_edge.data.config import DATA_ROLES
from fer_edge.data.dataset import FaceDataset
from fer_edge.runtime.contract import labels_with_contempt
from fer_edge.runtime.errors import DataError

from .loaders import load_dataset

log = logging.getLogger("fer_edge.data")

ROLES = DATA_ROLES
#: Each role draws people from its own block of identity numbers: no identity is shared between roles.
ROLE_BLOCK = {role: k for k, role in enumerate(ROLES)}
BLOCK = 10_000
#: Bump when the synthetic world changes, so cached folders made by an older world are not reused.
WORLD_VERSION = 2
SYNTH_PREFIX = "synth:"


def is_synthetic(value: Any) -> bool:
    """Whether a data value is the synthetic world: ``synth:<domain>``, or a folder the synthetic world wrote
    (its marker file in the folder or the one above it, as ``data synth`` and the role cache lay them out).

    Real faces are the measure of every accuracy claim; the report and ``fer-edge eval`` use this to label a
    number measured on cartoon heads as such.
    """
    if value is None:
        return False
    if str(value).startswith(SYNTH_PREFIX):
        return True
    from fer_edge.data.synth import MARKER

    p = Path(str(value))
    return any((c / MARKER).is_file() for c in (p, p.parent))


def role_seed(seed: int, role: str) -> int:
    """A seed per (synth seed, role): roles of one domain never render the same sample."""
    return int(np.random.SeedSequence([int(seed), zlib.crc32(role.encode())]).generate_state(1)[0])


def role_identities(seed: int, role: str, count: int) -> List[int]:
    if count > BLOCK:
        raise DataError(f"data.synth.identities: {count} is more than {BLOCK} per role")
    base = (int(seed) * len(ROLES) + ROLE_BLOCK[role]) * BLOCK
    return list(range(base, base + int(count)))


def crop_key(crop) -> Dict[str, object]:
    """The crop-policy fields that change the pixels of a cut face: part of every synthetic cache key."""
    return crop.pixels()


def synth_dir(cfg, domain: str, role: str) -> Path:
    """The cache folder of a ``synth:<domain>`` role (named by a hash of its settings)."""
    s = cfg.data.synth
    if role not in s.counts:
        raise DataError(f"data.synth.counts has no entry for role {role!r}; add e.g. counts.{role}: 1000")
    key = {"world": WORLD_VERSION, "domain": domain, "role": role, "count": int(s.counts[role]),
           "identities": int(s.identities), "size": int(s.size), "seed": int(s.seed),
           "crop": crop_key(cfg.crop)}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    return Path(cfg.data.root) / f"{domain}-{role}-{digest}"


def ensure_synth(cfg, domain: str, role: str) -> Path:
    """Generate the role's synthetic crops unless an identical finished folder is already cached."""
    from .synth import MARKER, generate, get_domain

    get_domain(domain)
    out = synth_dir(cfg, domain, role)
    if (out / MARKER).is_file() and (out / "labels.csv").is_file():
        log.info("synth %s for %s: cached at %s", domain, role, out)
        return out
    s = cfg.data.synth
    generate(domain, "crops", out, int(s.counts[role]), role_identities(s.seed, role, s.identities),
             int(s.size), role_seed(s.seed, role), int(s.workers), crop=cfg.crop)
    return out


def load_split(cfg, role: str) -> Optional[FaceDataset]:
    """The dataset of ``role`` (``source``, ``source_test``, ``target``, ``target_val``, ``target_test``).

    ``None`` when the role is not configured — except ``source_test`` with a synthetic source, which
    then gets a held-out split of the source's domain.
    """
    if role not in ROLES:
        raise DataError(f"unknown data role {role!r}; choose one of {list(ROLES)}")
    value = getattr(cfg.data, role)
    if value is None and role == "source_test" and str(cfg.data.source or "").startswith(SYNTH_PREFIX):
        value = cfg.data.source
    if value is None or str(value).strip() == "":
        return None
    value = str(value).strip()
    labels = labels_with_contempt(cfg.data.contempt)
    if value.startswith(SYNTH_PREFIX):
        domain = value[len(SYNTH_PREFIX):]
        path = ensure_synth(cfg, domain, role)
        return load_dataset(path, "synth", labels, cfg.data.contempt, name=f"{role}:{value}")
    if cfg.data.detect and role.startswith("target"):  # footage: faces cut by cfg.crop, cached by content hash
        from .faces import footage_dataset

        return footage_dataset(value, cfg.crop, labels, cfg.data.contempt, cache_root=Path(cfg.data.root) / "faces",
                               name=f"{role}:{Path(value).name}", workers=int(cfg.data.synth.workers))
    from .faces import precut_finish

    finish = precut_finish(value, cfg.crop)  # refuses crops `data faces` cut under another policy
    ds = load_dataset(value, cfg.data.format, labels, cfg.data.contempt, name=f"{role}:{Path(value).name}")
    ds.finish = finish
    return ds


def load_splits(data: Any, crop: Any) -> Dict[str, Optional[FaceDataset]]:
    """The dataset of every role (``None`` where a role is not set) for a ``data:`` section and crop policy.

    What ``fer-edge train`` and the pipeline's synth and train stages load (``fer_edge.stages.data``).
    """
    cfg = SimpleNamespace(data=data, crop=crop)
    return {role: load_split(cfg, role) for role in ROLES}
