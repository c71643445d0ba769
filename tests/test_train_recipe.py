"""The real-face recipe's trainer options: cosine schedule with warm-up, label smoothing, bf16 autocast, and the
shipped configs/real.yaml (which must refuse to train on nothing rather than fall back to the synthetic world)."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

from fer_edge.config import load_config
from fer_edge.runtime.errors import ConfigError
from fer_edge.train.methods import build_method
from fer_edge.train.models import FerNet, ModelSpec
from fer_edge.train.trainer import lr_factor, train

sys.path.insert(0, str(Path(__file__).parent))
from test_train_fixtures import make_datasets  # noqa: E402

FAST = ["train.epochs=2", "train.steps_per_epoch=3", "train.batch_size=16", "train.feature_samples=20"]


def test_cosine_schedule_warms_up_then_decays_to_zero():
    t = load_config("ci", ["train.schedule=cosine", "train.warmup=0.1"]).train
    f = lr_factor(t, 100)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0) and f(55) == pytest.approx(0.5, abs=1e-6) and f(100) == pytest.approx(0.0)
    assert all(f(k) >= f(k + 1) for k in range(10, 100))  # monotone after the warm-up
    ganin = lr_factor(load_config("ci").train, 100)
    assert ganin(100) == pytest.approx(11 ** -0.75)  # the default is unchanged
    assert lr_factor(load_config("ci", ["train.lr_anneal=false", "train.schedule=cosine"]).train, 100)(99) == 1.0


def test_label_smoothing_reaches_every_methods_task_loss():
    cfg = load_config("ci", ["train.label_smoothing=0.2"])
    net = FerNet(ModelSpec("tiny", 1, 7, 16))
    m = build_method("source_only", cfg.train, net, tuple(range(7)))
    logits, y = torch.tensor([[20.0, 0, 0, 0, 0, 0, 0]]), torch.tensor([0])
    assert m.task_loss(logits, y) > 0.5  # a confident right answer still pays under smoothing
    m0 = build_method("source_only", load_config("ci").train, net, tuple(range(7)))
    assert m0.task_loss(logits, y) < 1e-6


@pytest.mark.parametrize("key,value", [("train.label_smoothing", "0.7"), ("train.warmup", "0.9"),
                                       ("train.amp", "fp8"), ("train.schedule", "step")])
def test_recipe_keys_are_validated_by_name(key, value):
    with pytest.raises(ConfigError, match=key.split(".")[1]):
        load_config("ci", [f"{key}={value}"])


def test_bf16_autocast_trains_and_checkpoints_float32(tmp_path):
    cfg = load_config("ci", FAST + ["train.amp=bf16", "train.schedule=cosine", "train.warmup=0.2",
                                    "train.label_smoothing=0.1"])
    s = train(cfg, make_datasets(tmp_path / "faces"), tmp_path / "run", method="dann")
    assert math.isfinite(s["source_val_accuracy"])
    sd = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    tensors = [v for v in sd["state_dict"].values() if torch.is_tensor(v) and v.is_floating_point()]
    assert tensors and all(v.dtype == torch.float32 for v in tensors)


def test_real_config_needs_the_users_paths(tmp_path, capsys):
    from fer_edge.cli import main
    from fer_edge.train.data.sources import load_split

    cfg = load_config("real", [f"data.root={tmp_path}"])
    assert cfg.data.source is None and cfg.data.target is None and cfg.model.backbone == "resnet18"
    assert load_split(cfg, "source") is None
    assert main(["train", "--config", "real", "--out", str(tmp_path / "run"), "--set", f"data.root={tmp_path}"]) == 1
    assert "data.source is not set" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
