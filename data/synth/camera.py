"""A frame as a camera records it: background, lit heads, occluders, then optics and sensor effects.

The order follows the physics: scene radiance (background + shaded heads + what is in front of
them), then the lens (vignetting, motion blur, resolution), then the sensor and codec (spectral
response → gray, noise, JPEG). Each effect is one small function so a domain is a choice of knobs.
"""
from __future__ import annotations

from functools import lru_cache
from typing import List, Sequence, Tuple

import cv2
import numpy as np

from .domains import Conditions, DomainSpec
from .head import on_surface
from .render import Head, draw_head, palette, shading

BBox = Tuple[float, float, float, float]
#: Pixels per face unit of a face cut as a 112-px crop with the default 0.2 margin (blur lengths refer to it).
REF_SCALE = 42.0


def background(h: int, w: int, spec: DomainSpec, cond: Conditions, rng: np.random.Generator) -> np.ndarray:
    """Scene radiance behind the faces (float32 H×W×3, 0..255)."""
    ramp = np.linspace(-1.0, 1.0, h, dtype=np.float32)[:, None, None]
    if spec.background == "studio":
        base = rng.uniform(150, 215) + rng.normal(0, 12, 3)
        # A vertical gradient only: clip one column, then repeat it across the frame.
        return _rows(np.clip(base + 14.0 * ramp, 0, 255), w)
    if spec.background == "cabin":
        base = rng.uniform(25, 50) * cond.backlight
        img = np.broadcast_to(base - 8.0 * ramp, (h, w, 3)).astype(np.float32)
        x0 = int(w * rng.uniform(0.2, 0.35))  # head rest behind the driver
        cv2.rectangle(img, (x0, int(h * 0.05)), (w - x0, int(h * 0.75)), _g(base * 1.6), -1)
        if rng.random() < 0.5:  # side window with daylight
            side = int(w * rng.uniform(0.08, 0.2))
            xs = (0, side) if rng.random() < 0.5 else (w - side, w)
            img[:, xs[0]:xs[1]] = rng.uniform(120, 220)
    else:  # kiosk: shop or office with a bright window or display behind the person
        base = rng.uniform(150, 200) * cond.backlight
        img = np.broadcast_to(base + 20.0 * ramp, (h, w, 3)).astype(np.float32)
        for _ in range(int(rng.integers(1, 4))):  # shelves, frames
            y = int(rng.uniform(0.1, 0.9) * h)
            cv2.line(img, (0, y), (w, y + int(rng.uniform(-0.05, 0.05) * h)), _g(base * 0.55),
                     max(1, h // 60))
        for _ in range(int(rng.integers(1, 3))):  # ceiling lights
            c = (int(rng.uniform(0, w)), int(rng.uniform(0, 0.15 * h)))
            cv2.circle(img, c, max(2, h // 25), _g(255.0), -1)
        img = cv2.GaussianBlur(img, (0, 0), max(0.5, h / 200))
    return np.clip(img, 0, 255, out=img)


def _rows(column: np.ndarray, w: int) -> np.ndarray:
    """An H×W×3 float32 C-contiguous image whose row ``i`` is the colour ``column[i]`` (``column`` H×1×3).

    ``broadcast_to(column, (h, w, 3)).astype(...)`` keeps the broadcast's axis order and returns a
    channel-planar (not C-contiguous) array, which made every later per-pixel operation on the frame
    several times slower; a nearest-neighbour resize of the column is an exact, contiguous copy.
    """
    col = np.ascontiguousarray(column, dtype=np.float32)
    return cv2.resize(col, (w, col.shape[0]), interpolation=cv2.INTER_NEAREST)


def _g(v: float) -> Tuple[float, float, float]:
    return (float(v), float(v), float(v))


def _occluders(img: np.ndarray, head: Head, skin: Sequence[float], cond: Conditions,
               rng: np.random.Generator) -> None:
    """Steering wheel and hand in front of the lower face (drawn over the scene radiance)."""
    s, ident = head.scale, head.ident
    chin = head.camera().project(on_surface(ident, np.array([[0.0, 1.0 * ident.b]], np.float32)))[0][0]
    if "wheel" in head.occluders:
        top = chin[1] - rng.uniform(0.0, 0.5) * s
        r = rng.uniform(3.0, 4.5) * s
        t = max(2, int(0.38 * s))
        centre = (int(chin[0] + rng.uniform(-0.8, 0.8) * s), int(top + r + t / 2))
        cv2.ellipse(img, centre, (int(r * 1.5), int(r)), 0, 180, 360, _g(rng.uniform(30, 60)), t, cv2.LINE_AA)
        cv2.ellipse(img, centre, (int(r * 1.5), int(r - t * 0.3)), 0, 200, 340, _g(rng.uniform(90, 140)),
                    max(1, t // 5), cv2.LINE_AA)
    if "hand" in head.occluders:
        side = 1 if rng.random() < 0.5 else -1
        cx = chin[0] + side * rng.uniform(0.3, 0.7) * s
        cy = chin[1] + rng.uniform(-0.15, 0.35) * s
        lit = tuple(float(min(255.0, v * rng.uniform(0.8, 1.15))) for v in skin)
        cv2.ellipse(img, (int(cx), int(cy + 0.4 * s)), (int(0.42 * s), int(0.55 * s)), side * 15, 0, 360, lit, -1,
                    cv2.LINE_AA)
        for k in range(4):  # fingers reaching up towards the cheek
            x = cx + side * (-0.35 + 0.2 * k) * s
            cv2.line(img, (int(x), int(cy)), (int(x - side * 0.12 * s), int(cy - (0.5 + 0.08 * k) * s)), lit,
                     max(2, int(0.14 * s)), cv2.LINE_AA)


def _glints(img: np.ndarray, lenses: List[np.ndarray], rng: np.random.Generator, scale: float) -> None:
    """Specular reflections of the on-axis NIR illuminators on glasses."""
    for lens in lenses:
        p = lens[int(rng.integers(len(lens)))] * 0.4 + lens.mean(axis=0) * 0.6
        cv2.circle(img, (int(p[0]), int(p[1])), max(1, int(0.05 * scale)), _g(255.0), -1, cv2.LINE_AA)


def motion_blur(img: np.ndarray, length: float, angle: float) -> np.ndarray:
    if length < 1.5:
        return img
    k = int(np.ceil(length)) | 1
    kernel = np.zeros((k, k), np.float32)
    kernel[k // 2, :] = 1.0
    rot = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), angle, 1.0)
    kernel = cv2.warpAffine(kernel, rot, (k, k))
    return cv2.filter2D(img, -1, kernel / max(kernel.sum(), 1e-6))


def _filled(h: int, w: int, colour: Sequence[float]) -> np.ndarray:
    """An H×W×3 uint8 image of one colour (truncated to integers), written row by row.

    ``img[:] = colour`` broadcasts a 3-vector per pixel, which NumPy does about 10× slower.
    """
    img = np.empty((h, w, 3), np.uint8)
    img.reshape(h, 3 * w)[:] = np.tile(np.asarray(colour, np.uint8), w)
    return img


def _bgr(f: np.ndarray) -> np.ndarray:
    """An H×W float32 per-pixel factor repeated over three channels (H×W×3).

    NumPy is slow to broadcast ``f[..., None]`` over a last axis of length 3 (a short inner loop per
    pixel); multiplying a BGR frame by this contiguous copy instead is several times faster.
    """
    return cv2.cvtColor(f, cv2.COLOR_GRAY2BGR)


@lru_cache(maxsize=16)
def _falloff(h: int, w: int) -> np.ndarray:
    """0.8 × the squared distance from the frame centre (1 at the edge midpoints, clipped at 2), H×W float32.

    The same for every frame of a size, so it is computed once; a vignette is ``1 - strength × this``.
    """
    ys, xs = np.ogrid[0:h, 0:w]
    r2 = ((xs - w / 2) / (w / 2)) ** 2 + ((ys - h / 2) / (h / 2)) ** 2
    fall = (np.clip(r2, 0, 2) / 2 * 1.6).astype(np.float32)
    fall.flags.writeable = False
    return fall


def vignette(img: np.ndarray, strength: float) -> np.ndarray:
    """Darken towards the corners: ``img`` × (1 - strength × 0.8 r²), r = 1 at the edge midpoints."""
    if strength <= 0:
        return img
    fall = np.float32(1.0) - np.float32(strength) * _falloff(*img.shape[:2])
    return img * (_bgr(fall) if img.ndim == 3 else fall)


def sensor_noise(shape: Tuple[int, ...], sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise N(0, sigma²) of ``shape``, float32, drawn from ``rng`` by the Box–Muller transform.

    Every pixel of every sample gets noise, so this is on the hot path: NumPy's float64 ``normal``
    plus the cast cost about as much as rendering the face; Box–Muller on float32 uniforms uses only
    vectorised log/sqrt/sin/cos and is about 4× faster, with the same distribution.
    """
    n = int(np.prod(shape))
    half = (n + 1) // 2
    u = rng.random(2 * half, dtype=np.float32)
    r = np.sqrt(np.float32(-2.0 * sigma * sigma) * np.log1p(-u[:half]))  # 1 - u ∈ (0, 1]: log is finite
    t = u[half:] * np.float32(2.0 * np.pi)
    out = np.empty(2 * half, np.float32)
    np.multiply(r, np.cos(t), out=out[:half])
    np.multiply(r, np.sin(t), out=out[half:])
    return out[:n].reshape(shape)


def compose(w: int, h: int, heads: Sequence[Head], spec: DomainSpec, cond: Conditions,
            rng: np.random.Generator) -> Tuple[np.ndarray, List[BBox]]:
    """Render a frame with ``heads`` and return (uint8 image, true face boxes).

    The image is single-channel for a gray (NIR) sensor and BGR otherwise.
    """
    out = background(h, w, spec, cond, rng)
    boxes: List[BBox] = []
    for head in heads:
        pal = palette(head.ident, spec.nir or cond.gray_night, cond)
        albedo = _filled(h, w, pal["skin"])
        mask = np.zeros((h, w), np.uint8)
        _, lenses = draw_head(albedo, mask, head, pal, np.random.default_rng([head.ident.ident, 7]))
        # out ← out·(1 - m) + albedo·shade·m, in place, with the per-pixel factors computed on H×W.
        m = cv2.GaussianBlur(mask, (3, 3), 0).astype(np.float32) * np.float32(1.0 / 255.0)
        k = shading((h, w), head, cond) * np.float32(cond.face_gain) * m
        out *= _bgr(np.float32(1.0) - m)
        out += albedo * _bgr(k)
        if spec.glasses_glint:
            _glints(out, lenses, rng, head.scale)
        _occluders(out, head, np.asarray(pal["skin"]) * cond.face_gain * (cond.ambient + cond.diffuse), cond, rng)
        boxes.append(head.box())
    out = vignette(out, cond.vignette)
    ref = float(np.mean([hd.scale for hd in heads])) if heads else REF_SCALE
    out = motion_blur(out, cond.blur_len * ref / REF_SCALE, cond.blur_angle)
    if cond.face_px and heads:
        side = float(np.mean([b[2] for b in boxes]))
        f = cond.face_px / max(side, 1.0)
        if f < 1.0:
            small = cv2.resize(out, (max(8, int(w * f)), max(8, int(h * f))), interpolation=cv2.INTER_AREA)
            out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    # ``out`` is this function's own float32 frame from here on, so it is updated in place.
    if cond.gray_night:
        out = cv2.cvtColor(np.clip(out, 0, 255, out=out), cv2.COLOR_BGR2GRAY)
    elif spec.colour == "mixed":  # washed-out day colour: 0.55·out + 0.35·luminance + 25
        lum = cv2.cvtColor(np.clip(out, 0, 255), cv2.COLOR_BGR2GRAY)
        out *= np.float32(0.55)
        out += _bgr(lum * np.float32(0.35) + np.float32(25.0))
    if cond.noise > 0:
        out += sensor_noise(out.shape, cond.noise, rng)
    out += np.float32(0.5)
    img = np.clip(out, 0, 255, out=out).astype(np.uint8)
    if cond.jpeg:
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(cond.jpeg)])
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if spec.colour == "mixed" and img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    return img, boxes
