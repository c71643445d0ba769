"""No traceback and no silent success: each mistake is one named line and exit 1, and nothing done is lost.

Most cases run ``fer_edge.cli.main`` in this process (a bug would surface as an exception, failing the
test, where a user would see a traceback); the ones about what the terminal shows run a subprocess.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from runtime_fixtures import make_onnx, synthetic_frames, write_video

from fer_edge import cli
from fer_edge.runtime.crop import CropPolicy

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli-errors")
    model = make_onnx(d / "model.onnx")
    video = write_video(d / "clip.avi", synthetic_frames(12, size=(320, 240), faces=((120, 120, 45),)))
    return {"model": model, "video": video, "dir": d}


def _run(assets, *extra, source=None):
    args = ["run", "--model", str(assets["model"]), "--source", str(source or assets["video"]), "--threads", "1",
            "--no-progress", *map(str, extra)]
    return cli.main(args)


def _one_error_line(err: str, *words: str) -> str:
    lines = [x for x in err.splitlines() if x.startswith("fer-edge ")]
    assert len(lines) == 1, err
    assert "Traceback" not in err and all(w in lines[0] for w in words), lines[0]
    return lines[0]


def test_out_that_is_a_folder_is_refused_before_the_first_frame(assets, tmp_path, capsys):
    t0 = time.monotonic()
    assert _run(assets, "--out", tmp_path) == 1
    out, err = capsys.readouterr()
    _one_error_line(err, "--out", "folder")
    assert "frames" not in out and time.monotonic() - t0 < 10  # nothing was processed, then lost


@pytest.mark.parametrize("where", ["proc", "under_a_file"])
def test_out_that_cannot_be_written_is_one_line(assets, tmp_path, capsys, where):
    if where == "proc":
        if not Path("/proc/self").is_dir():
            pytest.skip("no /proc on this system")
        target = "/proc/x.jsonl"
    else:
        (tmp_path / "file").write_text("a file, not a folder")
        target = tmp_path / "file" / "x.jsonl"
    assert _run(assets, "--out", target) == 1
    _one_error_line(capsys.readouterr().err, "--out")


def test_a_late_error_keeps_every_result_already_made(assets, tmp_path, capsys, monkeypatch):
    import fer_edge.runtime.pipeline as pipeline_mod
    from fer_edge.runtime.sources import IterableSource

    frames = synthetic_frames(3, size=(320, 240), faces=((120, 120, 45),))

    def stream():
        yield from frames
        raise RuntimeError("USB camera unplugged")

    monkeypatch.setattr(pipeline_mod, "open_source", lambda *a, **k: IterableSource(stream(), name="cam"))
    out = tmp_path / "r.jsonl"
    assert _run(assets, "--out", out) == 1
    _one_error_line(capsys.readouterr().err, "unplugged")
    assert len(out.read_text().splitlines()) == 3


def test_a_text_file_named_jpg_is_not_a_silent_success(assets, tmp_path, capsys):
    fake = tmp_path / "photo.jpg"
    fake.write_text("this is not an image")
    out = tmp_path / "r.jsonl"
    assert _run(assets, "--out", out, source=fake) == 1
    _one_error_line(capsys.readouterr().err, "photo.jpg", "could be used")
    line = json.loads(out.read_text())
    assert line["fault"] == "decode_error" and line["path"] == str(fake)  # the result says which file failed


def test_a_folder_of_unreadable_images_is_an_error_with_every_file_listed(assets, tmp_path, capsys):
    d = tmp_path / "broken"
    d.mkdir()
    for i in range(3):
        (d / f"img{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    out = tmp_path / "r.jsonl"
    assert _run(assets, "--out", out, source=d) == 1
    _one_error_line(capsys.readouterr().err, "none of its 3 frame(s) could be used", "decode_error 3")
    assert [json.loads(x)["fault"] for x in out.read_text().splitlines()] == ["decode_error"] * 3


def test_video_out_without_a_known_suffix_is_refused_and_writes_nothing(assets, tmp_path, capsys):
    vid = tmp_path / "vid"
    assert _run(assets, "--out", tmp_path / "r.jsonl", "--video-out", vid) == 1
    _one_error_line(capsys.readouterr().err, "--video-out", ".mp4")
    assert not vid.exists() and not (tmp_path / "r.jsonl").exists()


@pytest.mark.parametrize("flag,value,key", [("--max-frames", "-1", "max_frames"), ("--threads", "-2", "threads"),
                                            ("--detect-every", "0", "detect_every")])
def test_numbers_that_make_no_sense_are_refused(assets, tmp_path, capsys, flag, value, key):
    assert _run(assets, "--out", tmp_path / "r.jsonl", flag, value) == 1
    _one_error_line(capsys.readouterr().err, key)
    assert not (tmp_path / "r.jsonl").exists()


def test_bench_on_a_truncated_model_fails_at_once(assets, tmp_path, capsys):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(Path(assets["model"]).read_bytes()[:300])
    t0 = time.monotonic()
    assert cli.main(["bench", "--model", str(broken), "--out", str(tmp_path / "b"), "--compare", "ort-fp32"]) == 1
    _one_error_line(capsys.readouterr().err, "broken.onnx", "cannot load")
    assert time.monotonic() - t0 < 10 and not (tmp_path / "b" / "bench.md").exists()


def test_a_dead_camera_says_once_what_it_retries_and_fails_in_one_line(assets, tmp_path, capsys, caplog,
                                                                      monkeypatch):
    import fer_edge.runtime.pipeline as pipeline_mod
    from fer_edge.runtime.sources import CaptureSource

    def dead(*a, **k):
        return CaptureSource(lambda: None, "camera 0", live=True, retries=4, backoff_s=0.5, sleep=lambda s: None)

    monkeypatch.setattr(pipeline_mod, "open_source", dead)
    with caplog.at_level(logging.INFO):
        assert _run(assets, "--out", tmp_path / "r.jsonl") == 1
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and "camera 0" in r.getMessage()]
    assert len(warned) == 1 and "retrying 4 times over up to 7.5 s" in warned[0], warned
    out, err = capsys.readouterr()
    _one_error_line(err, "camera 0", "cannot open after 4 retries")
    assert (out + err).count("cannot open after 4 retries") == 1  # not again in the printed summary


def test_a_crop_the_model_was_not_trained_on_is_refused_and_the_detector_side_is_honoured(assets, tmp_path,
                                                                                         capsys):
    assert _run(assets, "--out", tmp_path / "r.jsonl", "--set", "crop.margin=0.4") == 1
    _one_error_line(capsys.readouterr().err, "margin", "model expects 0.2", "retrain")
    assert _run(assets, "--out", tmp_path / "r2.jsonl", "--set", "crop.min_face=30", "crop.select=all") == 0
    summary = json.loads((tmp_path / "r2.jsonl.summary.json").read_text())
    assert summary["crop"]["min_face"] == 30 and summary["crop"]["select"] == "all"


def test_a_crop_edited_in_the_sidecar_is_refused(tmp_path, capsys):
    from fer_edge.runtime.manifest import sidecar_path

    model = make_onnx(tmp_path / "m.onnx", crop=CropPolicy(min_face=24, margin=0.1))
    side = sidecar_path(model)
    data = json.loads(side.read_text())
    data["crop"]["margin"] = 0.4
    side.write_text(json.dumps(data))
    video = write_video(tmp_path / "c.avi", synthetic_frames(3, size=(320, 240), faces=((120, 120, 45),)))
    rc = cli.main(["run", "--model", str(model), "--source", str(video), "--out", str(tmp_path / "r.jsonl"),
                   "--no-progress"])
    assert rc == 1
    _one_error_line(capsys.readouterr().err, "sidecar", "margin 0.4", "0.1")


def test_eval_on_whole_frames_warns_and_says_when_accuracy_is_no_better_than_guessing(assets, tmp_path):
    data = tmp_path / "frames" / "happiness"
    data.mkdir(parents=True)
    for i, f in enumerate(synthetic_frames(6, size=(640, 480), faces=((200, 240, 40),))):
        cv2.imwrite(str(data / f"f{i}.png"), f)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-m", "fer_edge.cli", "eval", "--model", str(assets["model"]), "--data",
                        str(tmp_path / "frames"), "--out", str(tmp_path / "ev")], capture_output=True, text=True,
                       timeout=120, cwd=REPO, env=env)
    assert p.returncode == 0, p.stderr
    assert "look like whole camera frames" in p.stderr and "--detect" in p.stderr
    assert "majority-class rate 1.000" in p.stdout


def test_eval_on_face_crops_does_not_warn(assets, tmp_path):
    from fer_edge.commands.eval import looks_like_frames

    data = tmp_path / "crops" / "happiness"
    data.mkdir(parents=True)
    for i, f in enumerate(synthetic_frames(4, size=(96, 96), faces=((48, 48, 40),), drift=0)):
        cv2.imwrite(str(data / f"c{i}.png"), f)
    assert looks_like_frames(str(tmp_path / "crops")) == ""
    wide = tmp_path / "wide"
    wide.mkdir()
    cv2.imwrite(str(wide / "w.png"), np.full((360, 640, 3), 90, np.uint8))
    assert "640×360" in looks_like_frames(str(wide))
