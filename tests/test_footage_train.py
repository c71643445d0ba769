"""Training with ``data.target`` = cabin-nir scene frames (``data.detect: true``) runs end to end like a crop run."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")

TINY = ["data.synth.counts.source=48", "data.synth.counts.source_test=16", "data.synth.counts.target=24",
        "data.synth.counts.target_val=16", "data.synth.counts.target_test=16", "train.epochs=1",
        "train.steps_per_epoch=2", "train.batch_size=8", "train.feature_samples=8"]


def _train(out, sets):
    from fer_edge.cli import main

    assert main(["train", "--config", "ci", "--method", "dann", "--out", str(out), "--set", *TINY, *sets]) == 0
    return json.loads((out / "summary.json").read_text())


def test_train_on_scene_frames_matches_the_crop_folder_summary_schema(tmp_path):
    from fer_edge.data.synth import generate

    frames = generate("cabin-nir", "scenes", tmp_path / "night", 10, seed=0, workers=1)
    root = f"data.root={tmp_path / 'data'}"
    crops = _train(tmp_path / "crops", [root])
    footage = _train(tmp_path / "footage", [root, f"data.target={frames}", "data.detect=true"])

    def schema(d):
        return {k: (type(v).__name__, schema(v) if isinstance(v, dict) else None) for k, v in d.items()}

    assert schema(footage) == schema(crops)
    cached = list((tmp_path / "data" / "faces").iterdir())
    assert len(cached) == 1 and json.loads((cached[0] / "summary.json").read_text())["faces"] >= 1
    assert (tmp_path / "footage" / "best.pt").is_file()
