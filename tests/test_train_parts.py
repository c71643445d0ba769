"""Small trainer parts: AdaBN, RNG state round trip, per-epoch log averaging, source-val split."""
from __future__ import annotations

import math
import random
import sys
from pathlib import Path

import numpy as np
import torch

from fer_edge.train.evaluation import adabn
from fer_edge.train.metrics_log import mean_logs
from fer_edge.train.models import FerNet, ModelSpec
from fer_edge.train.splits_prep import split_source_val
from fer_edge.train.state import rng_state, set_rng_state

sys.path.insert(0, str(Path(__file__).parent))
from test_train_fixtures import make_dataset  # noqa: E402


def test_adabn_reestimates_bn_on_target_and_keeps_weights():
    torch.manual_seed(0)
    net = FerNet(ModelSpec("tiny", 1, 7, 16, 0.5, 0.0)).eval()
    x_t = torch.randn(64, 1, 32, 32) * 3 + 5
    out = adabn(net, x_t, torch.device("cpu"), batch_size=16)
    first_bn = out.backbone.body[0][1]
    conv = out.backbone.body[0][0]
    with torch.no_grad():
        ref_mean = conv(x_t).mean(dim=(0, 2, 3))
    assert torch.allclose(first_bn.running_mean, ref_mean, atol=1e-4)
    assert not torch.allclose(net.backbone.body[0][1].running_mean, first_bn.running_mean)
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), out.parameters()))
    assert not out.training


def test_rng_state_round_trip():
    torch.manual_seed(1)
    np.random.seed(1)
    random.seed(1)
    s = rng_state()
    a = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(99)
    np.random.seed(99)
    random.seed(99)
    set_rng_state(s)
    b = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def test_mean_logs_ignores_missing_and_nan():
    m = mean_logs([{"a": 1.0, "b": float("nan")}, {"a": 3.0}, {"b": 2.0}])
    assert m == {"a": 2.0, "b": 2.0}
    assert math.isnan(mean_logs([{"c": float("nan")}])["c"])


def test_source_val_split_is_identity_disjoint(tmp_path):
    ds = make_dataset(tmp_path, 60, identities=6)
    train, val = split_source_val(ds, 0.2, seed=0)
    assert len(train) + len(val) == 60 and len(val) > 0
    assert not {r.identity for r in train} & {r.identity for r in val}


def test_augment_is_off_by_default_and_a_pure_function_of_seed_and_step():
    from fer_edge.train.augment import augment
    from fer_edge.train.config import AugmentConfig

    x = torch.randn(16, 1, 24, 24)
    assert augment(x, AugmentConfig(), 0, 1, 5) is x
    cfg = AugmentConfig(flip=True, shift=0.1, scale=0.1, rotate=10, brightness=0.3, contrast=0.3)
    a, b = augment(x, cfg, 0, 1, 5), augment(x, cfg, 0, 1, 5)
    assert torch.equal(a, b) and a.shape == x.shape and torch.isfinite(a).all()
    assert not torch.equal(a, augment(x, cfg, 0, 1, 6)) and not torch.equal(a, augment(x, cfg, 0, 2, 5))
    assert not torch.equal(a, x)


def test_augment_flip_mirrors_about_half_and_photometric_is_affine_per_sample():
    from fer_edge.train.augment import augment
    from fer_edge.train.config import AugmentConfig

    x = torch.randn(200, 1, 8, 8)
    y = augment(x, AugmentConfig(flip=True), 3, 1, 0)
    same = [torch.equal(y[i], x[i]) for i in range(200)]
    mirrored = [torch.equal(y[i], x[i].flip(-1)) for i in range(200)]
    assert all(s or m for s, m in zip(same, mirrored))
    assert 70 < sum(mirrored) < 130
    z = augment(x, AugmentConfig(brightness=0.5, contrast=0.5), 3, 1, 0)
    for i in (0, 17, 199):  # z = x·c + b with c in [0.5, 1.5], b in [-0.5, 0.5]
        c = float(((z[i] - z[i].mean()) * (x[i] - x[i].mean())).sum() / ((x[i] - x[i].mean()) ** 2).sum())
        b = float(z[i].mean() - c * x[i].mean())
        assert 0.5 <= c <= 1.5 and -0.5 <= b <= 0.5
        assert torch.allclose(z[i], x[i] * c + b, atol=1e-4)


