"""``fer-edge train``: the verb trains via load_split, several methods end in a label-free pick."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from fer_edge.cli import main

sys.path.insert(0, str(Path(__file__).parent))
from test_train_fixtures import make_datasets  # noqa: E402


@pytest.fixture()
def fake_splits(tmp_path, monkeypatch):
    import fer_edge.data.sources as sources

    ds = make_datasets(tmp_path / "faces", n_source=48, n_target=32)
    monkeypatch.setattr(sources, "load_split", lambda cfg, role: ds.get(role))
    return ds


def test_cli_trains_several_methods_and_selects_one(fake_splits, tmp_path):
    out = tmp_path / "run"
    rc = main(["train", "--config", "ci", "--method", "source_only,target_oracle,dann", "--out", str(out),
               "--set", "train.epochs=1", "train.steps_per_epoch=2", "train.batch_size=8", "train.feature_samples=8"])
    assert rc == 0
    sel = json.loads((out / "selection.json").read_text())
    assert sel["selected_method"] in ("source_only", "dann")  # never the oracle
    for m in ("source_only", "target_oracle", "dann"):
        assert (out / m / "best.pt").is_file() and (out / m / "summary.json").is_file()


def test_cli_unknown_method_is_one_line_error(fake_splits, tmp_path, capsys):
    assert main(["train", "--config", "ci", "--method", "dan", "--out", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "dann" in err[0]


def test_cli_resume_without_state_starts_from_the_beginning(fake_splits, tmp_path):
    """A crash-resume loop always passes --resume; with no state yet the run simply starts."""
    out = tmp_path / "new"
    assert main(["train", "--config", "ci", "--method", "dann", "--out", str(out), "--resume",
                 "--set", "train.epochs=1", "train.steps_per_epoch=1", "train.batch_size=8",
                 "train.feature_samples=8"]) == 0
    assert json.loads((out / "summary.json").read_text())["selected_epoch"] == 1
