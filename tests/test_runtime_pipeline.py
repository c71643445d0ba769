"""The runtime loop end to end: results, fault injection, flaky sources, JSONL schema, CLI, no torch."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from runtime_fixtures import make_onnx, synthetic_frames, write_video

from fer_edge.runtime.config import RuntimeConfig
from fer_edge.runtime.errors import ConfigError, SourceError
from fer_edge.runtime.pipeline import Pipeline
from fer_edge.runtime.results import SCHEMA, validate_line
from fer_edge.runtime.sources import CaptureSource, Frame, open_source

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    d = tmp_path_factory.mktemp("runtime")
    model = make_onnx(d / "model.onnx")
    frames = synthetic_frames(40, size=(320, 240), faces=((120, 120, 45),))
    video = write_video(d / "clip.avi", frames)
    return {"dir": d, "model": model, "frames": frames, "video": video}


def _pipe(assets, **kw):
    kw.setdefault("threads", 1)
    kw.setdefault("stall_timeout_s", 0.2)
    kw.setdefault("detect_mode", "sync")  # deterministic: detections land on the frame they were run on
    return Pipeline.from_model(assets["model"], **kw)


def test_every_frame_yields_one_result_with_faces(assets):
    pipe = _pipe(assets, detect_every=5)
    results = list(pipe.run(assets["video"]))
    assert [r.frame for r in results] == list(range(40))
    assert all(len(r.faces) == 1 for r in results)
    assert [r.detected for r in results[:11]] == [True, False, False, False, False] * 2 + [True]
    assert len({f.track_id for r in results for f in r.faces}) == 1  # one person, one id, across detections
    face = results[-1].faces[0]
    assert face.label in pipe.labels and face.label_smoothed in pipe.labels
    assert abs(sum(face.probs) - 1) < 1e-4 and abs(sum(face.probs_smoothed) - 1) < 1e-4
    s = pipe.stats.summary()
    assert s["frames"] == 40 and s["faces"] == 40 and s["fault_total"] == 0 and s["detections_run"] == 8
    lat = s["latency_ms"]["total"]
    assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"]


def test_all_faces_of_a_frame_go_in_one_batched_call(assets):
    pipe = _pipe(assets, select="all", min_face=24)
    calls = []
    real = pipe.backend.infer
    pipe.backend.infer = lambda batch: calls.append(len(batch)) or real(batch)
    frames = synthetic_frames(6, size=(400, 240), faces=((100, 120, 50), (300, 120, 40)))
    results = list(pipe.run(frames))
    assert all(len(r.faces) == 2 for r in results) and calls == [2] * 6
    assert len({f.track_id for r in results for f in r.faces}) == 2


def test_bad_frames_are_counted_and_the_loop_goes_on(assets):
    good = assets["frames"][:3]
    # (a str among the images is now read as an image path: see test_runtime_stills.py)
    bad = [None, b"garbage", np.zeros((0, 320, 3), np.uint8), good[0].astype(np.float32),
           np.zeros((240, 320, 2), np.uint8), np.zeros((4, 4, 3), np.uint8)]
    stream = [good[0]] + bad + [good[1], good[2].copy()[:, :, :1], np.dstack([good[2], good[2][:, :, :1]])]
    pipe = _pipe(assets)
    results = list(pipe.run(stream))
    assert len(results) == len(stream)
    faults = pipe.stats.summary()["faults"]
    assert faults == {"none_frame": 1, "bad_type": 1, "empty_frame": 1, "bad_dtype": 1, "bad_shape": 2}
    assert [r.fault for r in results[1:7]] == ["none_frame", "bad_type", "empty_frame", "bad_dtype",
                                               "bad_shape", "bad_shape"]
    # good frames around the bad ones (BGR, single-channel, BGRA) are all classified
    assert [len(r.faces) for r in results if r.fault is None] == [1, 1, 1, 1]


def test_off_image_track_box_is_a_counted_bad_crop(assets):
    frames = assets["frames"][:6]
    # the face vanishes off-frame between detections: the carried box now lies outside a smaller frame
    tiny = [np.full((40, 40, 3), 90, np.uint8)] * 2
    pipe = _pipe(assets, detect_every=50)
    list(pipe.run(frames[:2]))
    pipe.tracker.tracks[0].bbox = (500, 500, 50, 50)
    pipe.tracker.tracks[0].patch = None  # no appearance to compare: the corrupt box reaches the crop
    r = pipe.process(Frame(2, frames[2], 0.0))
    assert r.faces == [] and pipe.stats.faults["bad_crop"] == 1
    # a frame-size change resets the tracks and forces detection instead of cropping stale boxes
    results = list(pipe.run(list(frames[:2]) + tiny + list(frames[2:4])))
    assert pipe.stats.events["size_change"] == 2 and results[4].detected and len(results[4].faces) == 1


class FlakyCamera:
    """A fake VideoCapture: script of 'ok', 'none' (read fails), 'raise', 'stall' (blocks), 'gone' (closes)."""

    def __init__(self, frame, script, stall_s=0.6):
        self.frame, self.script, self.stall_s = frame, script, stall_s
        self.opened = True

    def isOpened(self):
        return self.opened

    def read(self):
        step = self.script.pop(0) if self.script else "end"
        if step == "ok":
            return True, self.frame.copy()
        if step == "raise":
            raise RuntimeError("driver error")
        if step == "stall":
            time.sleep(self.stall_s)
            return True, self.frame.copy()
        if step == "end":
            time.sleep(0.05)
        return False, None

    def release(self):
        self.opened = False


def test_camera_that_raises_stalls_and_comes_back(assets):
    frame = assets["frames"][0]
    script = ["ok", "ok", "raise", "ok", "stall", "ok", "none", "ok", "ok"]
    opens = []

    def opener():
        opens.append(1)
        if len(opens) == 3 or not script:
            return None  # a reconnect attempt fails (camera still gone); after the script it is gone for good
        return FlakyCamera(frame, script)

    src = CaptureSource(opener, "fake camera", live=True, retries=3, backoff_s=0.01)
    pipe = _pipe(assets, stall_timeout_s=0.2, drop_policy="block")
    results = []
    with pytest.raises(SourceError, match="cannot reconnect after 3 retries"):
        for r in pipe.run(src):
            results.append(r)
    s = pipe.stats.summary()
    assert s["faults"]["read_error"] == 1 and s["faults"]["source_lost"] >= 1 and s["faults"]["stall"] >= 1
    assert s["events"]["reconnects"] >= 2
    good = [r for r in results if r.fault is None]
    assert len(good) == 7 and all(len(r.faces) == 1 for r in good)
    assert pipe.stats.error and "reconnect" in pipe.stats.error


def test_camera_that_never_opens_is_a_clear_error(assets):
    sleeps = []
    src = CaptureSource(lambda: None, "camera 7", live=True, retries=4, backoff_s=0.5, sleep=sleeps.append)
    with pytest.raises(SourceError, match="camera 7: cannot open after 4 retries"):
        list(_pipe(assets).run(src))
    assert sleeps == [0.5, 1.0, 2.0, 4.0]  # exponential backoff


def test_stalled_source_is_given_up_cleanly(assets):
    class Stuck:
        live = True
        name = "stuck"

        def frames(self):
            yield from []
            threading.Event().wait(10)

        def close(self):
            pass

    pipe = _pipe(assets, stall_timeout_s=0.1, stall_give_up_s=0.3)
    t0 = time.monotonic()
    with pytest.raises(SourceError, match="never delivered a frame"):
        list(pipe.run(Stuck()))  # a source that never delivered anything is a failed source, not an empty run
    assert time.monotonic() - t0 < 3 and pipe.stats.faults["stall"] == 3 and "giving up" in pipe.stats.error


def test_live_source_drops_oldest_when_inference_is_slow(assets):
    frames = [f for f in synthetic_frames(30, size=(320, 240), faces=((120, 120, 45),))]
    src = open_source(frames, live=True)
    pipe = _pipe(assets, queue_size=2)
    slow = pipe.backend.infer
    pipe.backend.infer = lambda b: (time.sleep(0.01), slow(b))[1]
    results = list(pipe.run(src))
    dropped = pipe.stats.events["dropped_frames"]
    assert dropped > 0 and len(results) + dropped == 30
    assert [r.frame for r in results] == sorted(r.frame for r in results)


def test_async_detection_folds_in_results(assets):
    pipe = _pipe(assets, detect_mode="async", detect_every=3)
    results = []
    for i, f in enumerate(assets["frames"][:20]):
        results.append(pipe.process(Frame(i, f, 0.0)))
        if pipe._worker is not None and pipe._worker.busy:
            pipe._worker.wait()
    pipe.close()
    assert not results[0].faces and results[1].detected and results[1].faces
    assert sum(1 for r in results if r.faces) == 19 and len({f.track_id for r in results for f in r.faces}) == 1
    assert not pipe.stats.faults  # background and in-line detection never share an OpenCV cascade


def test_pixel_changing_override_is_refused(assets):
    with pytest.raises(ConfigError, match="margin"):
        _pipe(assets, margin=0.4)
    with pytest.raises(ConfigError, match="unknown option"):
        _pipe(assets, detect_evry=3)
    assert _pipe(assets, margin=0.2).policy.margin == 0.2  # same value as the model: fine


def test_jsonl_schema_and_cli(assets, tmp_path):
    out, video = tmp_path / "res.jsonl", tmp_path / "ann.avi"
    cmd = [sys.executable, "-m", "fer_edge.cli", "run", "--model", str(assets["model"]), "--source",
           str(assets["video"]), "--out", str(out), "--video-out", str(video), "--detect-every", "4",
           "--max-frames", "25", "--threads", "1", "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "FPS end to end" in proc.stdout and "faults: none" in proc.stdout
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 25 and all(validate_line(x) == [] for x in lines)
    assert lines[0]["schema"] == SCHEMA and lines[0]["faces"][0]["track_id"] == 1
    assert set(lines[0]["latency_ms"]) == {"capture", "detect", "preprocess", "infer", "post"}
    summary = json.loads((tmp_path / "res.jsonl.summary.json").read_text())
    assert summary["frames"] == 25 and len(summary["labels"]) == len(lines[0]["faces"][0]["probs"])
    assert video.is_file() and video.stat().st_size > 0
    assert validate_line({"schema": "x", "faces": [{"bbox": [1, 2]}]})  # the validator can fail


def test_cli_bad_model_and_source_are_one_line_errors(assets, tmp_path):
    base = [sys.executable, "-m", "fer_edge.cli", "run", "--out", str(tmp_path / "o.jsonl")]
    p = subprocess.run(base + ["--model", str(tmp_path / "none.onnx"), "--source", str(assets["video"])],
                       capture_output=True, text=True, timeout=60, cwd=REPO)
    assert p.returncode == 1 and "model file not found" in p.stderr and "Traceback" not in p.stderr
    p = subprocess.run(base + ["--model", str(assets["model"]), "--source", str(tmp_path / "nope.mp4")],
                       capture_output=True, text=True, timeout=60, cwd=REPO)
    assert p.returncode == 1 and "no such video file" in p.stderr and "Traceback" not in p.stderr


def test_sigterm_flushes_and_exits_zero(assets, tmp_path):
    """A live source that never ends; SIGTERM must leave a complete JSONL and exit 0."""
    script = tmp_path / "live.py"
    script.write_text(
        "import sys, itertools, numpy as np\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from runtime_fixtures import synthetic_frames\n"
        "import fer_edge.runtime.sources as s\n"
        "frames = synthetic_frames(2, size=(320, 240), faces=((120, 120, 45),))\n"
        "s.open_source = lambda *a, **k: s.IterableSource(itertools.cycle(frames), live=True)\n"
        "import fer_edge.runtime.pipeline as p; p.open_source = s.open_source\n"
        "from fer_edge.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n")
    out = tmp_path / "live.jsonl"
    proc = subprocess.Popen([sys.executable, str(script), "run", "--model", str(assets["model"]), "--source",
                             "live", "--out", str(out), "--threads", "1", "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(p.stat().st_size for p in tmp_path.glob(".live.jsonl.*")):
        time.sleep(0.1)  # lines are flushed every 50 frames: once there are some, the loop is running
    proc.terminate()
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    lines = out.read_text().splitlines()
    assert len(lines) > 0 and all(validate_line(json.loads(x)) == [] for x in lines)
    assert json.loads((tmp_path / "live.jsonl.summary.json").read_text())["interrupted"] is True


def test_runtime_never_imports_torch(assets, tmp_path):
    code = (
        "import sys\n"
        "from fer_edge.cli import main\n"
        f"rc = main(['run', '--model', {str(assets['model'])!r}, '--source', {str(assets['video'])!r},"
        f" '--out', {str(tmp_path / 'r.jsonl')!r}, '--no-progress', '--max-frames', '10'])\n"
        "assert rc == 0\n"
        "bad = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))\n"
        "print('LEAKED', bad)\n"
        "sys.exit(1 if bad else 0)\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_runtime_package_imports_no_other_stage():
    """The runtime modules themselves import no train/export/calibration code (the CLI's config loader may)."""
    code = ("import sys\n"
            "import fer_edge.runtime.pipeline, fer_edge.runtime.backends.onnxruntime, fer_edge.runtime.detect\n"
            "bad = sorted(m for m in sys.modules if m.startswith(('torch', 'fer_edge.train', 'fer_edge.export',"
            " 'fer_edge.calibration')))\n"
            "print(bad); sys.exit(1 if bad else 0)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_runtime_config_defaults_load():
    cfg = RuntimeConfig()
    assert cfg.detect_every == 5 and cfg.drop_policy == "auto" and cfg.detect_mode == "auto"


def test_image_folder_with_a_corrupt_file(assets, tmp_path):
    import cv2

    for i, f in enumerate(assets["frames"][:2]):
        cv2.imwrite(str(tmp_path / f"f{i}.png"), f)
    (tmp_path / "f9.png").write_bytes(b"\x89PNG truncated")
    (tmp_path / "notes.txt").write_text("not an image")
    pipe = _pipe(assets)
    results = list(pipe.run(str(tmp_path)))
    assert [r.fault for r in results] == [None, None, "decode_error"] and len(results[0].faces) == 1
    (tmp_path / "sub").mkdir()
    with pytest.raises(SourceError, match="no images"):
        open_source(str(tmp_path / "sub"))


def test_source_kinds_and_gstreamer_without_support():
    import cv2

    from fer_edge.runtime.sources import csi_pipeline, describe_source

    assert describe_source("0") == "camera" and describe_source(2) == "camera"
    assert describe_source("rtsp://10.0.0.5/stream") == "url"
    assert describe_source(csi_pipeline()) == "gstreamer" and "nvarguscamerasrc" in csi_pipeline()
    if "GStreamer:                   YES" not in cv2.getBuildInformation():
        with pytest.raises(SourceError, match="without GStreamer"):
            open_source("videotestsrc ! appsink")
