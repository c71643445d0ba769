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
    from fer_edge.data.sources import load_split

    cfg = load_config("real", [f"data.root={tmp_path}"])
    assert cfg.data.source is None and cfg.data.target is None and cfg.model.backbone == "resnet18"
    assert load_split(cfg, "source") is None
    assert main(["train", "--config", "real", "--out", str(tmp_path / "run"), "--set", f"data.root={tmp_path}"]) == 1
    assert "data.source is not set" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_random_erasing_blanks_one_rectangle_per_chosen_face():
    from fer_edge.train.augment import augment, erase_mask
    from fer_edge.train.config import AugmentConfig

    on = torch.tensor([True, False, True])
    m = erase_mask(48, 48, on, torch.tensor([0.02, 0.2, 0.33]), torch.tensor([0.0, 0.0, 1.0]),
                   torch.tensor([0.0, 0.5, 1.0]), torch.tensor([1.0, 0.5, 0.0]))
    assert m.shape == (3, 1, 48, 48) and m[1].sum() == 0
    for i, area in ((0, 0.02), (2, 0.33)):  # the area asked for, as a solid rectangle that fits the face
        rows, cols = m[i, 0].any(1).nonzero(), m[i, 0].any(0).nonzero()
        h, w = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
        assert m[i].sum() == h * w and abs(h * w / 48 ** 2 - area) < 0.05
    x = torch.randn(64, 1, 32, 32)
    out = augment(x, AugmentConfig(erase=0.5), seed=0, stream=1, step=0)
    changed = (out != x).flatten(1).any(1)
    assert 15 < int(changed.sum()) < 50  # about half the faces
    assert torch.all((out[changed] == 0).flatten(1).sum(1) >= 0.02 * 32 * 32)  # erased to the normalised mean, 0
    assert torch.equal(out[~changed], x[~changed])
    assert torch.equal(out, augment(x, AugmentConfig(erase=0.5), seed=0, stream=1, step=0))  # a pure function
    assert not torch.equal(out, augment(x, AugmentConfig(erase=0.5), seed=0, stream=1, step=1))


def test_erasing_leaves_the_other_augmentations_draws_alone():
    from fer_edge.train.augment import augment
    from fer_edge.train.config import AugmentConfig

    x = torch.randn(16, 1, 24, 24)
    a = augment(x, AugmentConfig(flip=True, shift=0.1), seed=3, stream=1, step=5)
    b = augment(x, AugmentConfig(flip=True, shift=0.1, erase=1.0), seed=3, stream=1, step=5)
    kept = b != 0
    assert torch.allclose(a[kept], b[kept])  # outside the erased boxes: the same flips and shifts


def test_init_from_starts_at_the_checkpoint_and_refuses_another_model(tmp_path):
    from fer_edge.train.checkpoint import load_checkpoint
    from fer_edge.train.trainer import Trainer

    data = make_datasets(tmp_path / "faces")
    first = train(load_config("ci", FAST), data, tmp_path / "a", method="source_only")
    assert first is not None
    start, _ = load_checkpoint(tmp_path / "a" / "best.pt")
    cfg = load_config("ci", FAST + [f"train.init_from={tmp_path / 'a' / 'best.pt'}"])
    t = Trainer(cfg, data, tmp_path / "b", "pixel_da")
    for k, v in start.state_dict().items():
        assert torch.equal(t.method.inference_module().state_dict()[k], v), k
    fresh = Trainer(load_config("ci", FAST), data, tmp_path / "c", "pixel_da")
    assert not all(torch.equal(fresh.method.inference_module().state_dict()[k], v)
                   for k, v in start.state_dict().items() if v.is_floating_point())
    wider = load_config("ci", FAST + ["model.width=2.0", f"train.init_from={tmp_path / 'a' / 'best.pt'}"])
    with pytest.raises(ConfigError, match="train.init_from: .* another model"):
        Trainer(wider, data, tmp_path / "d", "source_only")


def test_compiled_backbone_trains_and_saves_the_eager_keys(tmp_path):
    cfg = load_config("ci", FAST + ["train.compile=true", "train.epochs=1"])
    s = train(cfg, make_datasets(tmp_path / "faces"), tmp_path / "run", method="source_only")
    assert math.isfinite(s["source_val_accuracy"])
    sd = torch.load(tmp_path / "run" / "best.pt", weights_only=True)["state_dict"]
    assert sd and not any("_orig_mod" in k for k in sd)  # export and load_checkpoint read plain FerNet keys


def test_finetune_starts_each_adaptation_method_from_the_source_only_run(tmp_path):
    from fer_edge.train.config import method_config

    cfg = load_config("ci", ["train.finetune.enabled=true", "train.finetune.epochs=1", "train.finetune.lr=0.003"])
    assert method_config(cfg, "source_only", "so.pt") is cfg and method_config(cfg, "target_oracle", "so.pt") is cfg
    dann = method_config(cfg, "dann", "so.pt").train
    assert (dann.init_from, dann.epochs, dann.lr) == ("so.pt", 1, 0.003)
    assert method_config(load_config("ci"), "dann", "so.pt").train.init_from is None  # off: from scratch
    with pytest.raises(ConfigError, match="train.finetune: dann fine-tunes a source-only model"):
        method_config(cfg, "dann", None)


def test_train_verb_fine_tunes_from_the_source_only_it_trained_first(tmp_path, monkeypatch, caplog):
    import json
    import logging

    import fer_edge.data.sources as sources
    from fer_edge.cli import main

    monkeypatch.setenv("TQDM_DISABLE", "1")
    ds = make_datasets(tmp_path / "faces", n_source=48, n_target=32)
    monkeypatch.setattr(sources, "load_split", lambda cfg, role: ds.get(role))
    sets = [
            *FAST, "train.finetune.enabled=true", "train.finetune.epochs=1"]
    with caplog.at_level(logging.INFO, logger="fer_edge.train"):
        assert main(["train", "--config", "ci", "--method", "dann,source_only", "--out", str(tmp_path / "run"),
                     "--set", *sets]) == 0
    so = json.loads((tmp_path / "run" / "source_only" / "summary.json").read_text())
    dann = json.loads((tmp_path / "run" / "dann" / "summary.json").read_text())
    assert so["epochs"] == 2 and dann["epochs"] == 1
    assert f"train.init_from: started from {tmp_path / 'run' / 'source_only' / 'best.pt'}" in caplog.text
    assert main(["train", "--config", "ci", "--method", "dann", "--out", str(tmp_path / "alone"),
                 "--set", *sets]) == 1  # nothing to start from: refused before any data is read
