"""Near-infrared look-alikes of colour source faces: the spectral half of the studio → cabin gap.

A driver-monitoring camera images at 850/940 nm. Skin reflects strongly there and evenly across skin tones,
and lips, which are red because of blood under thin skin, reflect about as much as the skin around them; in
a colour photo's *luminance* they are much darker. Of the visible channels, red is the one whose skin and lip
reflectances are closest to near-infrared (the red-channel proxy of cross-spectral face matching), so a gray
image mixed mostly from red shows the pale lips and flat skin a cabin camera sees. The factor study
(docs/results/domain-factors.md) measured this spectrum as the largest single cost on the cabin.

``train.augment.spectral: p`` shows each labelled colour face in such a red-weighted gray view with
probability ``p`` instead of its ordinary luminance. The views are made once, when the source split is decoded:
each face gets its own channel mix (red 0.6–1.0, the rest green and a little blue, drawn from the run's seed),
then the crop policy's CLAHE if it has one, then the runtime's one ``preprocess``, so a view is exactly what
the runtime would make of such a frame. Gray (already near-infrared or night) sources have no other view and
are left as they are. Only labelled source faces get views: the target is what it is.
"""
from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

from fer_edge.data.dataset import FaceDataset
from fer_edge.runtime.contract import PreprocessSpec, preprocess
from fer_edge.runtime.crop import apply_clahe
from fer_edge.runtime.errors import DataError

#: Range of the red weight of a view's mix; the remainder is split between green (most) and blue.
RED_RANGE = (0.6, 1.0)


def channel_mix(rng: np.random.Generator) -> np.ndarray:
    """BGR weights summing to 1: red in ``RED_RANGE``, then green gets 60–100 % of the rest, blue the remainder."""
    r = rng.uniform(*RED_RANGE)
    g = (1.0 - r) * rng.uniform(0.6, 1.0)
    return np.array([1.0 - r - g, g, r], dtype=np.float32)


def nir_view(img: np.ndarray, weights: np.ndarray, clahe: bool) -> Optional[np.ndarray]:
    """The red-weighted gray uint8 view of a BGR crop (None for a gray crop, which has no other view)."""
    if img.ndim != 3 or img.shape[2] < 3:
        return None
    gray = img[:, :, :3].astype(np.float32) @ weights.astype(np.float32)
    out = np.clip(gray + 0.5, 0, 255).astype(np.uint8)
    return apply_clahe(out) if clahe else out


def nir_views(ds: FaceDataset, keep: np.ndarray, x: np.ndarray, spec: PreprocessSpec, clahe: bool,
              seed: int) -> Optional[np.ndarray]:
    """Preprocessed near-infrared views aligned with ``x`` (the split's decoded inputs, rows ``keep``).

    A face without a view (gray image, or unreadable now) keeps its ordinary input, so the result can replace
    ``x`` row by row. None when no face of the split is in colour (nothing to imitate).
    """
    rng = np.random.default_rng([int(seed), 0x4E4952])  # "NIR": its own stream, independent of the sampler's
    out = x.copy()
    made = 0
    for row, i in enumerate(keep):
        w = channel_mix(rng)  # drawn for every face, so one unreadable image does not shift the others' mixes
        try:
            view = nir_view(ds.load_image(ds.records[int(i)]), w, clahe)
        except (ValueError, DataError, cv2.error):
            continue
        if view is not None:
            out[row] = preprocess(view, spec)
            made += 1
    return out if made else None
