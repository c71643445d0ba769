"""Expressions as AU-like muscle activations with a continuous intensity.

Each canonical class is a profile of action units (FACS-style: brow raise/lower, lid tightening,
cheek raise, lip-corner pull/depress, lip stretch, jaw drop, nose wrinkle). A sample's activations
are ``profile × intensity`` plus the person's resting face and a little per-sample jitter, so an
expression of intensity 0.1 is barely distinguishable from that person's neutral — weak expressions
are genuinely ambiguous, as they are on real drivers, and the label noise is in the data rather
than in the labels.
"""
from __future__ import annotations

from typing import Dict, Sequence

import numpy as np

from fer_edge.runtime.contract import LABELS

#: Action units used by the head model (name → what it does).
AUS = {
    "brow_inner_up": "AU1 inner brow raiser",
    "brow_outer_up": "AU2 outer brow raiser",
    "brow_lower": "AU4 brow lowerer (and knit)",
    "lid_raise": "AU5 upper lid raiser",
    "cheek_raise": "AU6 cheek raiser (narrows the eye from below)",
    "lid_tight": "AU7 lid tightener",
    "nose_wrinkle": "AU9 nose wrinkler",
    "upper_lip_raise": "AU10 upper lip raiser",
    "lip_corner_pull": "AU12 lip corner puller (smile)",
    "lip_corner_depress": "AU15 lip corner depressor",
    "chin_raise": "AU17 chin raiser",
    "lip_stretch": "AU20 lip stretcher",
    "lip_press": "AU23/24 lip tightener/presser",
    "lips_part": "AU25 lips part",
    "jaw_drop": "AU26/27 jaw drop",
}

PROFILES: Dict[str, Dict[str, float]] = {
    "neutral": {},
    "happiness": {"cheek_raise": 0.8, "lip_corner_pull": 1.0, "lips_part": 1.0},
    "sadness": {"brow_inner_up": 0.9, "brow_lower": 0.5, "lip_corner_depress": 1.0, "chin_raise": 0.6,
                "lid_tight": 0.2},
    "surprise": {"brow_inner_up": 1.0, "brow_outer_up": 1.0, "lid_raise": 1.0, "jaw_drop": 1.0},
    "fear": {"brow_inner_up": 1.0, "brow_outer_up": 0.5, "brow_lower": 0.6, "lid_raise": 1.0,
             "lip_stretch": 1.0, "lips_part": 1.0, "jaw_drop": 0.2},
    "disgust": {"nose_wrinkle": 1.0, "upper_lip_raise": 1.0, "brow_lower": 0.6, "lid_tight": 0.4,
                "lip_corner_depress": 0.4, "cheek_raise": 0.3},
    "anger": {"brow_lower": 1.0, "lid_tight": 0.8, "lid_raise": 0.3, "lip_press": 1.0, "chin_raise": 0.3},
}
assert set(PROFILES) == set(LABELS)


def activations(expression: str, intensity: float, rest_brow: float, rest_mouth: float,
                rng: np.random.Generator, jitter: float = 0.04) -> Dict[str, float]:
    """AU activations in [0, 1] for one sample (profile × intensity + resting face + jitter)."""
    prof = PROFILES[expression]
    aus = {k: prof.get(k, 0.0) * float(intensity) for k in AUS}
    # The resting face: a person whose brows sit high looks mildly surprised/sad at rest.
    aus["brow_inner_up"] += max(0.0, rest_brow)
    aus["brow_lower"] += max(0.0, -rest_brow)
    aus["lip_corner_depress"] += max(0.0, rest_mouth)
    aus["lip_corner_pull"] += max(0.0, -rest_mouth)
    noise = rng.normal(0.0, jitter, len(AUS))
    return {k: min(1.0, max(0.0, v + float(n))) for (k, v), n in zip(aus.items(), noise.tolist())}


def sample_label(rng: np.random.Generator, class_weights: Sequence[float]) -> str:
    """Draw a class name with the domain's class balance."""
    p = np.asarray(class_weights, dtype=np.float64)
    return LABELS[int(rng.choice(len(LABELS), p=p / p.sum()))]


def sample_intensity(rng: np.random.Generator, expression: str, alpha: float, beta: float) -> float:
    """Intensity in (0, 1]: Beta(alpha, beta) for expressive classes, 1.0 for neutral (fully neutral)."""
    if expression == "neutral":
        return 1.0
    return float(np.clip(rng.beta(alpha, beta), 0.02, 1.0))
