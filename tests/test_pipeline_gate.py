"""The pipeline's INT8 gate never reads target_test: it gates on target_val (or held-back calibration images)."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from fer_edge.config import load_config
from fer_edge.pipeline import main as pipeline_main
from fer_edge.pipeline.runner import Context
from fer_edge.pipeline.stamps import Stamp


def _folder(root: Path, name: str, labelled: bool) -> str:
    import cv2
    import numpy as np

    d = root / name
    sub = d / "happy" if labelled else d  # a class-named folder makes it labelled
    sub.mkdir(parents=True, exist_ok=True)
    for i in range(3):
        cv2.imwrite(str(sub / f"{name}_{i}.png"), np.full((32, 32), 40 * i, np.uint8))
    return str(d)


def _ctx(tmp_path: Path, roots: dict) -> Context:
    ctx = Context(cfg=load_config("ci"), out=tmp_path / "run")
    ctx.stamps["synth"] = Stamp("synth", "x", result={"splits": {k: {"root": v} for k, v in roots.items()}})
    (ctx.out / "calibrate").mkdir(parents=True)
    return ctx


def _captured(monkeypatch) -> dict:
    import fer_edge.calibration.quantize as quantize

    seen: dict = {}

    def fake_calibrate(model, images, out, **kw):
        seen.update(images=images, **kw)
        gate = SimpleNamespace(agreement=100.0, drop=None)
        return SimpleNamespace(to_dict=lambda: {"num_images": 1}, gate=gate, excluded=[], cpu_excluded=[])

    monkeypatch.setattr(quantize, "calibrate", fake_calibrate)
    return seen


def _every_path_argument(seen: dict) -> set:
    return {str(Path(v).resolve()) for k, v in seen.items() if isinstance(v, (str, Path)) and k != "trt_version"}


def test_pipeline_gate_reads_target_val_never_target_test(tmp_path, monkeypatch):
    roots = {"target": _folder(tmp_path, "t", False), "target_val": _folder(tmp_path, "v", True),
             "target_test": _folder(tmp_path, "s", True)}
    seen = _captured(monkeypatch)
    ctx = _ctx(tmp_path, roots)
    out = pipeline_main._run_calibrate(ctx, ctx.out / "calibrate")
    assert str(Path(roots["target_test"]).resolve()) not in _every_path_argument(seen)
    assert seen["gate_images"] == roots["target_val"] and seen["eval_data"] == roots["target_val"]
    assert seen["images"] == roots["target"]
    assert out.result["splits"] == {"calibration": "target", "gate": "target_val", "validation": "target_val",
                                    "scored": "target_test"}


def test_target_val_that_is_the_test_folder_is_not_used(tmp_path, monkeypatch):
    """The real-face recipe points target_val and target_test at one folder: then no gate image and no label
    comes from it — the gate holds back calibration images instead."""
    same = _folder(tmp_path, "s", True)
    roots = {"target": _folder(tmp_path, "t", False), "target_val": same, "target_test": same}
    seen = _captured(monkeypatch)
    ctx = _ctx(tmp_path, roots)
    out = pipeline_main._run_calibrate(ctx, ctx.out / "calibrate")
    assert seen["gate_images"] is None and seen["eval_data"] is None
    assert str(Path(same).resolve()) not in _every_path_argument(seen)
    assert out.result["splits"]["gate"] == "target (held back)" and out.result["splits"]["validation"] == "none"


def test_unlabelled_target_val_gates_without_labels(tmp_path, monkeypatch):
    roots = {"target": _folder(tmp_path, "t", False), "target_val": _folder(tmp_path, "v", False),
             "target_test": _folder(tmp_path, "s", True)}
    seen = _captured(monkeypatch)
    ctx = _ctx(tmp_path, roots)
    pipeline_main._run_calibrate(ctx, ctx.out / "calibrate")
    assert seen["gate_images"] == roots["target_val"] and seen["eval_data"] is None
