"""train.target_prior: logit offsets fitted label-free on the target faces, baked into the head, and taken out
again before a fine-tuning starts from such a checkpoint."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fer_edge.config import load_config
from fer_edge.runtime.errors import ConfigError
from fer_edge.train.target_prior import fit_offsets, resolve

sys.path.insert(0, str(Path(__file__).parent))
from test_train_fixtures import make_datasets  # noqa: E402

FAST = ["train.epochs=1", "train.steps_per_epoch=3", "train.batch_size=16", "train.feature_samples=20"]
LABELS = ("neutral", "happiness", "sadness")


def _softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_offsets_move_the_mean_prediction_onto_the_stated_balance():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(500, 3)) + np.array([2.0, 0.0, -1.0])  # a model that says "neutral" too often
    prior = np.array([0.2, 0.5, 0.3])
    b = fit_offsets(logits, prior)
    assert np.allclose(_softmax(logits + b).mean(0), prior, atol=1e-4)
    assert abs(b.mean()) < 1e-9 and b[0] < 0 < b[2]
    assert np.allclose(fit_offsets(logits, _softmax(logits).mean(0)), 0.0, atol=1e-4)  # already there: no shift


def test_resolve_names_the_balance_in_the_models_label_order():
    assert resolve("none", LABELS, None) is None
    assert np.allclose(resolve("uniform", LABELS, None), 1 / 3)
    assert np.allclose(resolve("source", LABELS, np.array([0, 0, 1, 2, 2, 2, -1])), [2 / 6, 1 / 6, 3 / 6])
    given = resolve({"sad": 1, "happy": 1, "neutral": 2}, LABELS, None)  # dataset spellings, any order
    assert np.allclose(given, [0.5, 0.25, 0.25])
    with pytest.raises(ConfigError, match=r"no frequency for \['sadness'\]"):
        resolve({"neutral": 1, "happy": 1}, LABELS, None)
    with pytest.raises(ConfigError, match="train.target_prior.smirk: not an expression label"):
        resolve({"smirk": 1}, LABELS, None)
    with pytest.raises(ConfigError, match="train.target_prior.happy: -1.0 must be a positive frequency"):
        load_config("ci", ["train.target_prior={happy: -1}"])


def test_a_run_bakes_the_offsets_into_best_pt_and_a_fine_tuning_takes_them_out(tmp_path):
    from fer_edge.train.checkpoint import load_checkpoint
    from fer_edge.train.target_prior import logits_of
    from fer_edge.train.trainer import Trainer, train

    data = make_datasets(tmp_path / "faces")
    assert train(load_config("ci", FAST + ["train.target_prior=uniform"]), data, tmp_path / "a",
                 method="source_only") is not None
    net, man = load_checkpoint(tmp_path / "a" / "best.pt")
    offsets = man.extra["logit_offsets"]
    assert man.extra["target_prior"] == "uniform" and len(offsets) == net.head.bias.numel()
    t = Trainer(load_config("ci", FAST + [f"train.init_from={tmp_path / 'a' / 'best.pt'}"]), data, tmp_path / "b",
                "source_only")
    started = t.method.inference_module().head.bias.detach()
    assert torch.allclose(started, net.head.bias.detach() - torch.tensor(offsets, dtype=started.dtype), atol=1e-6)
    # the shipped head predicts the stated balance on the target faces it was fitted on
    x = t.splits["target"].head(1000, 0).x
    assert np.allclose(_softmax(logits_of(net, x, torch.device("cpu"))).mean(0), 1 / len(offsets), atol=1e-3)


def test_the_trainer_hands_self_train_the_offsets_of_its_starting_model(tmp_path):
    """self_train's pseudo-labels follow train.target_prior: the trainer fits the frozen starting model's offsets
    before the first step, and the later evaluations' offsets (the student's) do not replace them."""
    from fer_edge.train.target_prior import logits_of
    from fer_edge.train.trainer import Trainer

    data = make_datasets(tmp_path / "faces")
    t = Trainer(load_config("ci", FAST + ["train.target_prior=uniform"]), data, tmp_path / "a", "self_train")
    assert not bool(t.method.teacher_offsets_set)
    t.fit()
    x = t.splits["target"].head(1000, 0).x
    want = fit_offsets(logits_of(t.method.teacher, x, torch.device("cpu")), t.prior)
    assert bool(t.method.teacher_offsets_set)
    assert np.allclose(t.method.teacher_offsets.numpy(), want, atol=1e-4)
    plain = Trainer(load_config("ci", FAST), data, tmp_path / "b", "self_train")
    plain.fit()
    assert not bool(plain.method.teacher_offsets_set)  # no stated balance: the teacher's plain predictions
