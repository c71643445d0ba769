"""Batch augmentation for the trainer: horizontal flip, 3D viewpoint, small affine jitter, brightness/contrast,
random erasing.

Why here and not in the data loaders: the loaders produce exactly the runtime's preprocessed input
(one ``preprocess`` for training and deployment); augmentation is a training-only perturbation of
that tensor, applied to source *and* target batches of every method alike, so it never changes the
contract and never favours one method. It is the usual companion of adversarial adaptation (tllib
trains every method with flips and crops): without it a network memorises the clean source faces
and breaks on any camera effect, which leaves alignment nothing stable to align.

Draws are a pure function of ``(seed, stream, step)`` — a resumed run augments exactly like an
uninterrupted one, and every rank of a distributed run draws its own slice deterministically.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .config import AugmentConfig
from .sampling import stream_generator
from .viewpoint import viewpoint_map


def _uniform(g: torch.Generator, n: int, half_width: float) -> torch.Tensor:
    return (torch.rand(n, generator=g) * 2.0 - 1.0) * float(half_width)


def augment(x: torch.Tensor, cfg: AugmentConfig, seed: int, stream: int, step: int,
            crop_margin: float = 0.2) -> torch.Tensor:
    """Augmented copy of an ``N×C×H×W`` batch (``x`` itself when nothing is enabled).

    ``crop_margin`` is the crop policy's margin (``crop.margin``): the viewpoint warp needs to know how
    large the head is in the crop.
    """
    if not cfg.active() or x.shape[0] == 0:
        return x
    n = x.shape[0]
    g = stream_generator(seed, stream, step)
    # Every draw is taken whether or not its augmentation is on, so enabling one option does not
    # shift the random numbers of another.
    flip = torch.rand(n, generator=g) < 0.5
    tx, ty = _uniform(g, n, cfg.shift) * 2.0, _uniform(g, n, cfg.shift) * 2.0  # grid units: [-1, 1] = size
    zoom = 1.0 + _uniform(g, n, cfg.scale)
    angle = _uniform(g, n, math.radians(cfg.rotate))
    gain = 1.0 + _uniform(g, n, cfg.contrast)
    bias = _uniform(g, n, cfg.brightness)
    pitch, yaw = _uniform(g, n, cfg.pitch), _uniform(g, n, cfg.yaw)  # drawn after the older ones: they keep values
    erase = torch.rand(n, generator=g) < float(cfg.erase)
    area, log_aspect = 0.02 + torch.rand(n, generator=g) * 0.31, (torch.rand(n, generator=g) * 2 - 1) * math.log(3.3)
    ex, ey = torch.rand(n, generator=g), torch.rand(n, generator=g)
    out = x
    if cfg.flip:
        out = torch.where(flip.to(x.device)[:, None, None, None], out.flip(-1), out)
    if cfg.shift or cfg.scale or cfg.rotate or cfg.pitch or cfg.yaw:
        # Detector jitter acts on the final crop, so the affine map comes first in output coordinates and
        # the viewpoint map after it: one grid, one interpolation.
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
        grid = F.affine_grid(theta.to(torch.float32), list(out.shape), align_corners=False)
        if cfg.pitch or cfg.yaw:
            grid = viewpoint_map(grid, pitch, yaw, crop_margin)
        out = F.grid_sample(out, grid.to(x.device, x.dtype), mode="bilinear", padding_mode="border",
                            align_corners=False)
    if cfg.brightness or cfg.contrast:
        out = out * gain.to(x.device, x.dtype)[:, None, None, None] + bias.to(x.device, x.dtype)[:, None, None, None]
    if cfg.erase:
        out = out * (1.0 - erase_mask(out.shape[-2], out.shape[-1], erase, area, log_aspect, ex, ey).to(out))
    return out


def erase_mask(h: int, w: int, on: torch.Tensor, area: torch.Tensor, log_aspect: torch.Tensor, cx: torch.Tensor,
               cy: torch.Tensor) -> torch.Tensor:
    """``N×1×h×w`` mask, 1 inside each erased rectangle: ``area`` fraction of the face, aspect ``exp(log_aspect)``,
    its top-left corner at ``(cx, cy)`` of the room left for it (so it always fits); rows with ``on`` false are 0."""
    aspect = torch.exp(log_aspect)
    eh = torch.clamp(torch.round(torch.sqrt(area * aspect) * h), 1, h)
    ew = torch.clamp(torch.round(torch.sqrt(area / aspect) * w), 1, w)
    y0, x0 = torch.floor(cy * (h - eh + 1)), torch.floor(cx * (w - ew + 1))
    rows, cols = torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32)
    in_y = (rows[None, :] >= y0[:, None]) & (rows[None, :] < (y0 + eh)[:, None])
    in_x = (cols[None, :] >= x0[:, None]) & (cols[None, :] < (x0 + ew)[:, None])
    mask = in_y[:, :, None] & in_x[:, None, :] & on[:, None, None]
    return mask[:, None].float()


def spectral_swap(x: torch.Tensor, x_nir: torch.Tensor, probability: float, seed: int, stream: int,
                  step: int) -> torch.Tensor:
    """``x`` with each row replaced by its near-infrared view (train/spectral.py) with ``probability``."""
    if probability <= 0 or x.shape[0] == 0:
        return x
    use = torch.rand(x.shape[0], generator=stream_generator(seed, stream, step)) < float(probability)
    return torch.where(use.to(x.device)[:, None, None, None], x_nir, x)
