"""The synthetic world: every domain × kind, determinism, crop contract, expression geometry."""
from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_edge.data.synth import CROP_COLUMNS, DOMAINS, MARKER, generate
from fer_edge.data.synth.camera import sensor_noise
from fer_edge.data.synth.expressions import PROFILES, activations
from fer_edge.data.synth.features import build
from fer_edge.data.synth.head import Camera, on_surface, rotation, sample_identity
from fer_edge.runtime.contract import LABELS
from fer_edge.runtime.errors import DataError


def _hashes(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != MARKER}


def _rows(path: Path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("domain", sorted(DOMAINS))
def test_crops_each_domain(tmp_path, domain):
    out = generate(domain, "crops", tmp_path / domain, count=6, identities=3, size=48, seed=1, workers=1)
    rows = _rows(out / "labels.csv")
    assert list(rows[0]) == CROP_COLUMNS and len(rows) == 6
    for r in rows:
        img = cv2.imread(str(out / r["path"]), cv2.IMREAD_UNCHANGED)
        assert img.shape[:2] == (48, 48)
        assert (img.ndim == 2) == (domain == "cabin-nir")  # NIR is single channel
        assert r["expression"] in LABELS and 0 < float(r["intensity"]) <= 1 and r["domain"] == domain
    assert json.loads((out / MARKER).read_text())["crop"]["margin"] == 0.2


@pytest.mark.parametrize("domain", sorted(DOMAINS))
def test_scenes_and_video_each_domain(tmp_path, domain):
    scenes = generate(domain, "scenes", tmp_path / "s", count=2, identities=3, seed=2, workers=1)
    frames = [json.loads(line) for line in (scenes / "frames.jsonl").read_text().splitlines()]
    assert len(frames) == 2
    for fr in frames:
        img = cv2.imread(str(scenes / fr["path"]), cv2.IMREAD_UNCHANGED)
        assert img.shape[:2] == (480, 640) and len(fr["faces"]) <= 3
    assert len(_rows(scenes / "labels.csv")) == sum(len(f["faces"]) for f in frames)
    video = generate(domain, "video", tmp_path / "v", count=4, identities=3, seed=2)
    meta = json.loads((video / MARKER).read_text())
    cap = cv2.VideoCapture(str(video / meta["video"]))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 4
    lines = [json.loads(line) for line in (video / "frames.jsonl").read_text().splitlines()]
    assert [fr["frame"] for fr in lines] == [0, 1, 2, 3]
    assert all(len(fr["faces"]) >= 1 and len(fr["faces"][0]["bbox"]) == 4 for fr in lines)


def test_same_seed_same_bytes_whatever_the_workers(tmp_path):
    a = generate("cabin-nir", "crops", tmp_path / "a", count=12, identities=4, size=40, seed=7, workers=1)
    b = generate("cabin-nir", "crops", tmp_path / "b", count=12, identities=4, size=40, seed=7, workers=2)
    c = generate("cabin-nir", "crops", tmp_path / "c", count=12, identities=4, size=40, seed=8, workers=1)
    assert _hashes(a) == _hashes(b)
    assert _hashes(a) != _hashes(c)
    s1 = generate("kiosk", "scenes", tmp_path / "s1", count=2, identities=3, seed=3, workers=1)
    s2 = generate("kiosk", "scenes", tmp_path / "s2", count=2, identities=3, seed=3, workers=1)
    assert _hashes(s1) == _hashes(s2)


def test_refuses_foreign_folder_and_bad_arguments(tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("x")
    with pytest.raises(DataError, match="not a fer-edge synthetic dataset"):
        generate("studio", "crops", foreign, 2, 2, 32)
    with pytest.raises(DataError, match="unknown synthetic domain"):
        generate("mars", "crops", tmp_path / "x", 2)
    with pytest.raises(DataError, match="kind"):
        generate("studio", "gifs", tmp_path / "x", 2)
    assert not any(p.name.startswith(".x") for p in tmp_path.iterdir())  # no partial folder left behind


def _mouth_corner(expression: str, intensity: float) -> float:
    person = sample_identity(3)
    aus = activations(expression, intensity, 0.0, 0.0, np.random.default_rng(0), jitter=0.0)
    return build(person, aus).mouth_corner_y


def test_expression_geometry_follows_the_aus():
    neutral = _mouth_corner("neutral", 1.0)
    smile = _mouth_corner("happiness", 1.0)
    assert smile < neutral - 0.1  # a smile raises the corners (y is down)
    assert _mouth_corner("sadness", 1.0) > neutral + 0.1
    # Geometry scales with intensity: a 5 % smile moves the corners 5 % as far (weak is near neutral).
    assert abs(_mouth_corner("happiness", 0.05) - neutral) == pytest.approx(0.05 * (neutral - smile), rel=1e-6)
    person = sample_identity(1)
    zero = np.random.default_rng(0)
    surprise = build(person, activations("surprise", 1.0, 0, 0, zero, jitter=0.0))
    calm = build(person, activations("neutral", 1.0, 0, 0, zero, jitter=0.0))
    assert len(surprise.mouth_inner) > 0 and len(calm.mouth_inner) == 0
    assert surprise.brows[0][:, 1].mean() < calm.brows[0][:, 1].mean()  # raised brows
    assert set(PROFILES) == set(LABELS)


def test_pose_projection_turns_the_nose():
    person = sample_identity(0)
    nose_tip = np.array([[0.0, 0.2, person.c]], np.float32)
    for yaw, sign in ((30.0, 1), (-30.0, -1)):
        px, _ = Camera(10.0, 0.0, 0.0, rotation(yaw, 0.0, 0.0)).project(nose_tip)
        assert np.sign(px[0, 0]) == sign
    below, _ = Camera(10.0, 0.0, 0.0, rotation(0.0, -20.0, 0.0)).project(nose_tip)
    above, _ = Camera(10.0, 0.0, 0.0, rotation(0.0, 20.0, 0.0)).project(nose_tip)
    assert below[0, 1] < above[0, 1]  # seen from below (cabin) the nose tip rises in the image


def test_place_agrees_with_project_and_facing():
    """Camera.place (the renderer's one-pass placement) is project∘on_surface plus facing."""
    person = sample_identity(5)
    cam = Camera(40.0, 70.0, 60.0, rotation(25.0, -15.0, 5.0))
    pts = np.random.default_rng(0).uniform([-0.9, -1.0], [0.9, 1.2], (50, 2)).astype(np.float32)
    for lift in (0.0, 0.06):
        px, facing = cam.place(person, pts, lift)
        assert np.allclose(px, cam.project(on_surface(person, pts, lift))[0], atol=1e-3)
        assert np.allclose(facing, cam.facing(person, pts), atol=1e-5)


def test_sensor_noise_is_seeded_gaussian():
    a = sensor_noise((37, 41, 3), 4.0, np.random.default_rng(3))
    assert a.shape == (37, 41, 3) and a.dtype == np.float32
    assert np.array_equal(a, sensor_noise((37, 41, 3), 4.0, np.random.default_rng(3)))  # odd size, same seed
    big = sensor_noise((400, 500), 4.0, np.random.default_rng(1))
    assert abs(float(big.mean())) < 0.05 and float(big.std()) == pytest.approx(4.0, rel=0.01)
    assert float(np.mean(np.abs(big) > 8.0)) == pytest.approx(0.0455, abs=0.003)  # 2-sigma tails of a normal
