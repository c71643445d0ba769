"""The parametric head: identity parameters and 3D landmarks projected with a true head pose.

Why a head *model* rather than 2D drawings: the domain gap of a real in-cabin camera comes largely
from pose (the camera looks up at the driver from the steering column, the head turns ±45°). Only
features placed on a 3D surface and rotated by (yaw, pitch, roll) foreshorten, shift and hide the
way a real face does, so that a model trained on frontal studio faces genuinely struggles with them.

Units: face coordinates with the face half-width ≈ 1, x to the image right, y down, z towards the
camera. Features lie on an ellipsoid (semi-axes ``a, b, c``); :func:`project` maps them to pixels
with a weak-perspective camera.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Tuple, Union

import numpy as np

#: Skin albedos (BGR, 0..255), light to dark; an identity jitters around one of them.
SKIN_TONES = np.array([[200, 215, 240], [170, 195, 228], [140, 170, 215], [110, 140, 190],
                       [90, 118, 168], [72, 98, 145]], dtype=np.float32)
HAIR_COLOURS = np.array([[20, 20, 25], [30, 45, 70], [40, 70, 120], [90, 150, 200], [150, 150, 150],
                         [45, 35, 30]], dtype=np.float32)
IRIS_COLOURS = np.array([[40, 60, 90], [140, 110, 60], [90, 120, 80], [30, 35, 45]], dtype=np.float32)
HAIR_STYLES = ("short", "long", "bald", "fringe")
IDENTITY_SALT = 0x1D5EED


@dataclass(frozen=True)
class Identity:
    """Who the face is: shape, feature placement, colours, accessories and a resting face.

    ``rest_brow``/``rest_mouth`` give every person a slightly different neutral (some look a little
    sad or surprised at rest); this is what makes weak expressions genuinely ambiguous.
    """

    ident: int
    a: float            # half width of the head ellipsoid
    b: float            # half height
    c: float            # depth
    jaw_taper: float    # how much narrower the chin is than the cheeks
    eye_dist: float     # half distance between eye centres
    eye_y: float
    eye_w: float
    eye_h: float
    brow_gap: float     # brow height above the eye
    brow_thick: float
    nose_len: float
    nose_w: float
    mouth_y: float
    mouth_w: float
    lip_t: float
    skin: Tuple[float, float, float]
    lips: Tuple[float, float, float]
    iris: Tuple[float, float, float]
    hair: Tuple[float, float, float]
    hair_style: str
    hairline: float
    beard: float        # 0 none … 1 full
    glasses: bool
    freckles: float     # visible-light skin texture (vanishes in NIR)
    rest_brow: float
    rest_mouth: float


def _pick(rng: np.random.Generator, table: np.ndarray, jitter: float) -> Tuple[float, float, float]:
    base = table[rng.integers(len(table))]
    col = np.clip(base + rng.normal(0.0, jitter, 3), 0, 255)
    return tuple(float(v) for v in col)


@lru_cache(maxsize=4096)
def sample_identity(ident: int) -> Identity:
    """The person with number ``ident`` — the same in every domain, role and run (seeded by the id).

    Cached: an identity is immutable and a dataset draws each of its few dozen people many times.
    """
    rng = np.random.default_rng([IDENTITY_SALT, int(ident)])
    skin = _pick(rng, SKIN_TONES, 8.0)
    lips = tuple(float(v) for v in np.clip(np.array(skin) * np.array([0.5, 0.42, 0.8]), 0, 255))
    style = HAIR_STYLES[rng.choice(4, p=[0.45, 0.3, 0.1, 0.15])]
    return Identity(
        ident=int(ident), a=float(rng.uniform(0.92, 1.08)), b=float(rng.uniform(1.22, 1.4)),
        c=float(rng.uniform(0.85, 1.0)), jaw_taper=float(rng.uniform(0.15, 0.4)),
        eye_dist=float(rng.uniform(0.38, 0.45)), eye_y=float(rng.uniform(-0.08, 0.0)),
        eye_w=float(rng.uniform(0.19, 0.23)), eye_h=float(rng.uniform(0.095, 0.115)),
        brow_gap=float(rng.uniform(0.2, 0.26)), brow_thick=float(rng.uniform(0.05, 0.075)),
        nose_len=float(rng.uniform(0.36, 0.46)), nose_w=float(rng.uniform(0.09, 0.13)),
        mouth_y=float(rng.uniform(0.6, 0.68)), mouth_w=float(rng.uniform(0.5, 0.6)),
        lip_t=float(rng.uniform(0.055, 0.08)), skin=skin, lips=lips,
        iris=_pick(rng, IRIS_COLOURS, 10.0), hair=_pick(rng, HAIR_COLOURS, 10.0), hair_style=style,
        hairline=float(rng.uniform(-0.62, -0.5)),
        beard=float(rng.uniform(0.3, 1.0)) if rng.random() < 0.15 else 0.0,
        glasses=bool(rng.random() < 0.12), freckles=float(rng.uniform(0.0, 1.0)) if rng.random() < 0.3 else 0.0,
        rest_brow=float(rng.normal(0.0, 0.06)), rest_mouth=float(rng.normal(0.0, 0.06)),
    )


def surface_z(ident: Identity, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Depth of the head surface under (x, y) in face units (0 at and beyond the rim)."""
    r = 1.0 - (x / ident.a) ** 2 - (y / ident.b) ** 2
    return ident.c * np.sqrt(np.clip(r, 0.0, 1.0))


