"""Pixels of one head: albedo drawing with OpenCV, then Lambertian shading on a head-shaped dome.

Drawing happens in two layers: an 8-bit albedo canvas (so OpenCV can anti-alias with sub-pixel
precision) and a float shading map. Separating reflectance from light is what lets the near-infrared
domain change *reflectances* (pale skin, flat lips and irises) independently of *illumination*
(hard side light, fall-off), the two main causes of the NIR gap.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np

from .domains import Conditions
from .features import Features, build
from .head import Camera, Identity, face_box, head_shell, rotation

SHIFT = 4
_ONE = 1 << SHIFT
Colour = Tuple[float, float, float]


@dataclass
class Head:
    """One face placed in a frame: who, which expression, pose, and where (pixels per face unit)."""

    ident: Identity
    aus: Dict[str, float]
    yaw: float
    pitch: float
    roll: float
    cx: float
    cy: float
    scale: float
    occluders: Tuple[str, ...] = ()

    def camera(self) -> Camera:
        return Camera(self.scale, self.cx, self.cy, rotation(self.yaw, self.pitch, self.roll))

    def box(self) -> Tuple[float, float, float, float]:
        return face_box(self.ident, self.camera(), self.aus["jaw_drop"])


def _gray(v: float) -> Colour:
    return (v, v, v)


def _lum(c: Sequence[float]) -> float:
    return 0.114 * c[0] + 0.587 * c[1] + 0.299 * c[2]


def _scale(c: Sequence[float], k: float) -> Colour:
    return tuple(float(min(255.0, v * k)) for v in c)  # type: ignore[return-value]


def palette(ident: Identity, nir: bool, cond: Conditions) -> Dict[str, Colour]:
    """Albedo of every part. In NIR skin tones converge to bright, lips and irises lose contrast."""
    if nir:
        skin = 190.0 + 0.15 * (_lum(ident.skin) - 150.0)
        hair = 70.0 + 0.5 * _lum(ident.hair)
        return {"skin": _gray(skin), "lips": _gray(skin * 0.78), "brow": _gray(hair * 0.75),
                "hair": _gray(hair), "sclera": _gray(215.0), "iris": _gray(75.0),
                "pupil": _gray(245.0 if cond.bright_pupil else 25.0), "mouth": _gray(45.0),
                "teeth": _gray(205.0), "line": _gray(skin * 0.78), "nostril": _gray(skin * 0.7),
                "lash": _gray(skin * 0.55), "frame": _gray(50.0), "freckle": _gray(skin)}
    skin = ident.skin
    return {"skin": skin, "lips": ident.lips, "brow": _scale(ident.hair, 0.7), "hair": ident.hair,
            "sclera": (200.0, 206.0, 210.0), "iris": ident.iris, "pupil": _gray(15.0),
            "mouth": (40.0, 30.0, 70.0), "teeth": (220.0, 232.0, 238.0), "line": _scale(skin, 0.72),
            "nostril": _scale(skin, 0.55), "lash": _scale(ident.hair, 0.4), "frame": (30.0, 30.0, 35.0),
            "freckle": _scale(skin, 0.8)}


#: A feature is drawn only if the surface under it faces the camera at least this much on average.
VISIBLE = 0.08
_MIN_POINTS = {"fill": 3, "line": 2, "disc": 1}


@dataclass(frozen=True)
class _Op:
    """One feature to draw, in frontal face units: a filled polygon, a polyline or a disc (``pts2`` is
    its centre, 1×2). ``size`` is the line width or disc radius; ``check=False`` draws it even when it
    faces away (the eyelid skin that trims the eye whites)."""

    kind: str
    pts2: np.ndarray
    colour: Colour
    size: float = 0.0
    lift: float = 0.0
    check: bool = True
    closed: bool = False


class _Painter:
    """Projects frontal feature geometry and draws it, hiding parts that face away from the camera."""

    def __init__(self, img: np.ndarray, mask: np.ndarray, head: Head):
        self.img, self.mask, self.head = img, mask, head
        self.cam = head.camera()
        self.ident = head.ident

    def place(self, pts2: np.ndarray, lift: float = 0.0) -> Tuple[np.ndarray, bool]:
        """(pixels of ``pts2`` lifted by ``lift``, whether the surface under them faces the camera)."""
        px, facing = self.cam.place(self.ident, pts2, lift)
        return px, float(np.mean(facing)) > VISIBLE

    def draw(self, ops: Sequence[_Op]) -> None:
        """Draw ``ops`` in order, later ones on top.

        All of their points are lifted, projected and tested for visibility in one vectorised pass
        (:meth:`Camera.place`); only the OpenCV calls remain per feature. Done one feature at a
        time, the NumPy call overhead on a few points each was most of a face's rendering time.
        """
        ops = [op for op in ops if len(op.pts2) >= _MIN_POINTS[op.kind]]
        if not ops:
            return
        counts = np.array([len(op.pts2) for op in ops])
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        lift = np.repeat(np.array([op.lift for op in ops], np.float32), counts)
        px, facing = self.cam.place(self.ident, np.concatenate([op.pts2 for op in ops]), lift)
        shown = (np.add.reduceat(facing, starts) / counts > VISIBLE).tolist()
        fixed = np.round(px * _ONE).astype(np.int32)
        scale = self.head.scale
        for op, s, n, vis in zip(ops, starts.tolist(), counts.tolist(), shown):
            if op.check and not vis:
                continue
            pts = fixed[s:s + n]
            if op.kind == "fill":
                cv2.fillPoly(self.img, [pts.reshape(-1, 1, 2)], op.colour, cv2.LINE_AA, SHIFT)
            elif op.kind == "line":
                t = max(1, int(round(op.size * scale)))
                cv2.polylines(self.img, [pts.reshape(-1, 1, 2)], op.closed, op.colour, t, cv2.LINE_AA, SHIFT)
            else:
                cv2.circle(self.img, (int(pts[0, 0]), int(pts[0, 1])), int(round(op.size * scale * _ONE)),
                           op.colour, -1, cv2.LINE_AA, SHIFT)

    def front(self, pts3: np.ndarray) -> np.ndarray:
        """The shell points whose surface faces the camera (a patch's visible part)."""
        i = self.ident
        n = pts3 / np.array([i.a ** 2, i.b ** 2, i.c ** 2], np.float32)
        n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-6
        return pts3[(n @ self.cam.rot.T)[:, 2] > -0.05]

    def hull(self, pts3: np.ndarray, colour: Colour, to_mask: bool = True) -> None:
        if len(pts3) < 3:
            return
        px = self.cam.project(pts3)[0]
        h = cv2.convexHull(np.round(px * _ONE).astype(np.int32))
        cv2.fillConvexPoly(self.img, h, colour, cv2.LINE_AA, SHIFT)
        if to_mask:
            cv2.fillConvexPoly(self.mask, h, 255, cv2.LINE_8, SHIFT)


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 16) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.column_stack([cx + rx * np.cos(t), cy + ry * np.sin(t)]).astype(np.float32)


