"""``pixel_da``: the generator starts as the identity, PMSE ignores uniform light, and each loss reaches only
the parts it is meant to train."""
from __future__ import annotations

import pytest
import torch

from fer_edge.config import load_config
from fer_edge.runtime.contract import LABELS
from fer_edge.runtime.errors import ConfigError
from fer_edge.train.methods import Batch, build_method
from fer_edge.train.methods.pixel_da import PatchDiscriminator, Translator, pmse
from fer_edge.train.models import FerNet, ModelSpec


def _method(*overrides: str):
    torch.manual_seed(0)
    cfg = load_config("ci", list(overrides))
    net = FerNet(ModelSpec("tiny", 1, len(LABELS), 16, 0.5, 0.0))
    return build_method("pixel_da", cfg.train, net, LABELS), net


def _batch(p: float = 0.8) -> Batch:
    g = torch.Generator().manual_seed(1)
    return Batch(xs=torch.randn(6, 1, 32, 32, generator=g), ys=torch.arange(6) % 7,
                 xt=torch.randn(6, 1, 32, 32, generator=g) * 0.5 - 1.0, p=p)


def test_translator_starts_as_the_identity_and_keeps_the_shape():
    g = Translator(1, width=8, blocks=2)
    x = torch.randn(3, 1, 33, 31)  # odd sizes: the bilinear upsampling must land on the input's size
    assert torch.equal(g(x), x)


def test_pmse_ignores_a_uniform_brightness_change_but_not_a_local_one():
    x = torch.randn(4, 1, 16, 16)
    assert float(pmse(x + 0.7, x)) == pytest.approx(0.0, abs=1e-6)
    local = x.clone()
    local[:, :, 4:8, 4:8] += 1.0
    # one 4x4 patch of 16x16 raised by 1: variance of the difference = p(1-p) with p = 1/16
    assert float(pmse(local, x)) == pytest.approx((1 / 16) * (15 / 16), rel=1e-5)


@pytest.mark.parametrize("layers,grid", [(1, 16), (2, 8), (3, 4)])
def test_patch_discriminator_gives_one_logit_per_patch(layers, grid):
    d = PatchDiscriminator(1, width=4, layers=layers)
    assert d(torch.randn(2, 1, 32, 32)).shape == (2, 1, grid, grid)


def test_discriminator_step_trains_only_the_discriminator():
    method, net = _method()
    before = {n: p.detach().clone() for n, p in method.named_parameters()}
    logs = method.discriminator_step(_batch())
    changed = {n for n, p in method.named_parameters() if not torch.equal(before[n], p)}
    assert changed and all(n.startswith("disc.") for n in changed)
    assert 0.0 <= logs["disc_acc"] <= 1.0


def test_task_loss_reaches_the_generator_only_when_asked():
    """Without the adversarial and content terms, only the cross-entropy on translated faces can move G."""
    quiet = ["train.pixel_da.lambda_max=0", "train.pixel_da.content_weight=0"]
    for through, expect_grad in ((False, False), (True, True)):
        method, _ = _method(*quiet, f"train.pixel_da.task_through_generator={str(through).lower()}")
        method.translator.out.weight.data.normal_(0, 0.1)  # off the identity, so the body gets gradients too
        total, _ = method.loss(_batch())
        total.backward()
        g = sum(float(p.grad.abs().sum()) for p in method.translator.parameters() if p.grad is not None)
        assert (g > 0) is expect_grad
        assert all(p.grad is None for p in method.disc.parameters())  # D is read, never trained, by loss()


def test_adversarial_term_moves_the_generator_toward_the_target_look():
    """A few alternating steps on a target that is the source darkened: D learns "dark = real", G follows."""
    method, _ = _method("train.pixel_da.content_weight=0", "train.pixel_da.warmup=0", "train.pixel_da.d_lr=0.002")
    opt = torch.optim.Adam(method.translator.parameters(), lr=0.002)
    g = torch.Generator().manual_seed(2)
    xs = torch.randn(16, 1, 32, 32, generator=g)
    batch = Batch(xs=xs, ys=torch.arange(16) % 7, xt=torch.randn(16, 1, 32, 32, generator=g) - 2.0, p=1.0)
    for _ in range(40):
        method.discriminator_step(batch)
        total, logs = method.loss(batch)
        opt.zero_grad()
        total.backward()
        opt.step()
    with torch.no_grad():
        shift = float((method.translator(xs) - xs).mean())
    # (it oscillates around the target's -2, as GANs do, so only the direction is asserted)
    assert shift < -0.5, f"G should darken the source toward the target, moved it by {shift:+.2f}"


def test_parameter_groups_give_the_generator_its_own_learning_rate_and_leave_out_d():
    method, _ = _method("train.pixel_da.g_lr_mult=0.25")
    groups = {g["name"]: g for g in method.parameter_groups(0.01)}
    assert groups["translator"]["lr"] == pytest.approx(0.0025)
    ids = {id(p) for g in groups.values() for p in g["params"]}
    assert not ids & {id(p) for p in method.disc.parameters()}
    g_ids = {id(p) for p in method.translator.parameters()}
    assert g_ids == {id(p) for p in groups["translator"]["params"]}
    assert not g_ids & {id(p) for name, g in groups.items() if name != "translator" for p in g["params"]}


def test_config_rejects_a_discriminator_without_layers():
    with pytest.raises(ConfigError, match="d_layers"):
        load_config("ci", ["train.pixel_da.d_layers=0"])
