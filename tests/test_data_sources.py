"""load_split (synth roles, caching, disjoint identities), subject-independent splits, the data CLI."""
from __future__ import annotations

import numpy as np
import pytest

from fer_edge.cli import main
from fer_edge.config import load_config
from fer_edge.data.dataset import FaceDataset, FaceRecord
from fer_edge.data.sources import load_split, synth_dir
from fer_edge.data.splits import split, split_indices
from fer_edge.runtime.contract import PreprocessSpec, preprocess
from fer_edge.runtime.errors import DataError


def _cfg(tmp_path, *extra):
    counts = ["data.synth.counts.source=10", "data.synth.counts.source_test=6", "data.synth.counts.target=8",
              "data.synth.counts.target_val=4", "data.synth.counts.target_test=6"]
    return load_config("ci", [f"data.root={tmp_path / 'data'}", "data.synth.size=32", "data.synth.identities=4",
                              "data.synth.workers=1", *counts, *extra])


def test_load_split_generates_caches_and_keeps_people_apart(tmp_path):
    cfg = _cfg(tmp_path)
    src = load_split(cfg, "source")
    assert len(src) == 10 and src.labelled and {r.domain for r in src} == {"studio"}
    folder = synth_dir(cfg, "studio", "source")
    stamp = (folder / "labels.csv").stat().st_mtime_ns
    assert len(load_split(cfg, "source")) == 10
    assert (folder / "labels.csv").stat().st_mtime_ns == stamp  # cached, not regenerated
    test = load_split(cfg, "source_test")  # not configured: a held-out split of the source domain
    assert len(test) == 6 and {r.domain for r in test} == {"studio"}
    assert not {r.identity for r in src} & {r.identity for r in test}
    tgt, tgt_test = load_split(cfg, "target"), load_split(cfg, "target_test")
    assert {r.domain for r in tgt} == {"cabin-nir"}
    assert not {r.identity for r in tgt} & {r.identity for r in tgt_test}
    x, keep = tgt.arrays(cfg.preprocess)
    assert x.shape == (8, 1, 32, 32)
    assert synth_dir(_cfg(tmp_path, "data.synth.seed=1"), "studio", "source") != folder
    assert synth_dir(_cfg(tmp_path, "crop.margin=0.3"), "studio", "source") != folder


def test_load_split_none_path_and_errors(tmp_path):
    cfg = _cfg(tmp_path, "data.target_val=null")
    assert load_split(cfg, "target_val") is None
    with pytest.raises(DataError, match="unknown data role"):
        load_split(cfg, "validation")
    with pytest.raises(DataError, match="no such file"):
        load_split(_cfg(tmp_path, f"data.target={tmp_path / 'missing'}"), "target")
    with pytest.raises(DataError, match="unknown synthetic domain"):
        load_split(_cfg(tmp_path, "data.target=synth:moon"), "target")


def test_load_split_reads_a_path(tmp_path):
    import cv2

    root = tmp_path / "cam"
    root.mkdir()
    cv2.imwrite(str(root / "a.png"), np.full((20, 20), 100, np.uint8))
    ds = load_split(_cfg(tmp_path, f"data.target={root}"), "target")
    assert len(ds) == 1 and not ds.labelled


def test_subject_independent_split():
    recs = [FaceRecord(f"{i}.png", i % 7, identity=f"p{i % 10}") for i in range(100)]
    ds = FaceDataset("/tmp", recs)
    tr, te = split_indices(ds, 0.3, seed=1)
    assert len(tr) + len(te) == 100 and len(te) >= 30
    assert not {recs[i].identity for i in tr} & {recs[i].identity for i in te}
    assert np.array_equal(split_indices(ds, 0.3, seed=1)[1], te)
    anon = FaceDataset("/tmp", [FaceRecord(f"{i}.png", i % 2) for i in range(20)])
    a, b = split(anon, 0.3)
    assert len(b) == 6 and sorted(np.bincount(b.label_array())) == [3, 3]  # stratified without identities


def test_cli_synth_and_preview(tmp_path, capsys):
    out = tmp_path / "crops"
    assert main(["data", "synth", "--domain", "kiosk", "--out", str(out), "--count", "8", "--size", "32",
                 "--identities", "3", "--workers", "1"]) == 0
    sheet = tmp_path / "sheet.png"
    assert main(["data", "preview", str(out), "--out", str(sheet), "--per-row", "3", "--tile", "32"]) == 0
    import cv2

    img = cv2.imread(str(sheet))
    assert img is not None and img.shape[1] == 150 + 3 * 32
    assert main(["data", "preview", str(tmp_path / "nothing"), "--out", str(sheet)]) == 1
    assert "no such file" in capsys.readouterr().err


def test_crop_equals_runtime_crop_of_the_rendered_frame():
    """Synthetic crops are crop_face(frame, true box) — the runtime's crop — resized to the stored size."""
    from fer_edge.data.synth.camera import compose
    from fer_edge.data.synth.domains import get_domain, sample_conditions
    from fer_edge.data.synth.sample import KIND_CODES, make_head, render_crop
    from fer_edge.runtime.crop import CropPolicy, crop_face

    policy = CropPolicy()
    crop, truth = render_crop("studio", 5, 0, [1, 2], 112, policy)
    spec = get_domain("studio")
    rng = np.random.default_rng([0, KIND_CODES["crops"], 5])
    cond = sample_conditions(rng, spec)
    ident = [1, 2][int(rng.integers(2))]
    canvas = int(np.ceil(112 * 1.25)) + 8
    head, _ = make_head(rng, spec, ident, (cond.yaw, cond.pitch, cond.roll), canvas / 2, canvas / 2,
                        112 / 1.4 * float(rng.uniform(0.97, 1.03)), cond.occluders)
    frame, boxes = compose(canvas, canvas, [head], spec, cond, rng)
    import cv2

    again = crop_face(frame, boxes[0], policy)
    if again.shape[:2] != (112, 112):
        again = cv2.resize(again, (112, 112), interpolation=cv2.INTER_AREA)
    assert np.array_equal(crop, again)
    spec64 = PreprocessSpec()
    assert float(np.abs(preprocess(crop, spec64) - preprocess(again, spec64)).max()) <= 1e-6


def test_is_synthetic_knows_the_world_by_its_prefix_or_its_marker(tmp_path):
    from fer_edge.data.sources import is_synthetic
    from fer_edge.data.synth import MARKER

    assert is_synthetic("synth:cabin-nir") and not is_synthetic(None)
    real = tmp_path / "fer2013" / "test"
    (real / "happy").mkdir(parents=True)
    assert not is_synthetic(real) and not is_synthetic(real / "happy")
    (tmp_path / "fer2013" / MARKER).write_text("{}")
    assert is_synthetic(real)  # a role folder inside a synthetic cache
