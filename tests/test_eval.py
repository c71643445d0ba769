"""``evaluate`` / ``fer-edge eval`` on every artefact kind: output files, keys, label mapping."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from test_eval_support import make_face_folder, shared_artefacts

from fer_edge.data.dataset import FaceDataset, FaceRecord
from fer_edge.evaluation.evaluate import evaluate, label_mapping
from fer_edge.runtime.contract import LABELS
from fer_edge.runtime.errors import DataError, ModelError
from fer_edge.runtime.manifest import sha256_file


@pytest.fixture(scope="session")
def artefacts(tmp_path_factory):
    return shared_artefacts(tmp_path_factory)


# A loader may spell and order classes its own way; contempt is unknown to a 7-class model.
DATA_LABELS = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral", "Contempt")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("faces")
    rows = make_face_folder(root, n_per_class=3, labels=DATA_LABELS)
    recs = [FaceRecord(path=p, label=k, intensity=(math.nan if i % 4 == 0 else inten))
            for i, (p, k, inten) in enumerate(rows)]
    (root / "broken.png").write_bytes(b"\x89PNG broken")
    recs += [FaceRecord(path="broken.png", label=0), FaceRecord(path=rows[0][0], label=-1)]
    return FaceDataset(root, recs, DATA_LABELS, name="tiny-test")


def test_label_mapping_by_name():
    m = label_mapping(DATA_LABELS, LABELS)
    assert [LABELS[i] if i >= 0 else None for i in m] == \
        ["anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral", None]


def test_eval_onnx_writes_files_and_keys(artefacts, dataset, tmp_path):
    res = evaluate(artefacts.onnx, dataset, out_dir=tmp_path / "ev")
    files = {p.name for p in (tmp_path / "ev").iterdir()}
    assert {"metrics.json", "confusion.json", "confusion.png", "predictions.csv"} <= files
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    for key in ("accuracy", "macro_f1", "per_class", "confusion", "n", "intensity", "model_sha256", "backend"):
        assert key in m, key
    assert m["backend"] == "onnxruntime" and m["model_sha256"] == sha256_file(artefacts.onnx)
    # 7 known classes × 3; contempt (3), the unreadable file and the unlabelled record are not scored
    assert m["n"] == 21 and res.n == 21
    assert m["skipped"] == {"unreadable": 1, "unlabelled": 1, "unknown_label": 3}
    cm = np.asarray(m["confusion"])
    assert cm.shape == (7, 7) and cm.sum() == 21 and (cm.sum(axis=1) == 3).all()
    assert 0.0 <= m["accuracy"] <= 1.0 and m["accuracy"] == pytest.approx(np.trace(cm) / 21)
    assert m["intensity"]["weak"]["n"] + m["intensity"]["strong"]["n"] <= 18   # neutral + unknown excluded
    conf = json.loads((tmp_path / "ev" / "confusion.json").read_text())
    assert conf["labels"] == list(LABELS) and conf["matrix"] == m["confusion"]
    assert (tmp_path / "ev" / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    assert len((tmp_path / "ev" / "predictions.csv").read_text().splitlines()) == 22


def test_checkpoint_onnx_and_int8_agree(artefacts, dataset):
    pt = evaluate(artefacts.checkpoint, dataset)
    fp = evaluate(artefacts.onnx, dataset)
    q = evaluate(artefacts.int8, dataset, reference=artefacts.onnx)
    assert pt.backend == "torch" and fp.backend == "onnxruntime"
    assert pt.confusion == fp.confusion          # same network, same preprocessing → same argmax
    assert q.precision == "int8"
    assert q.reference["accuracy"] == pytest.approx(fp.accuracy)
    assert 0.5 <= q.reference["agreement"] <= 1.0


def test_unlabelled_data_and_bad_model_are_named_errors(artefacts, dataset, tmp_path):
    unl = FaceDataset(dataset.root, [FaceRecord(path=r.path) for r in dataset.records[:3]], DATA_LABELS)
    with pytest.raises(DataError, match="no labelled sample"):
        evaluate(artefacts.onnx, unl)
    with pytest.raises(ModelError):
        evaluate(tmp_path / "missing.onnx", dataset)


def test_cli_eval_on_an_imagefolder(artefacts, tmp_path, capsys):
    import cv2

    from fer_edge import cli

    rng = np.random.default_rng(0)
    for name in ("happy", "sad", "Angry", "neutral"):      # loader spellings, a subset of the classes
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(2):
            cv2.imwrite(str(tmp_path / "data" / name / f"{i}.png"), rng.integers(0, 256, (40, 40), dtype=np.uint8))
    rc = cli.main(["eval", "--model", str(artefacts.int8), "--data", str(tmp_path / "data"), "--out",
                   str(tmp_path / "cli"), "--config", "ci", "--reference", str(artefacts.onnx)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "agreement" in out
    m = json.loads((tmp_path / "cli" / "metrics.json").read_text())
    assert m["precision"] == "int8" and m["n"] == 8
    assert "synthetic faces" not in out
    (tmp_path / "data" / "synth.json").write_text("{}")  # the marker the synthetic world writes
    assert cli.main(["eval", "--model", str(artefacts.onnx), "--data", str(tmp_path / "data"), "--out",
                     str(tmp_path / "cli2"), "--config", "ci"]) == 0
    assert "these are synthetic faces" in capsys.readouterr().out  # a cartoon-head score is labelled as one
    assert {k for k, v in m["per_class"].items() if v["support"]} == {"happiness", "sadness", "anger", "neutral"}
    rc = cli.main(["eval", "--model", str(tmp_path / "nope.onnx"), "--data", "x", "--out", str(tmp_path / "e")])
    assert rc == 1 and "not found" in capsys.readouterr().err


def test_eval_detect_on_scene_frames_with_truth(artefacts, tmp_path):
    """--detect: faces found by the runtime detector in whole frames, matched to the truth by IoU."""
    from fer_edge.data.synth.domains import get_domain
    from fer_edge.data.synth.scenes import write_scenes

    root = tmp_path / "scenes"
    (root / "images").mkdir(parents=True)
    write_scenes(get_domain("studio"), root, 6, list(range(10)), 0, 1)
    truth = [json.loads(line) for line in (root / "frames.jsonl").read_text().splitlines()]
    n_true = sum(len(t["faces"]) for t in truth)
    res = evaluate(artefacts.onnx, root, out_dir=tmp_path / "ev", detect=True)
    d = res.detection
    assert d["frames"] == 6 and d["true_faces"] == n_true
    assert d["detected"] == res.n > 0 and d["detected"] + d["missed"] == n_true
    assert sum(map(sum, res.confusion)) == res.n
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["detection"] == d


def test_eval_engine_through_the_tensorrt_backend(monkeypatch, dataset, tmp_path):
    """An engine is evaluated by the TensorRT backend (fake TensorRT + pycuda from the TRT tests), chunked to
    the engine profile's largest batch, and scores exactly like the ONNX it was built from."""
    from fakes.conftest_helpers import install_fakes
    from fakes.models import make_model

    from fer_edge.runtime.tensorrt import BuildOptions, build_engine

    trt = install_fakes(monkeypatch, "10")
    model = make_model(tmp_path / "model.onnx")
    engine = tmp_path / "model.engine"
    build_engine(model, engine, BuildOptions(batch=(1, 4, 8)))
    on_trt = evaluate(engine, dataset, out_dir=tmp_path / "trt", batch_size=64)
    on_ort = evaluate(model, dataset)
    assert on_trt.backend == "tensorrt" and on_trt.confusion == on_ort.confusion and on_trt.n == 21
    shapes = [d for n, d in trt.calls if n == "IExecutionContext.set_input_shape"]
    assert shapes and max(s[1][0] for s in shapes) <= 8
    assert json.loads((tmp_path / "trt" / "metrics.json").read_text())["backend"] == "tensorrt"


