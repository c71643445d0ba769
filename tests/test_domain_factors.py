"""Domain factors: every camera property belongs to one factor group, swaps are exact, the study runs."""
from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "domain_factors.py"


def test_every_camera_property_is_in_exactly_one_factor():
    """A new DomainSpec field must be given a factor, or the study would silently never vary it."""
    from fer_edge.data.synth.domains import FACTORS, DomainSpec

    fields = {f.name for f in dataclasses.fields(DomainSpec)} - {"name", "class_weights"}
    grouped = [k for group in FACTORS.values() for k in group]
    assert sorted(grouped) == sorted(fields)


def test_swap_takes_exactly_the_factor_fields_from_the_donor():
    from fer_edge.data.synth.domains import FACTORS, get_domain, swap_factors
    from fer_edge.runtime.errors import DataError

    studio, cabin = get_domain("studio"), get_domain("cabin-nir")
    hybrid = swap_factors(studio, cabin, ["pitch", "spectrum"], "studio+x")
    swapped = set(FACTORS["pitch"]) | set(FACTORS["spectrum"])
    for f in dataclasses.fields(studio):
        donor = cabin if f.name in swapped else studio
        if f.name != "name":
            assert getattr(hybrid, f.name) == getattr(donor, f.name), f.name
    assert hybrid.name == "studio+x" and hybrid.nir and hybrid.pitch == cabin.pitch
    with pytest.raises(DataError, match="choose from"):
        swap_factors(studio, cabin, ["pose"], "x")


def test_render_crop_takes_a_hybrid_spec_and_draws_its_pose():
    from fer_edge.data.synth.domains import get_domain, swap_factors
    from fer_edge.data.synth.sample import render_crop
    from fer_edge.runtime.crop import CropPolicy

    spec = swap_factors(get_domain("studio"), get_domain("cabin-nir"), ["pitch"], "studio+pitch")
    pitches = [render_crop(spec, i, 3, [1, 2, 3], 48, CropPolicy())[1].pitch for i in range(6)]
    assert all(-22.0 <= p <= -5.0 for p in pitches)


def test_study_end_to_end_writes_both_tables(tmp_path):
    from fer_edge.runtime.contract import LABELS, PreprocessSpec
    from fer_edge.train.checkpoint import save_checkpoint
    from fer_edge.train.models import FerNet, ModelSpec

    spec = importlib.util.spec_from_file_location("bench_domain_factors", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.manual_seed(0)
    net = FerNet(ModelSpec(backbone="tiny", in_channels=1, num_classes=len(LABELS), feature_dim=8, width=0.5)).eval()
    save_checkpoint(tmp_path / "m.pt", net, LABELS, PreprocessSpec(size=32, colour="gray"), {"margin": 0.2})
    report = tmp_path / "factors.md"
    assert mod.main(["--checkpoints", str(tmp_path / "m.pt"), "--count", "7", "--out", str(tmp_path / "o"),
                     "--report", str(report), "--set", "data.synth.size=48"]) == 0
    text = report.read_text()
    assert "## studio + one cabin-nir factor" in text and "## cabin-nir − one factor" in text
    rows = json.loads((tmp_path / "o" / "factors.json").read_text())["rows"]
    assert [r["name"] for r in rows][:2] == ["studio", "+ pitch"] and len(rows) == 2 * (1 + 8)
    assert all(0.0 <= r["accuracy"] <= 100.0 and len(r["recall"]) == len(LABELS) for r in rows)
