"""The three cameras of the synthetic world and what each does to a face.

Every difference between domains is a cause a real deployment camera has (see DOMAINS.md): head pose
relative to the camera, illumination (direction, hardness, fall-off), the sensor's spectral response
(near-infrared: pale smooth skin, lips without contrast, dark irises or bright pupils), optics
(vignetting, low resolution), motion blur, noise, compression, occlusion and class balance. None of
them is a trivial tag a model could key on, so adaptation can close part of the gap.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from fer_edge.runtime.errors import DataError

Range = Tuple[float, float]


@dataclass(frozen=True)
class DomainSpec:
    """Distributions one domain's samples are drawn from (all ranges are uniform unless noted)."""

    name: str
    colour: str                      # "bgr" colour, "gray" single channel (NIR), "mixed" (IR night or washed)
    nir: bool                        # near-infrared reflectances (skin bright, lips/iris flat)
    yaw_sd: float
    yaw_max: float
    pitch: Range
    roll_sd: float
    class_weights: Tuple[float, ...]  # in LABELS order
    intensity_beta: Tuple[float, float]
    ambient: Range
    diffuse: Range
    side_light: Range                # |x| of the light direction: 0 frontal … 0.9 from the side
    background: str                  # studio | cabin | kiosk
    backlight: Range                 # background brightness factor
    face_gain: Range                 # inverse-square fall-off: a leaning face brightens
    vignette: Range
    noise: Range                     # sensor noise sigma (0..255 scale)
    blur_p: float
    blur_len: Range                  # motion-blur length in pixels at 112 px face crops
    occluder_p: Dict[str, float]     # hand, wheel, sunglasses
    jpeg: Optional[Range]            # JPEG quality range, None = lossless
    face_px: Optional[Range]         # native face size in pixels before upscaling (low-res cameras)
    bright_pupil_p: float = 0.0
    glasses_glint: bool = False


DOMAINS: Dict[str, DomainSpec] = {
    "studio": DomainSpec(
        name="studio", colour="bgr", nir=False, yaw_sd=8.0, yaw_max=20.0, pitch=(-8.0, 8.0), roll_sd=4.0,
        class_weights=(1, 1, 1, 1, 1, 1, 1), intensity_beta=(2.6, 1.2), ambient=(0.55, 0.7),
        diffuse=(0.3, 0.45), side_light=(0.0, 0.3), background="studio", backlight=(0.9, 1.1),
        face_gain=(0.95, 1.05), vignette=(0.0, 0.05), noise=(0.0, 2.0), blur_p=0.0, blur_len=(0, 0),
        occluder_p={}, jpeg=None, face_px=None),
    "cabin-nir": DomainSpec(
        # The illuminator sits next to the lens, so the light is mostly frontal-to-oblique (side_light
        # up to 0.6); hard side light beyond that is the daytime-sun case and stays rarer in footage.
        name="cabin-nir", colour="gray", nir=True, yaw_sd=13.0, yaw_max=45.0, pitch=(-22.0, -5.0),
        roll_sd=6.0, class_weights=(3, 1, 1, 1, 1, 1, 1), intensity_beta=(1.7, 1.5), ambient=(0.3, 0.45),
        diffuse=(0.7, 1.0), side_light=(0.15, 0.6), background="cabin", backlight=(0.3, 0.6),
        face_gain=(0.8, 1.3), vignette=(0.2, 0.45), noise=(1.5, 5.0), blur_p=0.2, blur_len=(2, 4),
        occluder_p={"hand": 0.05, "wheel": 0.06, "sunglasses": 0.04}, jpeg=None, face_px=None,
        bright_pupil_p=0.35, glasses_glint=True),
    "kiosk": DomainSpec(
        name="kiosk", colour="mixed", nir=False, yaw_sd=14.0, yaw_max=35.0, pitch=(15.0, 35.0), roll_sd=5.0,
        class_weights=(3, 1.2, 1, 1, 1, 1, 1), intensity_beta=(1.6, 1.6), ambient=(0.35, 0.55),
        diffuse=(0.2, 0.4), side_light=(0.0, 0.5), background="kiosk", backlight=(1.2, 1.6),
        face_gain=(0.55, 0.85), vignette=(0.1, 0.3), noise=(2.0, 6.0), blur_p=0.15, blur_len=(2, 4),
        occluder_p={}, jpeg=(15.0, 45.0), face_px=(28.0, 48.0)),
}