def test_eval_of_an_onnx_never_imports_torch(artefacts, dataset, tmp_path):
    """A device may have ONNX Runtime and no torch: evaluating an ONNX must not need it."""
    import subprocess
    import sys

    code = ("import sys, json; from fer_edge.evaluation.evaluate import evaluate; "
            "from fer_edge.data.dataset import FaceDataset, FaceRecord; "
            f"ds = FaceDataset({str(dataset.root)!r}, [FaceRecord(p, 0) for p in sys.argv[2:]], ('happy',)); "
            "r = evaluate(sys.argv[1], ds); print(json.dumps({'n': r.n, 'torch': 'torch' in sys.modules}))")
    paths = [r.path for r in dataset.records[:4]]
    out = subprocess.run([sys.executable, "-c", code, str(artefacts.onnx), *paths], capture_output=True, text=True,
                         check=True, timeout=120).stdout.strip().splitlines()[-1]
    assert json.loads(out) == {"n": 4, "torch": False}


def test_eval_detect_on_labelled_frames_takes_the_largest_face(artefacts, tmp_path):
    """Frames in class folders without a truth file: the largest face of each frame carries its label."""
    import cv2
    from runtime_fixtures import synthetic_frames

    for name in ("happy", "sad"):
        (tmp_path / "frames" / name).mkdir(parents=True)
        for i, frame in enumerate(synthetic_frames(2, faces=((160, 120, 60),))):
            cv2.imwrite(str(tmp_path / "frames" / name / f"{i}.png"), frame)
    cv2.imwrite(str(tmp_path / "frames" / "sad" / "empty.png"), np.full((240, 320, 3), 90, np.uint8))
    res = evaluate(artefacts.onnx, tmp_path / "frames", detect=True)
    assert res.detection["frames"] == 5 and res.detection["no_face"] == 1
    assert res.n == res.detection["detected"] == 4
    assert {k for k, v in res.per_class.items() if v["support"]} == {"happiness", "sadness"}
