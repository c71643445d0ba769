"""Viewpoint augmentation: re-render a face crop as seen from a different pitch/yaw with a 3D head prior.

Why: the deployment camera's *viewpoint* differs from a studio photo's (DOMAINS.md: the cabin camera looks
up at the driver from the steering column, a kiosk camera looks down). Seen from below, a relaxed mouth's
corners — which lie further back on the curved face than its centre — drop in the image, and a neutral face
reads as sad or angry; seen from above they rise. A 2D affine or perspective warp of a flat image cannot
produce that, because the shift depends on each point's *depth*. This module puts the crop on an ellipsoid
head (the generic shape prior face profiling methods use in place of a fitted 3D face model, e.g. Zhu et
al., CVPR 2016), rotates it and projects it back, so training sees the whole range of viewpoints without a
single target label.

The warp is a pure inverse map for ``grid_sample``: for each output pixel the ray along the new view
direction is intersected with the rotated ellipsoid (front-most root) and the hit point's frontal position
is where the input is sampled. Rays that miss the head use the rim's tangent point (the discriminant clamped
at 0), which extends the map continuously into hair and background.

Measured (docs/results/dev-crop-contract.md): on the synthetic cabin, pitch turned out to be a minor part of
the gap (benchmarks/domain_factors.py), and this augmentation did not raise source-only accuracy, so it is
off by default (``train.augment.pitch``/``yaw``). Honest limits: the prior assumes the input face is frontal
(it re-rotates by the *drawn* angle relative to whatever pose the face had) and an ellipsoid has no nose or
brow ridge. On the synthetic world the heads are ellipsoids, so the prior is closer to the truth than it can
be on real faces.
"""
from __future__ import annotations

import dataclasses
from functools import lru_cache
from typing import Tuple

import numpy as np
import torch

#: Ellipsoid head prior in head half-widths: half width, half height, depth — the synthetic head's mean;
#: anthropometric tables give similar ratios for real heads (height ≈ 1.3, depth ≈ 0.9 of the half width).
HEAD_AXES: Tuple[float, float, float] = (1.0, 1.31, 0.925)


@lru_cache(maxsize=1)
def _mean_head():
    """The mean synthetic head, for :func:`face_box`'s detector-box rule (Haar-calibrated)."""
    from fer_edge.data.synth.head import sample_identity

    a, b, c = HEAD_AXES
    return dataclasses.replace(sample_identity(0), a=a, b=b, c=c, jaw_taper=0.275, eye_y=-0.04, brow_gap=0.23)


def detector_boxes(rot: np.ndarray) -> np.ndarray:
    """N×3 (centre x, centre y, side) in head half-widths: where a face detector puts its box on the mean
    head under each rotation. The crop follows the detector, so a re-rendered view must be re-boxed too:
    seen from below the box takes in the chin and grows about 6 %, and its centre moves up."""
    from fer_edge.data.synth.head import box_points, detector_box_of

    pts = box_points(_mean_head()).astype(np.float64)
    return detector_box_of(np.einsum("mk,njk->nmj", pts, np.asarray(rot, np.float64)[:, :2, :]))


def head_in_grid(crop_margin: float) -> Tuple[float, float]:
    """(grid units per head half-width, head-centre y in grid units) in a frontal crop cut with
    ``crop_margin`` — ``grid_sample`` coordinates run from -1 to 1 across the crop."""
    _, cy, side = _frontal_box()
    per_unit = 2.0 / ((1.0 + 2.0 * float(crop_margin)) * side)
    return per_unit, -cy * per_unit


def rotations(pitch_deg: torch.Tensor, yaw_deg: torch.Tensor) -> np.ndarray:
    """N×3×3 head rotations in the synthetic head's convention (``pitch < 0``: the camera is below the face)."""
    from fer_edge.data.synth.head import rotation

    return np.stack([rotation(float(y), float(p), 0.0) for p, y in zip(pitch_deg.tolist(), yaw_deg.tolist())])


@lru_cache(maxsize=1)
def _frontal_box() -> Tuple[float, float, float]:
    cx, cy, side = detector_boxes(np.eye(3)[None])[0]
    return float(cx), float(cy), float(side)


def identity_grid(shape: Tuple[int, int, int, int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The N×H×W×2 grid that samples every pixel where it is (pixel centres, ``align_corners=False``)."""
    n, _, h, w = shape
    gy = (torch.arange(h, dtype=dtype) * 2 + 1) / h - 1
    gx = (torch.arange(w, dtype=dtype) * 2 + 1) / w - 1
    gyy, gxx = torch.meshgrid(gy, gx, indexing="ij")
    return torch.stack([gxx, gyy], -1).expand(n, h, w, 2)


def viewpoint_map(grid: torch.Tensor, pitch_deg: torch.Tensor, yaw_deg: torch.Tensor,
                  crop_margin: float = 0.2) -> torch.Tensor:
    """Map output-crop coordinates (N×H×W×2 in ``grid_sample`` units) to where the input crop shows that
    point of the head when the view turns by (``pitch_deg``, ``yaw_deg``) — one value per sample.

    Output and input crops are both cut around the detector box (grown by ``crop_margin`` on every side,
    runtime/crop.py): the input's around the frontal head's box, the output's around the rotated head's.
    Taking a grid rather than a shape lets a caller compose the map with an affine jitter into one
    ``grid_sample`` (one interpolation, not two).
    """
    dtype = grid.dtype
    gxx, gyy = grid[..., 0], grid[..., 1]
    rot_np = rotations(pitch_deg, yaw_deg)                     # q = R·P  ⇒  P = Rᵀ q
    rot = torch.as_tensor(rot_np, dtype=dtype)
    grow = 1.0 + 2.0 * float(crop_margin)
    box = torch.as_tensor(detector_boxes(rot_np), dtype=dtype)
    box0 = _frontal_box()
    half, half0 = box[:, 2] * grow / 2, box0[2] * grow / 2
    qx = box[:, 0, None, None] + gxx * half[:, None, None]     # head units, view frame (N×H×W)
    qy = box[:, 1, None, None] + gyy * half[:, None, None]
    # P = Rᵀq = u + t·v with u = Rᵀ(qx, qy, 0) and v = Rᵀe_z; the front root t of Pᵀ·diag(d)·P = 1 is the
    # point of the head this pixel shows. Written per coordinate: a few elementwise passes over N×H×W.
    r = rot[:, :, :, None, None]                              # R[i][k] = r[:, i, k]; Rᵀ[k][i] = R[i][k]
    u = [qx * r[:, 0, k] + qy * r[:, 1, k] for k in range(3)]
    v = [r[:, 2, k] for k in range(3)]
    d = [1.0 / ax ** 2 for ax in HEAD_AXES]
    a = sum(d[k] * v[k] * v[k] for k in range(3))
    b = sum(d[k] * u[k] * v[k] for k in range(3))
    c = sum(d[k] * u[k] * u[k] for k in range(3)) - 1.0
    t = (-b + torch.sqrt(torch.clamp(b * b - a * c, min=0.0))) / a
    px, py = u[0] + t * v[0], u[1] + t * v[1]
    return torch.stack([(px - box0[0]) / half0, (py - box0[1]) / half0], -1)
