"""The viewpoint augmentation re-renders a crop from another camera angle with a 3D head prior."""
import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F


def _warp(x: torch.Tensor, pitch: float, yaw: float = 0.0, margin: float = 0.2) -> torch.Tensor:
    from fer_edge.train.viewpoint import identity_grid, viewpoint_map

    n = x.shape[0]
    grid = viewpoint_map(identity_grid(x.shape), torch.full((n,), float(pitch)), torch.full((n,), float(yaw)), margin)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def test_no_rotation_is_the_identity_map():
    from fer_edge.train.viewpoint import identity_grid, viewpoint_map

    g = identity_grid((3, 1, 16, 20))
    out = viewpoint_map(g, torch.zeros(3), torch.zeros(3), 0.2)
    assert out.shape == (3, 16, 20, 2)
    assert torch.allclose(out, g, atol=1e-5)


def test_seen_from_below_a_level_mouth_line_droops_at_the_corners_and_from_above_it_lifts():
    """The physics behind the cabin's neutral-reads-as-sad error: mouth corners lie further back on the
    curved face than its centre, so a camera below the face sees them lower; a 2D warp cannot do this."""
    from fer_edge.train.viewpoint import head_in_grid

    size = 257
    per_unit, y0 = head_in_grid(0.2)
    row = int(round(((y0 + 0.62 * per_unit) + 1) / 2 * size - 0.5))   # mouth height, 0.62 head half-widths down
    x = torch.zeros(1, 1, size, size)
    x[0, 0, row - 1:row + 2, :] = 1.0

    def line_row(img: torch.Tensor, col: int) -> float:
        c = img[0, 0, :, col]
        return float((c * torch.arange(size)).sum() / c.sum())

    centre, corner = size // 2, size // 2 + int(0.45 * per_unit * size / 2)   # 0.45 half-widths out
    below, above = _warp(x, -20.0), _warp(x, 20.0)
    droop_below = line_row(below, corner) - line_row(below, centre)
    droop_above = line_row(above, corner) - line_row(above, centre)
    assert droop_below > 0.5 and droop_above < -0.5, (droop_below, droop_above)


def test_warping_a_frontal_render_approaches_the_true_render_from_below_and_above():
    """Against the synthetic renderer's own 3D heads: the warped frontal face is closer (mean abs error)
    to the face actually rendered at that pitch than the frontal face is."""
    import cv2

    from fer_edge.data.synth.camera import compose
    from fer_edge.data.synth.domains import get_domain, sample_conditions
    from fer_edge.data.synth.sample import make_head
    from fer_edge.runtime.crop import CropPolicy, crop_face

    spec, pol = get_domain("studio"), CropPolicy(margin=0.2)

    def render(ident: int, pitch: float) -> np.ndarray:
        rng = np.random.default_rng(ident)
        cond = dataclasses.replace(sample_conditions(rng, spec), yaw=0.0, pitch=pitch, roll=0.0, occluders=(),
                                   noise=0.0, blur_len=0.0)
        head, _ = make_head(rng, spec, ident, (0.0, pitch, 0.0), 70, 70, 64 / 1.4, (), expression="neutral",
                            intensity=0.5)
        frame, boxes = compose(140, 140, [head], spec, cond, np.random.default_rng(ident))
        crop = cv2.cvtColor(crop_face(frame, boxes[0], pol), cv2.COLOR_BGR2GRAY)
        return cv2.resize(crop, (64, 64), interpolation=cv2.INTER_AREA).astype(np.float32)

    for pitch in (-18.0, 25.0):
        warped_err, frontal_err = [], []
        for ident in range(3):
            front, true = render(ident, 0.0), render(ident, pitch)
            warped = _warp(torch.from_numpy(front)[None, None], pitch)[0, 0].numpy()
            warped_err.append(np.abs(warped - true).mean())
            frontal_err.append(np.abs(front - true).mean())
        assert np.mean(warped_err) < 0.75 * np.mean(frontal_err), (pitch, warped_err, frontal_err)


def test_augment_with_viewpoint_is_deterministic_and_leaves_other_draws_unchanged():
    from fer_edge.train.augment import augment
    from fer_edge.train.config import AugmentConfig

    x = torch.randn(8, 1, 32, 32)
    base = AugmentConfig(flip=True, shift=0.05, brightness=0.2)
    vp = dataclasses.replace(base, pitch=20.0, yaw=15.0)
    a, b = augment(x, vp, 0, 1, 3), augment(x, vp, 0, 1, 3)
    assert torch.equal(a, b) and torch.isfinite(a).all() and not torch.equal(a, augment(x, base, 0, 1, 3))
    # Enabling the viewpoint must not shift the other augmentations' draws: a constant image is unchanged by
    # any warp, so with the viewpoint on it gets exactly the photometric change it gets without.
    const = torch.full((8, 1, 32, 32), 0.7)
    photo = AugmentConfig(brightness=0.3, contrast=0.3)
    assert torch.allclose(augment(const, dataclasses.replace(photo, pitch=30.0), 5, 2, 9),
                          augment(const, photo, 5, 2, 9), atol=1e-6)
    assert AugmentConfig(pitch=10.0).active()


@pytest.mark.parametrize("key,value", [("pitch", 50.0), ("yaw", -1.0)])
def test_viewpoint_range_is_checked(key, value):
    from fer_edge.runtime.errors import ConfigError
    from fer_edge.train.config import AugmentConfig

    with pytest.raises(ConfigError, match=key):
        AugmentConfig(**{key: value})