#: The camera factors a domain is made of, as groups of :class:`DomainSpec` fields. A factor study
#: (benchmarks/domain_factors.py) swaps one group between two domains to measure what it costs; the
#: groups follow the physics of DOMAINS.md, so each is something an integrator can change or augment.
FACTORS: Dict[str, Tuple[str, ...]] = {
    "pitch": ("pitch",),                                             # camera above/below the face
    "yaw": ("yaw_sd", "yaw_max", "roll_sd"),                         # head turns and tilts
    "spectrum": ("colour", "nir", "bright_pupil_p", "glasses_glint"),  # near-infrared reflectances
    "light": ("ambient", "diffuse", "side_light", "backlight", "face_gain", "vignette"),
    "background": ("background",),                                   # what the crop's margin shows
    "sensor": ("noise", "blur_p", "blur_len", "jpeg", "face_px"),    # noise, motion blur, compression, resolution
    "occluders": ("occluder_p",),                                    # hands, wheel, sunglasses
    "intensity": ("intensity_beta",),                                # how strongly people express
}


def swap_factors(base: DomainSpec, donor: DomainSpec, factors: Sequence[str], name: str) -> DomainSpec:
    """``base`` with the fields of ``factors`` taken from ``donor`` (unknown factor → DataError)."""
    unknown = [f for f in factors if f not in FACTORS]
    if unknown:
        raise DataError(f"unknown domain factor(s) {unknown}; choose from {list(FACTORS)}")
    fields = {k: getattr(donor, k) for f in factors for k in FACTORS[f]}
    return dataclasses.replace(base, name=name, **fields)


def get_domain(name: str) -> DomainSpec:
    if name not in DOMAINS:
        raise DataError(f"unknown synthetic domain {name!r}; choose one of {sorted(DOMAINS)}")
    return DOMAINS[name]


@dataclass(frozen=True)
class Conditions:
    """One sample's (or one video's) draw from a domain: pose, light, sensor and occluders."""

    yaw: float
    pitch: float
    roll: float
    light: Tuple[float, float, float]
    ambient: float
    diffuse: float
    face_gain: float
    backlight: float
    vignette: float
    noise: float
    blur_len: float
    blur_angle: float
    occluders: Tuple[str, ...]
    jpeg: Optional[int]
    face_px: Optional[float]
    bright_pupil: bool
    gray_night: bool


def _u(rng: np.random.Generator, r: Range) -> float:
    return float(rng.uniform(r[0], r[1])) if r[1] > r[0] else float(r[0])


def sample_pose(rng: np.random.Generator, spec: DomainSpec) -> Tuple[float, float, float]:
    yaw = float(np.clip(rng.normal(0.0, spec.yaw_sd), -spec.yaw_max, spec.yaw_max))
    return yaw, _u(rng, spec.pitch), float(rng.normal(0.0, spec.roll_sd))


def sample_conditions(rng: np.random.Generator, spec: DomainSpec) -> Conditions:
    yaw, pitch, roll = sample_pose(rng, spec)
    side = _u(rng, spec.side_light) * (1 if rng.random() < 0.5 else -1)
    light = np.array([side, -0.25, max(0.25, 1.0 - abs(side))])
    light /= np.linalg.norm(light)
    occ = tuple(k for k, p in sorted(spec.occluder_p.items()) if rng.random() < p)
    blur = _u(rng, spec.blur_len) if rng.random() < spec.blur_p else 0.0
    return Conditions(
        yaw=yaw, pitch=pitch, roll=roll, light=tuple(float(v) for v in light),
        ambient=_u(rng, spec.ambient), diffuse=_u(rng, spec.diffuse), face_gain=_u(rng, spec.face_gain),
        backlight=_u(rng, spec.backlight), vignette=_u(rng, spec.vignette), noise=_u(rng, spec.noise),
        blur_len=blur, blur_angle=float(rng.uniform(0, 180)), occluders=occ,
        jpeg=int(_u(rng, spec.jpeg)) if spec.jpeg else None,
        face_px=_u(rng, spec.face_px) if spec.face_px else None,
        bright_pupil=bool(rng.random() < spec.bright_pupil_p),
        gray_night=spec.colour == "gray" or (spec.colour == "mixed" and rng.random() < 0.6))
