"""Near-infrared views of colour source faces (train/spectral.py, ``train.augment.spectral``)."""
from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from fer_edge.config import load_config
from fer_edge.data.dataset import FaceDataset
from fer_edge.runtime.contract import PreprocessSpec, preprocess
from fer_edge.train.augment import spectral_swap
from fer_edge.train.spectral import channel_mix, nir_view, nir_views
from fer_edge.train.trainer import Trainer

sys.path.insert(0, str(Path(__file__).parent))
from test_train_fixtures import make_datasets  # noqa: E402

SKIN, LIPS = (120, 150, 200), (90, 80, 170)  # BGR: lips are redder and darker than the skin around them


def _face(size: int = 32) -> np.ndarray:
    img = np.zeros((size, size, 3), np.uint8)
    img[:] = SKIN
    img[20:24, 10:22] = LIPS
    return img


def test_every_red_weighted_view_shows_paler_lips_than_luminance():
    """What a near-infrared camera does to lips: their contrast against the skin shrinks."""
    img = _face()
    lum = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(float)
    lum_contrast = lum[5, 5] - lum[21, 15]
    rng = np.random.default_rng(0)
    for _ in range(50):
        w = channel_mix(rng)
        assert w.sum() == pytest.approx(1.0) and (w >= 0).all() and 0.6 <= w[2] <= 1.0
        view = nir_view(img, w, clahe=False).astype(float)
        assert view.ndim == 2
        assert 0 < view[5, 5] - view[21, 15] < lum_contrast


def test_gray_crops_have_no_view_and_keep_their_input(tmp_path):
    assert nir_view(np.full((8, 8), 100, np.uint8), np.array([0.1, 0.2, 0.7]), clahe=True) is None
    cv2.imwrite(str(tmp_path / "c.png"), _face())
    cv2.imwrite(str(tmp_path / "g.png"), cv2.cvtColor(_face(), cv2.COLOR_BGR2GRAY))
    from fer_edge.data.dataset import FaceRecord

    ds = FaceDataset(tmp_path, [FaceRecord("c.png", 0), FaceRecord("g.png", 1)], ("a", "b"), name="mix")
    spec = PreprocessSpec(size=16, colour="gray", mean=(0.5,), std=(0.25,))
    x, keep = ds.arrays(spec)
    views = nir_views(ds, keep, x, spec, clahe=True, seed=3)
    assert views is not None and views.shape == x.shape
    assert not np.allclose(views[0], x[0]) and np.array_equal(views[1], x[1])
    assert np.array_equal(views, nir_views(ds, keep, x, spec, clahe=True, seed=3))
    # the view is what the runtime's preprocess makes of the red-weighted gray frame
    w = channel_mix(np.random.default_rng([3, 0x4E4952]))
    assert np.allclose(views[0], preprocess(nir_view(_face(), w, clahe=True), spec))
    gray_only = FaceDataset(tmp_path, [FaceRecord("g.png", 1)], ("a", "b"), name="gray")
    xg, kg = gray_only.arrays(spec)
    assert nir_views(gray_only, kg, xg, spec, clahe=True, seed=3) is None


def test_swap_probability_is_respected_and_deterministic():
    x, v = torch.zeros(400, 1, 2, 2), torch.ones(400, 1, 2, 2)
    assert torch.equal(spectral_swap(x, v, 0.0, 0, 3, 7), x)
    assert torch.equal(spectral_swap(x, v, 1.0, 0, 3, 7), v)
    half = spectral_swap(x, v, 0.5, 0, 3, 7)
    assert 0.4 < float(half.mean()) < 0.6 and torch.equal(half, spectral_swap(x, v, 0.5, 0, 3, 7))


def test_trainer_gives_views_to_a_colour_source_only(tmp_path):
    datasets = make_datasets(tmp_path / "faces", n_source=24, n_target=16)
    src = datasets["source"]
    for rec in src.records:  # tint the gray fixture faces so the source is a colour camera
        p = src.image_path(rec)
        g = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE).astype(np.float32)
        cv2.imwrite(str(p), np.clip(np.stack([g * 0.7, g * 0.85, g], -1), 0, 255).astype(np.uint8))
    src._cache.clear()  # decoded nothing yet, but make sure the colour files are what is read
    cfg = load_config("ci", ["train.epochs=1", "train.steps_per_epoch=2", "train.batch_size=8",
                             "train.feature_samples=8", "train.augment.spectral=0.5"])
    trainer = Trainer(cfg, datasets, tmp_path / "run", "source_only")
    assert trainer.sup.x_nir is not None and trainer.sup.x_nir.shape == trainer.sup.x.shape
    assert trainer.splits["target"].x_nir is None and trainer.splits["source_val"].x_nir is None
    oracle = Trainer(cfg, datasets, tmp_path / "oracle", "target_oracle")
    assert oracle.sup.x_nir is None
    off = Trainer(load_config("ci", ["train.epochs=1"]), datasets, tmp_path / "off", "source_only")
    assert off.sup.x_nir is None
