"""Adaptation methods: GRL, the shared losses against obvious references, every method back-propagates."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from fer_edge.config import load_config
from fer_edge.runtime.contract import LABELS
from fer_edge.train.methods import METHODS, Batch, build_method, grad_reverse, grl_lambda
from fer_edge.train.methods.cal import contrastive_groups_loss, strong_mask
from fer_edge.train.methods.domain_adversary import DomainAdversary
from fer_edge.train.methods.frozen import frozen_call
from fer_edge.train.methods.gradient_reversal import GradientReversal
from fer_edge.train.methods.losses import (
    entropy,
    information_maximization,
    minimum_class_confusion,
    pseudo_label_loss,
    uniform_confusion,
)
from fer_edge.train.methods.pose_adv import yaw_bins
from fer_edge.train.models import FerNet, ModelSpec


def test_grl_forward_identity_backward_negative_lambda():
    x = torch.randn(5, 3, requires_grad=True)
    y = grad_reverse(x, 0.37)
    assert torch.equal(y, x)
    g = torch.randn(5, 3)
    y.backward(g)
    assert torch.allclose(x.grad, -0.37 * g)


def test_grl_layer_schedule_and_warmup():
    assert grl_lambda(0.0, 1.0) == 0.0
    assert grl_lambda(1.0, 1.0) == pytest.approx(2 / (1 + math.exp(-10)) - 1)
    assert grl_lambda(0.5, 0.3) == pytest.approx(0.3 * (2 / (1 + math.exp(-5)) - 1))
    assert grl_lambda(0.05, 1.0, warmup=0.1) == 0.0  # still warming up
    assert grl_lambda(0.55, 1.0, warmup=0.1) == pytest.approx(grl_lambda(0.5, 1.0))
    layer = GradientReversal(lambda_max=0.5, warmup=0.0)
    lam = layer.set_progress(0.3)
    x = torch.ones(2, 2, requires_grad=True)
    layer(x).sum().backward()
    assert torch.allclose(x.grad, torch.full((2, 2), -lam))


def test_information_maximization_matches_reference():
    logits = torch.randn(6, 4)
    p = F.softmax(logits, 1)
    ref_mean_ent = sum(-sum(float(p[i, k]) * math.log(float(p[i, k])) for k in range(4)) for i in range(6)) / 6
    pm = p.mean(0)
    ref_div = -sum(float(pm[k]) * math.log(float(pm[k])) for k in range(4))
    assert float(information_maximization(logits)) == pytest.approx(ref_mean_ent - ref_div, abs=1e-5)
    # confident and diverse beats confident and collapsed
    diverse = torch.eye(4) * 10
    collapsed = torch.zeros(4, 4)
    collapsed[:, 0] = 10
    assert information_maximization(diverse) < information_maximization(collapsed)
    assert float(entropy(torch.tensor([[0.5, 0.5]]))) == pytest.approx(math.log(2), abs=1e-6)


def test_minimum_class_confusion_matches_reference_and_punishes_shared_faces():
    logits = torch.randn(8, 3, generator=torch.Generator().manual_seed(1))
    t = 2.5
    p = [[math.exp(float(v) / t) for v in row] for row in logits]
    p = [[v / sum(row) for v in row] for row in p]
    h = [-sum(v * math.log(v) for v in row) for row in p]
    w = [1 + math.exp(-x) for x in h]
    w = [8 * x / sum(w) for x in w]
    c = [[sum(w[i] * p[i][a] * p[i][b] for i in range(8)) for b in range(3)] for a in range(3)]
    c = [[c[a][b] / sum(c[b]) for b in range(3)] for a in range(3)]
    ref = (sum(map(sum, c)) - sum(c[k][k] for k in range(3))) / 3
    assert float(minimum_class_confusion(logits, t)) == pytest.approx(ref, abs=1e-5)
    # faces split 50/50 between two classes confuse them; the same faces decided one way each do not
    decided = torch.tensor([[8.0, 0, 0], [0, 8.0, 0], [0, 0, 8.0], [8.0, 0, 0]])
    shared = torch.tensor([[4.0, 4.0, 0], [4.0, 4.0, 0], [0, 0, 8.0], [4.0, 4.0, 0]])
    assert minimum_class_confusion(shared) > 2 * minimum_class_confusion(decided)
    # a mostly-one-class batch (a neutral cabin), decided confidently: MCC's cost vanishes, IM's
    # diversity term still charges the skew as much as it did at lower confidence
    sure = torch.eye(3) * 20
    balanced, skewed = sure[[0, 1, 2, 0, 1, 2, 0, 1]], sure[[0, 0, 0, 0, 0, 0, 1, 2]]
    assert float(minimum_class_confusion(skewed)) < 0.01
    assert float(information_maximization(skewed) - information_maximization(balanced)) > 0.3


def test_uniform_confusion_minimal_at_uniform():
    k = 5
    assert float(uniform_confusion(torch.zeros(3, k))) == pytest.approx(math.log(k), abs=1e-6)
    peaked = torch.tensor([[10.0, 0, 0, 0, 0]])
    ref = -sum(float(v) for v in F.log_softmax(peaked, 1)[0]) / k
    assert float(uniform_confusion(peaked)) == pytest.approx(ref, abs=1e-5)
    assert float(uniform_confusion(peaked)) > math.log(k)


def test_domain_adversary_is_mean_of_domain_bces():
    torch.manual_seed(0)
    adv = DomainAdversary(4, hidden=8, dropout=0.0, lambda_max=1.0)
    adv.eval()
    fs, ft = torch.randn(3, 4), torch.randn(5, 4)
    loss, acc, lam = adv(fs, ft, 0.5)
    logits = adv.disc(torch.cat([fs, ft])).squeeze(1)
    ref = 0.5 * (sum(-math.log(torch.sigmoid(v).item()) for v in logits[:3]) / 3
                 + sum(-math.log(1 - torch.sigmoid(v).item()) for v in logits[3:]) / 5)
    assert float(loss.detach()) == pytest.approx(ref, abs=1e-5)
    correct = sum(int(v > 0) for v in logits[:3]) + sum(int(v <= 0) for v in logits[3:])
    assert acc == pytest.approx(correct / 8)
    assert lam == pytest.approx(grl_lambda(0.5, 1.0))


def test_contrastive_groups_loss_matches_reference():
    z = torch.tensor([[0.0, 0.0], [0.0, 2.0], [3.0, 0.0], [5.0, 0.0]])
    strong = torch.tensor([True, True, False, False])
    loss, acc = contrastive_groups_loss(z, strong, margin=10.0)
    # strong centroid (0,1): within 1+1 → mean 1; weak centroid (4,0): within 1+1 → mean 1;
    # centroid distance sqrt(17), hinge (10 - sqrt(17))^2
    assert float(loss) == pytest.approx(2.0 + (10 - math.sqrt(17)) ** 2, abs=1e-5)
    assert acc == 1.0
    zero, nan_acc = contrastive_groups_loss(z, torch.ones(4, dtype=torch.bool), 1.0)
    assert float(zero) == 0.0 and math.isnan(nan_acc)


def test_strong_mask_uses_intensity_on_source_and_confidence_on_target():
    b = Batch(xs=torch.zeros(4, 1, 8, 8), ys=torch.zeros(4, dtype=torch.long), xt=torch.zeros(4, 1, 8, 8),
              intensity_s=torch.tensor([0.9, 0.1, 0.6, 0.2]))
    lt = torch.tensor([[5.0, 0, 0], [0.1, 0, 0], [3.0, 0, 0], [0.0, 0, 0]])
    m = strong_mask(b, torch.zeros(4, 3), lt, threshold=0.5)
    assert m.tolist() == [True, False, True, False, True, False, True, False]


def test_yaw_bins_and_frozen_call():
    yaw = torch.tensor([-40.0, -20.0, 0.0, 20.0, 40.0, float("nan")])
    assert yaw_bins(yaw, [-30, -10, 10, 30]).tolist() == [0, 1, 2, 3, 4, -1]
    lin = torch.nn.Linear(3, 2)
    x = torch.randn(4, 3, requires_grad=True)
    frozen_call(lin, x).sum().backward()
    assert x.grad is not None and lin.weight.grad is None


def _batch(n: int = 6, size: int = 32) -> Batch:
    g = torch.Generator().manual_seed(0)
    return Batch(xs=torch.randn(n, 1, size, size, generator=g), ys=torch.arange(n) % 7,
                 xt=torch.randn(n, 1, size, size, generator=g), p=0.6,
                 intensity_s=torch.rand(n, generator=g), identity_s=torch.tensor([0, 1, 2, 0, -1, 1])[:n],
                 pose_s=torch.randn(n, 3, generator=g) * 25, intensity_t=torch.full((n,), float("nan")),
                 pose_t=torch.randn(n, 3, generator=g) * 25)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_loss_backpropagates_finite(name):
    torch.manual_seed(0)
    cfg = load_config("ci", ["train.disentangle.recon_weight=0.5", "train.dann.im_weight=0.1",
                             "train.cal.mcc_weight=0.5"])
    net = FerNet(ModelSpec("tiny", 1, len(LABELS), 16, 0.5, 0.0))
    method = build_method(name, cfg.train, net, LABELS, num_identities=3)
    method.train()
    batch = _batch()
    if method.has_discriminator_step():
        before = [p.detach().clone() for p in method.own_optimizer_parameters()]
        dlogs = method.discriminator_step(batch)
        assert all(math.isfinite(v) or math.isnan(v) for v in dlogs.values())
        assert any(not torch.equal(a, b) for a, b in zip(before, method.own_optimizer_parameters()))
    total, logs = method.loss(batch)
    assert total.ndim == 0 and torch.isfinite(total)
    assert all(isinstance(v, float) for v in logs.values())
    method.zero_grad()
    total.backward()
    grads = [p.grad for p in net.backbone.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    assert method.inference_module() is net
    # the trainer's optimiser gets everything but the method's own-optimiser parameters
    own = {id(p) for p in method.own_optimizer_parameters()}
    grouped = {id(p) for g in method.parameter_groups(1e-3) for p in g["params"]}
    assert grouped == {id(p) for p in method.parameters() if p.requires_grad} - own


def test_backbone_lr_multiplier():
    cfg = load_config("ci", ["train.backbone_lr_mult=0.1"])
    net = FerNet(ModelSpec("tiny", 1, 7, 16, 0.5, 0.0))
    groups = {g["name"]: g["lr"] for g in build_method("dann", cfg.train, net, LABELS).parameter_groups(0.01)}
    assert groups == {"backbone": pytest.approx(0.001), "heads": 0.01}


def test_dann_gradient_reversal_reaches_backbone_with_opposite_sign():
    """The domain term's gradient on the features is −λ times the discriminator's."""
    torch.manual_seed(0)
    adv = DomainAdversary(4, hidden=8, dropout=0.0, lambda_max=0.5)
    fs = torch.randn(4, 4, requires_grad=True)
    ft = torch.randn(4, 4, requires_grad=True)
    loss, _, lam = adv(fs, ft, 1.0)
    loss.backward()
    g_rev = fs.grad.clone()
    fs2, ft2 = fs.detach().clone().requires_grad_(), ft.detach().clone().requires_grad_()
    adv.grl.coeff = -1.0  # a "reversal" by -1 is plain backprop
    logits = adv.disc(adv.grl(torch.cat([fs2, ft2]))).squeeze(1)
    tgt = torch.cat([torch.ones(4), torch.zeros(4)])
    (0.5 * (F.binary_cross_entropy_with_logits(logits[:4], tgt[:4])
            + F.binary_cross_entropy_with_logits(logits[4:], tgt[4:]))).backward()
    assert torch.allclose(g_rev, -lam * fs2.grad, atol=1e-6)


def test_conditional_adversary_sees_features_times_predictions_and_weights_by_confidence():
    torch.manual_seed(0)
    adv = DomainAdversary(4, hidden=8, dropout=0.0, lambda_max=1.0, conditional=True, num_classes=3,
                          entropy_weighting=True)
    assert adv.disc.net[0].in_features == 12  # 4 features x 3 classes
    fs, ft = torch.randn(6, 4, requires_grad=True), torch.randn(5, 4, requires_grad=True)
    ls, lt = torch.randn(6, 3, requires_grad=True), torch.randn(5, 3, requires_grad=True)
    loss, acc, lam = adv(fs, ft, 1.0, ls, lt)
    assert torch.isfinite(loss) and 0.0 <= acc <= 1.0 and lam > 0.9
    loss.backward()
    assert fs.grad.abs().sum() > 0 and ft.grad.abs().sum() > 0
    assert ls.grad is None and lt.grad is None  # predictions condition D but are not trained through it
    # reference: the map f ⊗ g, and CDAN+E's normalised weights 1 + exp(-H(g)) per domain
    g = F.softmax(torch.cat([ls, lt]).detach(), 1)
    m = torch.bmm(g.unsqueeze(2), torch.cat([fs, ft]).detach().unsqueeze(1)).flatten(1)
    adv.eval()
    logits = adv.disc(m).squeeze(1)
    w = 1 + torch.exp(-entropy(g))
    bce = F.binary_cross_entropy_with_logits
    ref = 0.5 * ((bce(logits[:6], torch.ones(6), reduction="none") * w[:6]).sum() / w[:6].sum()
                 + (bce(logits[6:], torch.zeros(5), reduction="none") * w[6:]).sum() / w[6:].sum())
    got, _, _ = adv(fs.detach(), ft.detach(), 1.0, ls, lt)
    assert torch.allclose(got, ref, atol=1e-6)
    with pytest.raises(ValueError, match="logits"):
        adv(fs, ft, 1.0)


def test_dann_conditional_config_builds_cdan_and_backpropagates():
    cfg = load_config("ci", ["train.dann.conditional=true", "train.dann.entropy_weighting=true"])
    net = FerNet(ModelSpec(backbone="tiny", in_channels=1, num_classes=7, feature_dim=16, width=0.5))
    m = build_method("dann", cfg.train, net, LABELS)
    assert m.adversary.conditional and m.adversary.disc.net[0].in_features == 16 * 7
    b = Batch(xs=torch.randn(4, 1, 32, 32), ys=torch.tensor([0, 1, 2, 3]), xt=torch.randn(4, 1, 32, 32), p=0.5)
    total, logs = m.loss(b)
    total.backward()
    assert torch.isfinite(total) and "disc_acc" in logs


def test_iwdan_weights_follow_the_target_prior_and_reweigh_the_source_side():
    cfg = load_config("ci", ["train.dann.importance_weighting=true", "train.dann.prior_momentum=0.0"])
    net = FerNet(ModelSpec(backbone="tiny", in_channels=1, num_classes=7, feature_dim=16, width=0.5))
    m = build_method("dann", cfg.train, net, LABELS)
    ys = torch.arange(14) % 7  # balanced source batch
    lt = torch.full((10, 7), -5.0)
    lt[:, 0] = 5.0  # the classifier calls every target face class 0 (neutral-heavy target)
    w = m.class_importance(ys, F.one_hot(ys, 7).float() * 10, lt)
    assert torch.allclose(w.mean(), torch.tensor(1.0)) and (w[ys == 0] > w[ys != 0].max()).all()
    adv = DomainAdversary(4, hidden=8, dropout=0.0, lambda_max=1.0)
    adv.eval()
    fs, ft = torch.randn(4, 4), torch.randn(3, 4)
    sw = torch.tensor([2.0, 1.0, 0.5, 0.5])
    got, _, _ = adv(fs, ft, 0.5, source_weight=sw)
    logits = adv.disc(torch.cat([fs, ft])).squeeze(1)
    bce = F.binary_cross_entropy_with_logits
    ref = 0.5 * ((bce(logits[:4], torch.ones(4), reduction="none") * sw).sum() / sw.sum()
                 + bce(logits[4:], torch.zeros(3)))
    assert torch.allclose(got, ref, atol=1e-6)
    b = Batch(xs=torch.randn(7, 1, 32, 32), ys=torch.arange(7), xt=torch.randn(5, 1, 32, 32), p=0.5)
    total, logs = m.loss(b)
    total.backward()
    assert torch.isfinite(total) and logs["iw_max"] >= 1.0


def test_pose_classes_pair_yaw_and_pitch_bins():
    from fer_edge.train.methods.pose_adv import pose_classes

    nan = float("nan")
    pose = torch.tensor([[-40.0, -20.0, 0.0], [0.0, 0.0, 0.0], [40.0, -10.0, 0.0], [nan, 0.0, 0.0], [0.0, nan, 0.0]])
    got = pose_classes(pose, 5, [-30, -10, 10, 30], [-15, -5])
    assert got.tolist() == [0 * 3 + 0, 2 * 3 + 2, 4 * 3 + 1, -1, -1]
    assert pose_classes(pose, 5, [-30, -10, 10, 30], []).tolist() == [0, 2, 4, -1, 2]  # yaw only
    assert pose_classes(None, 3, [0.0], [0.0]).tolist() == [-1, -1, -1]
    net = FerNet(ModelSpec(backbone="tiny", in_channels=1, num_classes=7, feature_dim=16, width=0.5))
    assert build_method("pose_adv", load_config("ci").train, net, LABELS).pose_head.out_features == 5  # yaw only
    cfg = load_config("ci", ["train.pose_adv.pitch_bins=[-15,-5]", "train.pose_adv.cross_on_target=true"])
    m = build_method("pose_adv", cfg.train, net, LABELS)
    assert m.pose_head.out_features == 5 * 3 and m.pose_from_expr.net[-1].out_features == 15
    b = Batch(xs=torch.randn(4, 1, 32, 32), ys=torch.tensor([0, 1, 2, 3]), xt=torch.randn(4, 1, 32, 32), p=0.5,
              pose_s=torch.tensor([[0.0, 0.0, 0.0]] * 4), pose_t=torch.tensor([[20.0, -20.0, 0.0]] * 4))
    total, logs = m.loss(b)
    total.backward()
    assert torch.isfinite(total) and math.isfinite(logs["cross"])


def test_pseudo_label_loss_is_masked_cross_entropy_over_the_whole_batch():
    logits = torch.randn(4, 3)
    probs = torch.tensor([[0.95, 0.03, 0.02], [0.2, 0.5, 0.3], [0.01, 0.01, 0.98], [0.4, 0.3, 0.3]])
    ce = F.cross_entropy(logits, torch.tensor([0, 1, 2, 0]), reduction="none")
    assert float(pseudo_label_loss(logits, probs, 0.9)) == pytest.approx(float(ce[0] + ce[2]) / 4, abs=1e-6)
    assert float(pseudo_label_loss(logits, probs, 0.99)) == 0.0  # nothing confident enough: no term
    assert float(pseudo_label_loss(logits, probs, 0.0)) == pytest.approx(float(ce.mean()), abs=1e-6)


@pytest.mark.parametrize("name,bn_stats", [("dann", "source"), ("cal", "target"), ("pose_adv", "both"),
                                           ("disentangle", "source")])
def test_self_training_term_uses_the_clean_view_ramps_in_and_leaves_bn_stats(name, bn_stats):
    torch.manual_seed(0)
    cfg = load_config("ci", [f"train.{name}.self_training=1.0", f"train.{name}.pseudo_threshold=0.0",
                             f"train.bn_stats={bn_stats}"])
    net = FerNet(ModelSpec("tiny", 1, len(LABELS), 16, 0.5, 0.0))
    method = build_method(name, cfg.train, net, LABELS, num_identities=3)
    method.train()
    batch = _batch()
    batch.xt_clean = batch.xt + 0.5
    logits_t = net(batch.xt).detach().requires_grad_(True)
    bn = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)][0]
    mean_before = bn.running_mean.clone()
    logs = {}
    term = method.self_training_term(batch, logits_t, logs)
    assert torch.equal(bn.running_mean, mean_before)  # the pseudo-label pass is a target pass: stats frozen
    assert logs["pseudo_frac"] == 1.0 and float(term.detach()) > 0
    # labels come from the clean view, not from the perturbed one the loss is taken on
    with torch.no_grad():
        hard = net(batch.xt_clean).argmax(1)
    ramp = grl_lambda(batch.p, 1.0, getattr(cfg.train, name).warmup)
    assert float(term.detach()) == pytest.approx(ramp * float(F.cross_entropy(logits_t.detach(), hard)), rel=1e-4)
    term.backward()
    assert logits_t.grad is not None and float(logits_t.grad.abs().sum()) > 0
    batch.p = 0.0  # warm-up: the classifier's early guesses are not labels
    assert float(method.self_training_term(batch, logits_t, {}).detach()) == 0.0
    off = build_method(name, load_config("ci").train, net, LABELS, num_identities=3)
    assert float(off.self_training_term(batch, logits_t, {})) == 0.0


def test_iwdan_confusion_estimate_corrects_a_classifier_biased_against_neutral():
    """Half the neutral faces are called happy on *both* cameras; the target is 50 % neutral. The mean of the
    target predictions says 25 % neutral, the confusion-matrix estimate (IWDAN's, BBSE) recovers 50 %."""
    net = FerNet(ModelSpec(backbone="tiny", in_channels=1, num_classes=7, feature_dim=16, width=0.5))

    def calls(y):  # the biased classifier's logits: every other neutral face is called happy
        pred = y.clone()
        neutral = torch.nonzero(y == 0).flatten()
        pred[neutral[::2]] = 1
        return F.one_hot(pred, 7).float() * 10

    ys = torch.arange(140) % 7                                   # balanced source
    yt = torch.cat([torch.zeros(60, dtype=torch.long), torch.arange(60) % 6 + 1])  # 50 % neutral target
    est = {}
    for how in ("softmax", "confusion"):
        cfg = load_config("ci", ["train.dann.importance_weighting=true", "train.dann.prior_momentum=0.0",
                                 f"train.dann.prior_estimate={how}"])
        m = build_method("dann", cfg.train, net, LABELS)
        w = m.class_importance(ys, calls(ys), calls(yt))
        est[how] = float(m.prior_t[0])
        assert torch.allclose(w.mean(), torch.tensor(1.0))
    assert abs(est["softmax"] - 0.25) < 0.02
    assert abs(est["confusion"] - 0.5) < 0.02


@pytest.mark.parametrize("name", ["source_only", "target_oracle"])
def test_the_base_helpers_work_for_a_method_without_a_section_of_its_own(name):
    """``Method`` reads ``self.mcfg``: methods with no ``train.<name>`` section get the neutral terms (all off)."""
    cfg = load_config("ci")
    net = FerNet(ModelSpec("tiny", 1, len(LABELS), 16, 0.5, 0.0))
    method = build_method(name, cfg.train, net, LABELS)
    logs: dict = {}
    logits_t = torch.randn(6, len(LABELS))
    total = method.target_companion_terms(_batch(), logits_t, logs)
    assert float(total) == 0.0 and logs == {}
    assert float(method.mcc_term(logits_t, logs)) == 0.0


def test_bn_stats_fallback_is_the_configs_default_not_a_mixture():
    """A train section without ``bn_stats`` behaves as the config's default (``source``): the target pass must
    leave the running statistics alone, as it does with ``train.bn_stats=source`` spelled out."""
    from types import SimpleNamespace

    from fer_edge.train.config import TrainConfig

    assert TrainConfig.bn_stats == "source"
    torch.manual_seed(0)
    net = FerNet(ModelSpec("tiny", 1, len(LABELS), 16, 0.5, 0.0))
    method = build_method("source_only", SimpleNamespace(backbone_lr_mult=1.0), net, LABELS)
    method.train()
    bn = next(m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    before = bn.running_mean.clone()
    method.features(torch.randn(8, 1, 32, 32) * 3 + 5, "target")
    assert torch.equal(bn.running_mean, before)
    method.features(torch.randn(8, 1, 32, 32), "source")
    assert not torch.equal(bn.running_mean, before)