def test_augment_geometry_keeps_a_centred_blob_near_the_centre():
    from fer_edge.train.augment import augment
    from fer_edge.train.config import AugmentConfig

    x = torch.zeros(32, 1, 33, 33)
    x[:, :, 14:19, 14:19] = 1.0
    y = augment(x, AugmentConfig(shift=0.05, scale=0.05, rotate=5), 1, 1, 0)
    ys, xs = torch.meshgrid(torch.arange(33.0), torch.arange(33.0), indexing="ij")
    mass = y[:, 0].sum((1, 2))
    cy, cx = (y[:, 0] * ys).sum((1, 2)) / mass, (y[:, 0] * xs).sum((1, 2)) / mass
    assert ((cy - 16).abs() <= 33 * 0.05 + 1).all() and ((cx - 16).abs() <= 33 * 0.05 + 1).all()
    assert (cy - 16).abs().max() > 0.2  # it did move something


def test_running_bn_stats_follow_the_configured_domain_only():
    """Separate source/target passes must not leave inference with a mixture of both domains' statistics."""
    from fer_edge.config import load_config
    from fer_edge.runtime.contract import LABELS
    from fer_edge.train.methods import Batch, build_method

    torch.manual_seed(0)
    xs, xt = torch.randn(16, 1, 32, 32), torch.randn(16, 1, 32, 32) * 3.0 + 5.0  # very different domains
    ys = torch.arange(16) % 7
    means = {}
    for mode in ("source", "target", "both"):
        cfg = load_config("ci", [f"train.bn_stats={mode}"])
        torch.manual_seed(0)
        net = FerNet(ModelSpec(backbone="tiny", in_channels=1, num_classes=7, feature_dim=16, width=0.5))
        m = build_method("dann", cfg.train, net, LABELS)
        m.train()
        for _ in range(30):
            m.loss(Batch(xs=xs, ys=ys, xt=xt, p=0.5))
        bn = next(mod for mod in net.modules() if isinstance(mod, torch.nn.BatchNorm2d))
        means[mode] = float(bn.running_var.mean())
        assert bn.momentum == 0.1  # restored after each frozen pass
    # the first BN sees the raw input's scale: the target's (3x std) running variance is far above the source's
    assert means["source"] < means["both"] < means["target"]
    with torch.no_grad():
        cfg = load_config("ci", ["train.bn_stats=source"])
        net = FerNet(ModelSpec(backbone="tiny", in_channels=1, num_classes=7, feature_dim=16, width=0.5))
        ref = FerNet(ModelSpec(backbone="tiny", in_channels=1, num_classes=7, feature_dim=16, width=0.5))
        ref.load_state_dict(net.state_dict())
        m = build_method("source_only", cfg.train, ref, LABELS)
    # source_only never forwards the target: "source" mode gives exactly its statistics
    m.train()
    d = build_method("dann", cfg.train, net, LABELS)
    d.train()
    torch.manual_seed(1)
    d.loss(Batch(xs=xs, ys=ys, xt=xt, p=0.0))
    torch.manual_seed(1)
    m.loss(Batch(xs=xs, ys=ys, xt=xt, p=0.0))
    a = [b.running_mean for b in net.modules() if isinstance(b, torch.nn.BatchNorm2d)]
    b = [b.running_mean for b in ref.modules() if isinstance(b, torch.nn.BatchNorm2d)]
    assert all(torch.allclose(u, v) for u, v in zip(a, b))