def draw_head(img: np.ndarray, mask: np.ndarray, head: Head, pal: Dict[str, Colour],
              freckle_rng: np.random.Generator) -> Tuple[Features, List[np.ndarray]]:
    """Draw ``head``'s albedo into ``img`` (uint8 BGR) and its silhouette into ``mask``.

    Returns the feature geometry and the lens polygons in pixels (for glints and sunglasses).
    """
    p, ident = _Painter(img, mask, head), head.ident
    shell = head_shell(ident, head.aus["jaw_drop"])
    if ident.hair_style == "long":
        back = shell[shell[:, 1] < 0.75 * ident.b] * np.array([1.18, 1.0, 1.0], np.float32)
        back[:, 1] = np.where(back[:, 1] > 0, back[:, 1] * 1.25, back[:, 1] * 1.08)
        p.hull(back, pal["hair"])
    neck = np.array([[-0.42, 0.6 * ident.b, -0.25], [0.42, 0.6 * ident.b, -0.25], [0.55, 2.2 * ident.b, -0.25],
                     [-0.55, 2.2 * ident.b, -0.25]], np.float32) * np.array([ident.a, 1, 1], np.float32)
    p.hull(neck, _scale(pal["skin"], 0.9))
    for side in (-1.0, 1.0):  # ears, seen only when that side faces the camera
        ear = np.array([[side * ident.a * 0.97, ident.eye_y + dy, dz] for dy in (-0.12, 0.05, 0.3)
                        for dz in (-0.12, 0.0)], np.float32)
        ear = np.vstack([ear, ear + np.array([side * 0.12, 0.0, -0.05], np.float32)])
        p.hull(ear, _scale(pal["skin"], 0.93))
    p.hull(shell, pal["skin"])
    if ident.hair_style != "bald":
        line_y = ident.hairline + (0.14 if ident.hair_style == "fringe" else 0.0)
        cap = shell[shell[:, 1] < line_y * ident.b / 1.3]
        p.hull(p.front(cap), pal["hair"], to_mask=False)
    if ident.beard > 0:
        beard = shell[(shell[:, 1] > ident.mouth_y - 0.1) & (shell[:, 2] > -0.3 * ident.c)]
        mix = tuple(s * (1 - 0.5 * ident.beard) + h * 0.5 * ident.beard for s, h in zip(pal["skin"], pal["hair"]))
        p.hull(p.front(beard), mix, to_mask=False)
    ops: List[_Op] = []
    if ident.freckles > 0 and pal["freckle"] != pal["skin"]:
        n = int(20 * ident.freckles)
        for xy in np.column_stack([freckle_rng.uniform(-0.6, 0.6, n), freckle_rng.uniform(0.0, 0.35, n)]):
            ops.append(_Op("disc", xy.astype(np.float32).reshape(1, 2), pal["freckle"], 0.012))
    feats = build(ident, head.aus)
    for up, lo, iris in zip(feats.eyes_upper, feats.eyes_lower, feats.irises):
        ops.append(_Op("fill", np.vstack([up, lo[::-1]]), pal["sclera"]))
        ops.append(_Op("disc", iris.reshape(1, 2), pal["iris"], feats.iris_r))
        ops.append(_Op("disc", iris.reshape(1, 2), pal["pupil"], feats.iris_r * 0.45))
        top, bot = up.copy(), lo.copy()
        top[:, 1] = up[:, 1].min() - feats.iris_r * 1.1
        bot[:, 1] = lo[:, 1].max() + feats.iris_r * 1.1
        ops.append(_Op("fill", np.vstack([up, top[::-1]]), pal["skin"], check=False))
        ops.append(_Op("fill", np.vstack([lo, bot[::-1]]), pal["skin"], check=False))
        ops.append(_Op("line", up, pal["lash"], 0.04))
        ops.append(_Op("line", lo, pal["line"], 0.012))
    ops += [_Op("line", brow, pal["brow"], ident.brow_thick) for brow in feats.brows]
    ops.append(_Op("line", feats.nose_bridge, pal["line"], 0.025))
    ops += [_Op("disc", n.reshape(1, 2), pal["nostril"], feats.nostril_r) for n in feats.nostrils]
    ops.append(_Op("fill", feats.lips_outer, pal["lips"]))
    ops.append(_Op("fill", feats.mouth_inner, pal["mouth"]))
    ops.append(_Op("fill", feats.teeth, pal["teeth"]))
    if len(feats.mouth_inner) == 0:
        ops.append(_Op("line", feats.lip_line, _scale(pal["lips"], 0.5), 0.035))
    ops += [_Op("line", ln, pal["line"], 0.03) for ln in feats.lines]
    lenses: List[np.ndarray] = []
    if ident.glasses or "sunglasses" in head.occluders:
        for iris in feats.irises:
            lens = _ellipse(float(iris[0]), float(iris[1]) - 0.02, ident.eye_w * 1.55, ident.eye_w * 1.15)
            lens_px, visible = p.place(lens, 0.06)
            if visible:
                if "sunglasses" in head.occluders:
                    ops.append(_Op("fill", lens, _gray(22.0), lift=0.06))
                ops.append(_Op("line", lens, pal["frame"], 0.025, closed=True))
                lenses.append(lens_px)
        bridge = np.array([[-ident.eye_dist + ident.eye_w * 1.5, ident.eye_y - 0.04],
                           [ident.eye_dist - ident.eye_w * 1.5, ident.eye_y - 0.04]], np.float32)
        ops.append(_Op("line", bridge, pal["frame"], 0.025))
    p.draw(ops)
    return feats, lenses


