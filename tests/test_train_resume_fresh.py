"""--resume before any state exists (killed during the first epoch) starts the run instead of failing."""
from __future__ import annotations

import sys
from pathlib import Path

from fer_edge.config import load_config
from fer_edge.train.trainer import train

sys.path.insert(0, str(Path(__file__).parent))
from test_train_fixtures import make_datasets  # noqa: E402


def test_resume_without_state_trains_from_the_start(tmp_path):
    datasets = make_datasets(tmp_path / "faces")
    cfg = load_config("ci", ["train.epochs=1", "train.steps_per_epoch=2", "train.batch_size=8",
                             "train.feature_samples=8"])
    out = tmp_path / "run"
    assert not (out / "last.state.pt").exists()
    s = train(cfg, datasets, out, method="source_only", resume=True)
    assert s["epochs"] == 1 and (out / "last.state.pt").is_file() and (out / "best.pt").is_file()


def test_summary_json_is_strict_json(tmp_path):
    """No NaN/Infinity tokens: jq, JavaScript and Go reject them; an undefined value is null."""
    import json

    datasets = make_datasets(tmp_path / "faces")
    cfg = load_config("ci", ["train.epochs=1", "train.steps_per_epoch=2", "train.batch_size=8",
                             "train.feature_samples=8"])
    train(cfg, datasets, tmp_path / "run", method="source_only")

    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")

    summary = json.loads((tmp_path / "run" / "summary.json").read_text(), parse_constant=refuse)
    assert summary["final_disc_acc"] is None  # source-only has no discriminator
