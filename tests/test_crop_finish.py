"""One crop finish for pre-cut and detected faces: a folder of faces someone else cut (FER2013, BUAA) decodes to
exactly the tensor the runtime makes when it cuts the same face out of a frame, CLAHE included."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from fer_edge.config import load_config
from fer_edge.data.faces import extract_faces, precut_finish
from fer_edge.data.sources import load_split
from fer_edge.runtime.contract import Contract, PreprocessSpec, preprocess
from fer_edge.runtime.crop import CropPolicy, crop_box, crop_face, finish_crop

SPEC = PreprocessSpec(size=48)
BOX = (40, 30, 64, 64)


def _frame() -> np.ndarray:
    """A low-contrast gray frame with structure (what CLAHE changes most: a dim near-infrared face)."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:160, 0:200]
    img = 90 + 20 * np.sin(xx / 7.0) * np.cos(yy / 9.0) + rng.normal(0, 4, (160, 200))
    return np.clip(img, 0, 255).astype(np.uint8)


def _precut_folder(tmp_path, frame, policy) -> str:
    """The face as a third party would ship it: the same rectangle, cut raw (no CLAHE), in a class folder."""
    raw = crop_face(frame, BOX, CropPolicy(**{**policy.to_dict(), "clahe": False}))
    (tmp_path / "faces" / "happy").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "faces" / "happy" / "a.png"), raw)
    return str(tmp_path / "faces")


@pytest.mark.parametrize("clahe", [True, False])
def test_precut_face_decodes_to_the_runtime_tensor(tmp_path, clahe):
    frame = _frame()
    policy = CropPolicy(margin=0.1, square=True, clahe=clahe)
    folder = _precut_folder(tmp_path, frame, policy)
    cfg = load_config("ci", [f"data.source={folder}", f"crop.clahe={str(clahe).lower()}", "crop.margin=0.1",
                             f"data.root={tmp_path / 'data'}"])
    ds = load_split(cfg, "source")
    x, keep = ds.arrays(SPEC)
    runtime = preprocess(crop_face(frame, BOX, policy), SPEC)  # what the runtime feeds the model
    assert list(keep) == [0]
    np.testing.assert_array_equal(x[0], runtime)
    raw = preprocess(cv2.imread(str(tmp_path / "faces" / "happy" / "a.png"), cv2.IMREAD_UNCHANGED), SPEC)
    assert np.abs(x[0] - raw).max() > (0.1 if clahe else -1)  # CLAHE really was applied (and only when asked)
    if not clahe:
        np.testing.assert_array_equal(x[0], raw)


def test_finish_is_the_last_step_of_crop_face():
    frame = _frame()
    policy = CropPolicy(margin=0.1, clahe=True)
    x0, y0, w, h = crop_box(BOX, policy)
    np.testing.assert_array_equal(crop_face(frame, BOX, policy), finish_crop(frame[y0:y0 + h, x0:x0 + w], policy))


def test_faces_fer_edge_cut_are_not_finished_twice(tmp_path, monkeypatch):
    """A `data faces` output already carries CLAHE in its pixels: decoding it must not equalise again."""
    from fer_edge.data.faces import extract as faces_extract
    from fer_edge.runtime.detect import Detection

    class One:
        name, has_landmarks = "fixed", False

        def detect(self, frame):
            return [Detection(BOX, 0.9)]

    monkeypatch.setattr(faces_extract, "make_detector", lambda policy, detect_width=640: One())
    policy = CropPolicy(min_face=24, margin=0.1, clahe=True)
    (tmp_path / "frames").mkdir()
    cv2.imwrite(str(tmp_path / "frames" / "f.png"), _frame())
    extract_faces(tmp_path / "frames", tmp_path / "out", policy, workers=1, progress=False)
    assert precut_finish(tmp_path / "out" / "faces", policy) is None
    assert precut_finish(tmp_path / "frames", policy) == policy  # someone else's crops: finished at decode
    assert precut_finish(tmp_path / "frames", CropPolicy(clahe=False)) is None  # nothing to finish


def test_eval_and_calibration_loaders_finish_precut_faces(tmp_path):
    from fer_edge.calibration.images import load_images
    from fer_edge.evaluation.data import load_eval_dataset

    frame = _frame()
    policy = CropPolicy(margin=0.1, clahe=True)
    folder = _precut_folder(tmp_path, frame, policy)
    contract = Contract(preprocess=SPEC, crop=policy.to_dict())
    want = preprocess(crop_face(frame, BOX, policy), SPEC)
    x, _ = load_eval_dataset(folder, contract).arrays(SPEC)
    np.testing.assert_array_equal(x[0], want)
    cal = load_images(folder, contract, num_images=1, min_images=1)
    np.testing.assert_array_equal(cal.x[0], want)
