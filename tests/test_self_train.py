"""self_train: a frozen, prior-shifted teacher labels the target; class-balanced selection of its labels."""
from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from fer_edge.config import load_config
from fer_edge.runtime.contract import LABELS
from fer_edge.train.methods import Batch, build_method, grl_lambda
from fer_edge.train.methods.losses import pseudo_label_mask
from fer_edge.train.models import FerNet, ModelSpec


def _batch(n: int = 6, size: int = 32) -> Batch:
    g = torch.Generator().manual_seed(0)
    return Batch(xs=torch.randn(n, 1, size, size, generator=g), ys=torch.arange(n) % 7,
                 xt=torch.randn(n, 1, size, size, generator=g), p=0.6)


def test_pseudo_label_mask_keeps_each_predicted_classs_upper_part():
    probs = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.7, 0.3], [0.2, 0.8], [0.45, 0.55], [0.3, 0.7]])
    assert pseudo_label_mask(probs, 0.65).tolist() == [True, False, True, True, False, True]
    # class 0's confidences 0.9, 0.6, 0.7 (median 0.7), class 1's 0.8, 0.55, 0.7 (median 0.7)
    assert pseudo_label_mask(probs, 0.0, 0.5).tolist() == [True, False, True, True, False, True]
    assert pseudo_label_mask(probs, 0.75, 0.5).tolist() == [True, False, False, True, False, False]
    assert pseudo_label_mask(probs, 0.0).all()


def test_self_train_labels_with_a_frozen_teacher_shifted_to_the_target_balance():
    """The teacher is the starting model, frozen and in the deployed view (eval mode), with the offsets the trainer
    fitted before the first step; later offsets (refitted to the student each epoch) do not move its labels."""
    torch.manual_seed(0)
    cfg = load_config("ci")
    assert cfg.train.self_train.self_training == 1.0 and cfg.train.self_train.pseudo_threshold == 0.5
    net = FerNet(ModelSpec("tiny", 1, len(LABELS), 16, 0.5, 0.0))
    method = build_method("self_train", cfg.train, net, LABELS)
    method.train()
    assert not method.teacher.training and net.training
    trained = {id(p) for g in method.parameter_groups(1e-3) for p in g["params"]}
    assert not trained & {id(p) for p in method.teacher.parameters()}
    x = _batch().xt
    net.eval()
    with torch.no_grad():
        start = net(x)
    net.train()
    assert torch.allclose(method.teacher_posteriors(x), F.softmax(start, 1), atol=1e-5)
    first = torch.zeros(len(LABELS))
    first[3] = 30.0
    method.set_logit_offsets(first)
    method.set_logit_offsets(torch.zeros(len(LABELS)))  # a later model's: not the teacher's
    with torch.no_grad():
        for p in net.parameters():  # the student moves on ...
            p.add_(1.0)
    shifted = method.teacher_posteriors(x)  # ... the teacher does not
    assert torch.allclose(shifted, F.softmax(start + first, 1), atol=1e-5) and (shifted.argmax(1) == 3).all()
    state = method.state_dict()  # a resumed run labels with the same teacher
    assert torch.equal(state["teacher_offsets"], first) and bool(state["teacher_offsets_set"])


def test_self_train_labels_each_predicted_classs_most_confident_faces():
    torch.manual_seed(0)
    cfg = load_config("ci", ["train.self_train.pseudo_threshold=0.0", "train.self_train.pseudo_quantile=0.5",
                             "train.self_train.warmup=0.0"])
    net = FerNet(ModelSpec("tiny", 1, len(LABELS), 16, 0.5, 0.0))
    method = build_method("self_train", cfg.train, net, LABELS)
    probs = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.7, 0.3], [0.2, 0.8], [0.45, 0.55], [0.3, 0.7]])
    probs = torch.cat([probs, torch.zeros(6, len(LABELS) - 2)], 1)
    method.teacher_posteriors = lambda x: probs
    batch = _batch()
    batch.p = 1.0
    logits_t = torch.randn(6, len(LABELS), requires_grad=True)
    logs = {}
    term = method.self_training_term(batch, logits_t, logs)
    # class 0's faces 0, 1, 2 (confidence 0.9, 0.6, 0.7): the median 0.7 keeps 0 and 2; class 1's 3, 4, 5: 3 and 5
    ce = F.cross_entropy(logits_t.detach(), torch.tensor([0, 0, 0, 1, 1, 1]), reduction="none")
    assert logs["pseudo_frac"] == pytest.approx(4 / 6)
    ramp = grl_lambda(1.0, 1.0, 0.0)
    assert float(term.detach()) == pytest.approx(ramp * float(ce[[0, 2, 3, 5]].sum()) / 6, rel=1e-5)
    term.backward()
    assert float(logits_t.grad[1].abs().sum()) == 0.0 and float(logits_t.grad[0].abs().sum()) > 0
    off = build_method("self_train", load_config("ci", ["train.self_train.self_training=0"]).train, net, LABELS)
    off.teacher_posteriors = lambda x: probs
    assert float(off.self_training_term(batch, logits_t, {})) == 0.0


def test_self_train_warns_when_it_has_no_starting_model_to_learn_from(caplog):
    cfg = load_config("ci").train
    net = FerNet(ModelSpec("tiny", 1, len(LABELS), 16, 0.5, 0.0))
    with caplog.at_level("WARNING", logger="fer_edge.train"):
        build_method("self_train", cfg, net, LABELS)
    assert "train.init_from" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="fer_edge.train"):
        build_method("self_train", dataclasses.replace(cfg, init_from="runs/x/best.pt"), net, LABELS)
    assert caplog.text == ""


def test_only_a_method_that_labels_with_the_offsets_asks_the_trainer_for_them_before_the_first_step():
    net = FerNet(ModelSpec("tiny", 1, len(LABELS), 16, 0.5, 0.0))
    cfg = load_config("ci").train
    assert build_method("self_train", cfg, net, LABELS).uses_logit_offsets()
    assert not any(build_method(m, cfg, net, LABELS, num_identities=3).uses_logit_offsets()
                   for m in ("source_only", "dann", "pixel_da"))
