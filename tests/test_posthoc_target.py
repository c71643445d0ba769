"""benchmarks/posthoc_target.py: scores every correction on a tiny model and refuses a foreign crop contract."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "posthoc_target.py"


def _module():
    spec = importlib.util.spec_from_file_location("bench_posthoc_target", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _net():
    from fer_edge.runtime.contract import LABELS
    from fer_edge.train.models import FerNet, ModelSpec

    torch.manual_seed(0)
    return FerNet(ModelSpec(backbone="tiny", in_channels=1, num_classes=len(LABELS), feature_dim=8, width=0.5)).eval()


def test_every_correction_is_scored_and_raw_is_the_plain_accuracy():
    mod = _module()
    rng = np.random.default_rng(0)
    x = {k: rng.normal(size=(n, 1, 32, 32)).astype(np.float32)
         for k, n in (("x_target", 40), ("x_val", 50), ("x_test", 60), ("x_src", 70))}
    data = {**x, "y_test": rng.integers(0, 7, 60), "y_src": np.arange(70) % 7}
    net = _net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    out = mod.score_checkpoint(net, data, torch.device("cpu"))
    with torch.no_grad():
        pred = net(torch.from_numpy(x["x_test"])).argmax(1).numpy()
    assert out["raw"] == pytest.approx(100.0 * np.mean(pred == data["y_test"]))
    assert out["true_prior_neutral"] == pytest.approx(100.0 * np.mean(data["y_test"] == 0))
    for row in mod.ROWS:
        assert 0.0 <= out[row] <= 100.0, row
    # AdaBN works on a copy: the checkpoint's own statistics are untouched
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert mod.group_of("runs/x/dann_st-seed2/best.pt") == "dann_st"


def test_a_checkpoint_cut_with_another_crop_is_refused(tmp_path):
    from fer_edge.runtime.contract import LABELS, PreprocessSpec
    from fer_edge.runtime.errors import DataError
    from fer_edge.train.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "m-seed0" / "best.pt", _net(), LABELS, PreprocessSpec(size=32, colour="gray"),
                    {"margin": 0.3})
    with pytest.raises(DataError, match="--set crop"):
        _module().main(["--checkpoints", str(tmp_path / "m-seed0" / "best.pt"), "--out", str(tmp_path / "o"),
                        "--report", str(tmp_path / "r.md")])