def _gauss(t: np.ndarray, mu: float, sigma: float) -> np.ndarray:
    """exp(-(t - mu)² / 2σ²) on a 1-D float32 axis (one factor of a separable 2-D Gaussian)."""
    d = t - np.float32(mu)
    return np.exp(d * d * np.float32(-0.5 / (sigma * sigma)))


def shading(shape: Tuple[int, int], head: Head, cond: Conditions) -> np.ndarray:
    """Lambertian shading (H×W float32) of a head-shaped dome plus eye-socket and nose shadows.

    Normals come from the head's projected ellipse, which is cheap and close enough for faces; the
    neck below gets the ambient term only (it is in the chin's shadow).

    This runs once per rendered face, so it is written for speed: everything linear in the pixel
    position (the ellipse coordinates and the in-plane part of the light) is a row vector plus a
    column vector, the shadows are axis-aligned Gaussians and hence outer products of 1-D factors,
    and all arithmetic stays in float32 (``math`` scalars, not NumPy float64 ones, which would
    promote whole images to float64).
    """
    h, w = shape
    ident = head.ident
    # Work only in the head's neighbourhood; outside it the shading is the constant "neck" value.
    rad = 1.35 * max(ident.a, ident.b) * head.scale
    x0, x1 = max(0, int(head.cx - rad)), min(w, int(head.cx + rad) + 1)
    y0, y1 = max(0, int(head.cy - rad)), min(h, int(head.cy + rad) + 1)
    outside = cond.ambient * 0.8 + 0.4 * cond.diffuse * cond.light[2]
    full = np.full((h, w), outside, np.float32)
    if x1 <= x0 or y1 <= y0:
        return full
    xs = np.arange(x0, x1, dtype=np.float32)
    ys = np.arange(y0, y1, dtype=np.float32)[:, None]
    dx, dy = xs - np.float32(head.cx), ys - np.float32(head.cy)
    c, s = math.cos(math.radians(head.roll)), math.sin(math.radians(head.roll))
    ka, kb = 1.0 / (ident.a * head.scale), 1.0 / (ident.b * head.scale)
    # (u, v): the pixel in head-ellipse coordinates (roll undone), u² + v² ≤ 1 on the face.
    u = dx * np.float32(c * ka) + dy * np.float32(s * ka)
    v = dy * np.float32(c * kb) - dx * np.float32(s * kb)
    r2 = u * u + v * v
    lx, ly, lz = cond.light
    # n·l = u·lx + v·ly + nz·lz; the first two terms are linear in (dx, dy).
    lin = dx * np.float32(lx * c * ka - ly * s * kb) + dy * np.float32(lx * s * ka + ly * c * kb)
    nz = np.sqrt(np.maximum(np.float32(1.0) - r2, np.float32(0.0)))
    lam = np.clip(lin + nz * np.float32(lz), np.float32(0.0), np.float32(1.0))
    shade = np.where(r2 <= 1.0, lam * np.float32(cond.diffuse) + np.float32(cond.ambient), np.float32(outside))
    sig = 0.21 * ident.a * head.scale
    # Shadow centres: both eye sockets and the side of the nose away from the light.
    centres = np.array([[-ident.eye_dist, ident.eye_y - 0.04], [ident.eye_dist, ident.eye_y - 0.04],
                        [-math.copysign(1.0, lx) * 0.12, ident.eye_y + ident.nose_len * 0.6]], np.float32)
    (lex, ley), (rex, rey), (nx, ny) = head.camera().place(ident, centres)[0].tolist()
    xr = xs[None, :]
    dark = np.float32(0.4) * _gauss(ys, ley, sig) * _gauss(xr, lex, sig)
    dark += np.float32(0.4) * _gauss(ys, rey, sig) * _gauss(xr, rex, sig)
    dark += np.float32(0.35 * abs(lx)) * _gauss(ys, ny, 1.5 * sig) * _gauss(xr, nx, 0.6 * sig)
    full[y0:y1, x0:x1] = shade * (np.float32(1.0) - np.minimum(dark, np.float32(0.6)))
    return full