def on_surface(ident: Identity, pts2: np.ndarray, lift: float = 0.0) -> np.ndarray:
    """Lift 2D frontal feature points (N×2) onto the head surface → N×3 (``lift`` pushes them out)."""
    pts2 = np.asarray(pts2, dtype=np.float32).reshape(-1, 2)
    z = surface_z(ident, pts2[:, 0], pts2[:, 1]) + lift
    return np.column_stack([pts2, z]).astype(np.float32)


@lru_cache(maxsize=64)
def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Head rotation relative to the camera (degrees), read-only (cached: one render asks for a head's
    rotation several times).

    ``yaw > 0`` turns the nose to the image right; ``pitch > 0`` shows the face from above (camera
    high, kiosk), ``pitch < 0`` from below (camera on the steering column, cabin); ``roll > 0``
    tilts the head clockwise in the image.
    """
    y, p, r = math.radians(yaw), math.radians(-pitch), math.radians(roll)
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    rot = (rz @ rx @ ry).astype(np.float32)
    rot.flags.writeable = False
    return rot


@dataclass(frozen=True)
class Camera:
    """Weak-perspective placement of the head in a frame: pixel scale of one face unit and centre."""

    scale: float
    cx: float
    cy: float
    rot: np.ndarray

    def project(self, pts3: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """(N×2 pixel points, N depth after rotation) — larger depth is nearer the camera."""
        q = np.asarray(pts3, dtype=np.float32) @ self.rot.T
        px = np.column_stack([q[:, 0] * self.scale + self.cx, q[:, 1] * self.scale + self.cy])
        return px, q[:, 2]

    def place(self, ident: Identity, pts2: np.ndarray,
              lift: Union[float, np.ndarray] = 0.0) -> Tuple[np.ndarray, np.ndarray]:
        """(N×2 pixels of ``pts2`` lifted onto the surface plus ``lift``, N facing values as :meth:`facing`).

        :meth:`project` ∘ :func:`on_surface` and :meth:`facing` in one pass over the points; ``lift``
        is a scalar or one value per point. The renderer places all of a head's features with one
        call: a few vectorised operations instead of a dozen tiny ones per feature, which dominated
        the cost of drawing a face.
        """
        pts2 = np.asarray(pts2, dtype=np.float32).reshape(-1, 2)
        x, y = pts2[:, 0], pts2[:, 1]
        z = surface_z(ident, x, y)
        q = np.column_stack([x, y, z + lift]).astype(np.float32) @ self.rot.T
        px = q[:, :2] * np.float32(self.scale) + np.array([self.cx, self.cy], np.float32)
        n = np.column_stack([x / ident.a ** 2, y / ident.b ** 2, np.maximum(z, 1e-3) / ident.c ** 2])
        return px, (n @ self.rot[2]) / np.sqrt(np.einsum("ij,ij->i", n, n))

    def facing(self, ident: Identity, pts2: np.ndarray) -> np.ndarray:
        """How much each surface point faces the camera (z of its rotated normal; < 0 is hidden)."""
        pts3 = on_surface(ident, pts2)
        n = np.column_stack([pts3[:, 0] / ident.a ** 2, pts3[:, 1] / ident.b ** 2,
                             np.maximum(pts3[:, 2], 1e-3) / ident.c ** 2])
        n /= np.linalg.norm(n, axis=1, keepdims=True)
        return (n @ self.rot.T)[:, 2]


@lru_cache(maxsize=8)
def _shell_grid(n: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """cos u, sin u, cos v, sin v on the shell's (v, u) grid: the same for every head, and a face uses
    its shell three times (box for scaling, drawing, box for the truth), so it is computed once."""
    u = np.linspace(0, 2 * np.pi, n, endpoint=False)
    v = np.linspace(0.05, np.pi - 0.05, n // 2)
    uu, vv = np.meshgrid(u, v)
    grid = (np.cos(uu), np.sin(uu), np.cos(vv), np.sin(vv))
    for g in grid:
        g.flags.writeable = False
    return grid


def head_shell(ident: Identity, jaw_drop: float = 0.0, n: int = 24) -> np.ndarray:
    """Points on the head surface (M×3): the convex hull of their projection is the silhouette.

    The lower half narrows by ``jaw_taper`` and lengthens with ``jaw_drop`` (an open mouth drops the chin).
    """
    cu, su, cv, sv = _shell_grid(n)
    x = ident.a * cu * sv
    y = -ident.b * cv
    z = ident.c * su * sv
    lower = np.clip(y / ident.b, 0, 1)
    x = x * (1.0 - ident.jaw_taper * lower ** 2)
    y = y + jaw_drop * 0.25 * lower
    return np.column_stack([x.ravel(), y.ravel(), z.ravel()]).astype(np.float32)


def face_box(ident: Identity, cam: Camera, jaw_drop: float = 0.0) -> Tuple[float, float, float, float]:
    """The true face bounding box (x, y, w, h), square, placed where a face detector puts its box.

    Truth must look like what the runtime's detector returns, because the crop policy (margin,
    squareness) is applied to detector boxes at run time; a tighter "true" box would train the model
    on crops the deployment never produces.
    """
    px, _ = cam.project(box_points(ident, jaw_drop))
    cx, cy, side = detector_box_of(px[None])[0]
    return (float(cx - side / 2), float(cy - side / 2), float(side), float(side))


def box_points(ident: Identity, jaw_drop: float = 0.0) -> np.ndarray:
    """The head-shell points (M×3) a face detector's box spans: brow to chin, the visible half."""
    shell = head_shell(ident, jaw_drop)
    keep = shell[:, 1] > ident.eye_y - ident.brow_gap - 0.12
    keep &= shell[:, 2] > -0.2 * ident.c
    return shell[keep]


def detector_box_of(px: np.ndarray) -> np.ndarray:
    """N×3 (centre x, centre y, side) of the detector box around each of N projected point sets (N×M×2).

    Calibrated against OpenCV's Haar cascade on studio scenes (benchmarks/domain_gap.py): its box is
    about 1.34x the brow-to-chin extent and centred a quarter of that above it. Vectorised over N because
    the viewpoint augmentation (train/viewpoint.py) re-boxes a whole batch of rotated heads per step.
    """
    lo, hi = px.min(axis=1), px.max(axis=1)
    side = 0.5 * ((hi[:, 0] - lo[:, 0]) + (hi[:, 1] - lo[:, 1])) * 0.92 * 1.34
    return np.stack([0.5 * (lo[:, 0] + hi[:, 0]), 0.5 * (lo[:, 1] + hi[:, 1]) - 0.19 * side, side], 1)
