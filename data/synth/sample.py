"""One sample of the world: draw who, what expression and how it is seen, then render it.

Every sample's randomness comes from ``numpy.random.default_rng([seed, kind, index])``, so a sample
is the same bytes whichever worker renders it and in whatever order.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from fer_edge.runtime.crop import CropPolicy, crop_face

from .camera import compose
from .domains import Conditions, DomainSpec, get_domain, sample_conditions, sample_pose
from .expressions import activations, sample_intensity, sample_label
from .head import sample_identity
from .render import Head

KIND_CODES = {"crops": 1, "scenes": 2, "video": 3}


@dataclass(frozen=True)
class Truth:
    """What is known about one rendered face (the labels.csv columns besides the path)."""

    expression: str
    intensity: float
    identity: str
    yaw: float
    pitch: float
    roll: float
    domain: str

    def row(self) -> Dict[str, str]:
        return {"expression": self.expression, "intensity": f"{self.intensity:.4f}", "identity": self.identity,
                "yaw": f"{self.yaw:.2f}", "pitch": f"{self.pitch:.2f}", "roll": f"{self.roll:.2f}",
                "domain": self.domain}


def identity_name(ident: int) -> str:
    return f"id{int(ident):05d}"


def make_head(rng: np.random.Generator, spec: DomainSpec, ident: int, pose: Tuple[float, float, float],
              cx: float, cy: float, box_side: float, occluders: Tuple[str, ...] = (),
              expression: Optional[str] = None, intensity: Optional[float] = None) -> Tuple[Head, Truth]:
    """A head whose true face box has side ≈ ``box_side`` pixels, centred near (cx, cy)."""
    person = sample_identity(ident)
    if expression is None:
        expression = sample_label(rng, spec.class_weights)
    if intensity is None:
        intensity = sample_intensity(rng, expression, *spec.intensity_beta)
    aus = activations(expression, intensity, person.rest_brow, person.rest_mouth, rng)
    yaw, pitch, roll = pose
    unit = Head(person, aus, yaw, pitch, roll, 0.0, 0.0, 1.0, occluders)
    x, y, w, _ = unit.box()
    scale = box_side / max(w, 1e-3)
    # Put the *face box* centre (not the skull centre) at (cx, cy).
    bx, by = (x + w / 2) * scale, (y + w / 2) * scale
    head = Head(person, aus, yaw, pitch, roll, cx - bx, cy - by, scale, occluders)
    return head, Truth(expression, float(intensity), identity_name(ident), yaw, pitch, roll, spec.name)


def render_crop(domain: Union[str, DomainSpec], index: int, seed: int, idents: Sequence[int], size: int,
                policy: CropPolicy) -> Tuple[np.ndarray, Truth]:
    """Render one face in a frame and cut it with the runtime's ``crop_face`` at its true box.

    ``domain`` is a domain's name or a spec (a factor study's hybrid of two domains)."""
    spec = get_domain(domain) if isinstance(domain, str) else domain
    rng = np.random.default_rng([int(seed), KIND_CODES["crops"], int(index)])
    cond = sample_conditions(rng, spec)
    ident = int(idents[int(rng.integers(len(idents)))])
    grow = (1.0 + 2.0 * policy.margin)
    canvas = int(np.ceil(size * 1.25)) + 8
    head, truth = make_head(rng, spec, ident, (cond.yaw, cond.pitch, cond.roll), canvas / 2, canvas / 2,
                            size / grow * float(rng.uniform(0.97, 1.03)), cond.occluders)
    frame, boxes = compose(canvas, canvas, [head], spec, cond, rng)
    crop = crop_face(frame, boxes[0], policy)
    if crop.shape[:2] != (size, size):
        interp = cv2.INTER_AREA if crop.shape[0] > size else cv2.INTER_LINEAR
        crop = cv2.resize(crop, (size, size), interpolation=interp)
    return crop, truth


def scene_heads(rng: np.random.Generator, spec: DomainSpec, idents: Sequence[int], w: int, h: int,
                n_faces: int, cond: Conditions) -> Tuple[list, list]:
    """Place up to ``n_faces`` non-overlapping heads in a ``w×h`` frame (face boxes 70–170 px)."""
    heads, truths, taken = [], [], []
    for _ in range(n_faces):
        for _attempt in range(12):
            side = float(rng.uniform(70, 170)) * min(w, h) / 480.0
            cx = float(rng.uniform(side * 0.7, w - side * 0.7))
            cy = float(rng.uniform(side * 0.7, h - side * 0.9))
            if all(abs(cx - ox) > (side + os_) * 0.75 or abs(cy - oy) > (side + os_) * 0.9
                   for ox, oy, os_ in taken):
                break
        else:
            continue
        taken.append((cx, cy, side))
        pose = sample_pose(rng, spec)
        occ = tuple(k for k, p in sorted(spec.occluder_p.items()) if rng.random() < p)
        ident = int(idents[int(rng.integers(len(idents)))])
        head, truth = make_head(rng, spec, ident, pose, cx, cy, side, occ)
        heads.append(head)
        truths.append(truth)
    return heads, truths
