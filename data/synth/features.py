"""Facial features in frontal face units, shaped by AU activations.

Returns plain polylines (N×2 float arrays) that :mod:`render` lifts onto the head surface, rotates
and draws. Keeping the geometry here and the pixels in ``render`` lets the expression geometry be
tested (a smile raises the mouth corners) without drawing anything.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Dict, List

import numpy as np

from .head import Identity


@dataclass
class Features:
    brows: List[np.ndarray]
    eyes_upper: List[np.ndarray]
    eyes_lower: List[np.ndarray]
    irises: List[np.ndarray]          # centre (2,)
    iris_r: float
    nose_bridge: np.ndarray
    nostrils: List[np.ndarray]
    nostril_r: float
    lips_outer: np.ndarray           # closed polygon
    mouth_inner: np.ndarray          # closed polygon, empty when closed
    teeth: np.ndarray                # closed polygon, empty when not shown
    lip_line: np.ndarray             # where the lips meet
    lines: List[np.ndarray] = field(default_factory=list)  # wrinkles and folds (thin dark lines)
    mouth_corner_y: float = 0.0


@lru_cache(maxsize=32)
def _unit_steps(n: int) -> np.ndarray:
    """``linspace(0, 1, n)``, read-only and cached: a face has about ten arcs of a few lengths."""
    t = np.linspace(0.0, 1.0, n)
    t.flags.writeable = False
    return t


def _arc(x0: float, x1: float, y_ends: float, y_mid: float, n: int = 9, y_end1: float = None) -> np.ndarray:
    """A parabola-like arc from (x0, y_ends) to (x1, y_end1) through a midpoint at height y_mid."""
    t = _unit_steps(n)
    y_end1 = y_ends if y_end1 is None else y_end1
    base = y_ends + (y_end1 - y_ends) * t
    bulge = y_mid - 0.5 * (y_ends + y_end1)
    return np.column_stack([x0 + (x1 - x0) * t, base + bulge * 4 * t * (1 - t)])


def build(ident: Identity, au: Dict[str, float]) -> Features:
    """Geometry of every feature for one identity and one set of AU activations."""
    brows, ups, lows, irises, lines = [], [], [], [], []
    lid_open = 1.0 + 1.2 * au["lid_raise"] - 0.6 * au["lid_tight"] - 0.4 * au["cheek_raise"]
    low_open = 1.0 - 0.55 * au["cheek_raise"] - 0.45 * au["lid_tight"]
    for side in (-1.0, 1.0):
        ex, ey = side * ident.eye_dist, ident.eye_y
        # Brow: inner end near the nose, outer end above the eye's outer corner.
        inner_x = side * (0.1 - 0.07 * au["brow_lower"])
        outer_x = side * (ident.eye_dist + ident.eye_w + 0.08)
        base_y = ey - ident.brow_gap
        up_h = ident.eye_h * max(0.12, lid_open)
        inner_y = base_y + 0.02 - 0.26 * au["brow_inner_up"] + 0.17 * au["brow_lower"]
        inner_y = min(inner_y, ey - up_h - 0.05)  # a lowered brow stops at the upper lid
        outer_y = base_y + 0.01 - 0.2 * au["brow_outer_up"] + 0.03 * au["brow_lower"]
        arch = min(inner_y, outer_y) - 0.05 - 0.04 * au["brow_outer_up"]
        brows.append(_arc(inner_x, outer_x, inner_y, arch, 7, outer_y))
        # Eye: upper and lower lid arcs between the two corners.
        x0, x1 = ex - ident.eye_w, ex + ident.eye_w
        lo_h = ident.eye_h * 0.75 * max(0.15, low_open)
        ups.append(_arc(x0, x1, ey, ey - up_h, 9))
        lows.append(_arc(x0, x1, ey, ey + lo_h, 9))
        irises.append(np.array([ex, ey + 0.25 * (lo_h - up_h)], dtype=np.float32))
        if au["brow_lower"] > 0.3:  # vertical frown lines between the brows
            xl = side * 0.05
            lines.append(np.array([[xl, base_y + 0.02], [xl * 0.8, base_y + 0.02 + 0.12 * au["brow_lower"]]]))
        if au["brow_inner_up"] > 0.4 and au["brow_outer_up"] > 0.4:  # forehead lines
            yy = base_y - 0.2 - 0.06 * (side + 1)
            lines.append(_arc(-0.3, 0.3, yy + 0.02, yy - 0.02, 5))
    iris_r = ident.eye_w * 0.6

    nose_top = ident.eye_y + 0.05
    tip_y = ident.eye_y + ident.nose_len - 0.05 * au["nose_wrinkle"]
    bridge = np.array([[0.0, nose_top], [0.01, tip_y - 0.1], [0.0, tip_y]], dtype=np.float32)
    flare = 1.0 + 0.35 * au["nose_wrinkle"]
    nostrils = [np.array([s * ident.nose_w * flare, tip_y + 0.03], dtype=np.float32) for s in (-1, 1)]
    if au["nose_wrinkle"] > 0.25:
        for k in range(3):
            yy = nose_top + 0.05 + 0.05 * k
            lines.append(np.array([[-0.12, yy], [0.12, yy - 0.02]]))
    # Mouth: corners move with pull/depress/stretch/press; the lips open with jaw drop and parting.
    my = ident.mouth_y
    half_w = ident.mouth_w / 2 * (1 + 0.35 * au["lip_corner_pull"] + 0.45 * au["lip_stretch"]
                                  - 0.3 * au["lip_press"] - 0.15 * au["jaw_drop"])
    corner_y = my - 0.26 * au["lip_corner_pull"] + 0.26 * au["lip_corner_depress"] + 0.04 * au["lip_stretch"]
    lip = ident.lip_t * (1 - 0.7 * au["lip_press"])
    gap = (0.45 * au["jaw_drop"] + 0.1 * au["lips_part"] + 0.06 * au["lip_stretch"]
           + 0.08 * au["upper_lip_raise"])
    up_mid = my - 0.5 * gap - 0.12 * au["upper_lip_raise"] - 0.02 * au["lip_corner_pull"]
    lo_mid = my + 0.5 * gap - 0.05 * au["chin_raise"] + 0.02 * au["lip_corner_pull"]
    up_in = _arc(-half_w, half_w, corner_y, up_mid, 11)
    up_out = up_in.copy()
    up_out[:, 1] -= lip * np.sin(np.linspace(0, np.pi, 11)) ** 0.5
    lo_in = _arc(half_w, -half_w, corner_y, lo_mid, 11)
    lo_out = lo_in.copy()
    lo_out[:, 1] += 1.3 * lip * np.sin(np.linspace(0, np.pi, 11)) ** 0.5
    lips_outer = np.vstack([up_out, lo_out[1:-1]])
    inner = np.vstack([up_in, lo_in[1:-1]]) if gap > 0.025 else np.zeros((0, 2))
    teeth = np.zeros((0, 2))
    if gap > 0.03 and max(au["lip_corner_pull"], au["lip_stretch"], au["upper_lip_raise"]) > 0.3:
        low_edge = up_in[1:-1].copy()
        low_edge[:, 1] += 0.45 * (lo_mid - up_mid)
        teeth = np.vstack([up_in[1:-1], low_edge[::-1]])
    if au["cheek_raise"] > 0.3:  # nasolabial folds from the nose wing past the mouth corner
        for s in (-1, 1):
            lines.append(_arc(s * (ident.nose_w + 0.06), s * (half_w + 0.07), tip_y, tip_y + 0.06, 5,
                              corner_y + 0.04))
    if au["chin_raise"] > 0.35:
        lines.append(_arc(-0.12, 0.12, my + 0.26, my + 0.23, 5))
    return Features(brows, ups, lows, irises, iris_r, bridge, nostrils, ident.nose_w * 0.3 * flare,
                    lips_outer.astype(np.float32), inner.astype(np.float32), teeth.astype(np.float32),
                    up_in.astype(np.float32),
                    [np.asarray(ln, np.float32) for ln in lines], float(corner_y))
