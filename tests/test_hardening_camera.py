"""Camera faults beyond tests/test_runtime_pipeline.py: frames that change size, network/GStreamer sources
that never open, and a server that accepts the connection but never sends a frame.

test_runtime_pipeline.py already covers a fake camera that raises, stalls, vanishes and never opens
(with its backoff), bad frame types, and SIGTERM; these cases add what a real deployment meets next.
"""
from __future__ import annotations

import json
import socket
import threading
import time

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from runtime_fixtures import draw_face, make_onnx

from fer_edge.runtime.errors import SourceError
from fer_edge.runtime.pipeline import Pipeline
from fer_edge.runtime.results import VideoSink, validate_line
from fer_edge.runtime.sources import Frame, IterableSource, open_source

HAS_GSTREAMER = "GStreamer:                   YES" in cv2.getBuildInformation()


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_onnx(tmp_path_factory.mktemp("cam") / "model.onnx")


def _frame(w: int, h: int, face: bool = True, channels: int = 3) -> np.ndarray:
    img = np.full((h, w, 3), 90, np.uint8)
    if face:
        draw_face(img, w // 2, h // 2, max(8, min(w, h) // 4))
    if channels == 1:
        return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    if channels == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGR2BGRA)
    return img


def test_frames_that_change_size_mid_stream_all_get_a_result(model, tmp_path):
    """A camera renegotiating resolution (or a USB hub swapping cameras): tracks from the old size
    must not crop outside the new frame, and every frame still yields exactly one result."""
    sizes = [(320, 240, 3), (640, 480, 3), (160, 120, 1), (320, 240, 4), (12, 10, 3), (480, 640, 3),
             (320, 240, 3), (64, 48, 3), (640, 360, 1), (320, 240, 3)] * 2
    frames = [_frame(w, h, channels=c) for w, h, c in sizes]
    pipe = Pipeline.from_model(model, threads=1, detect_every=3, stall_timeout_s=0.5)
    sink = VideoSink(tmp_path / "annotated.avi", fps=10)
    results = []
    for r in pipe.run(IterableSource(frames)):
        results.append(r)
        sink.write(r.image, r.faces)
    written = sink.close()
    assert [r.frame for r in results] == list(range(len(frames)))
    tiny = [i for i, (w, h, _) in enumerate(sizes) if min(w, h) < 16]
    assert all(results[i].fault == "bad_shape" for i in tiny)
    for r, (w, h, _) in zip(results, sizes):
        for f in r.faces:  # no box ever points outside the frame it is reported for
            x, y, bw, bh = f.bbox
            assert 0 <= x and 0 <= y and x + bw <= w and y + bh <= h, (f.bbox, w, h)
    assert sum(1 for r in results if r.faces) >= len(frames) // 2
    cap = cv2.VideoCapture(str(written))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    assert n == sink.frames >= len(frames) - len(tiny)


@pytest.mark.parametrize("url", ["rtsp://127.0.0.1:9/stream", "http://127.0.0.1:9/video.mjpg"])
def test_network_source_that_refuses_gives_up_after_bounded_retries(model, url):
    t0 = time.monotonic()
    with pytest.raises(SourceError, match=r"cannot open after 2 retries — check the device/URL"):
        list(Pipeline.from_model(model, threads=1, reconnect_retries=2, reconnect_backoff_s=0.05).run(url))
    assert time.monotonic() - t0 < 20


def test_gstreamer_source_that_cannot_open_is_a_clear_error():
    spec = "nosuchelement_fer_edge ! videoconvert ! appsink"
    if not HAS_GSTREAMER:
        with pytest.raises(SourceError, match="built without GStreamer.*JetPack"):
            open_source(spec, retries=2, backoff_s=0.01)
        return
    src = open_source(spec, retries=2, backoff_s=0.01)  # pragma: no cover - Jetson / system OpenCV
    with pytest.raises(SourceError, match="after 2 retries.*GStreamer"):  # pragma: no cover
        list(src.frames())


@pytest.fixture()
def silent_server():
    """A TCP server that accepts connections and never says a word (a hung RTSP camera)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.2)
    conns, stop = [], threading.Event()

    def accept():
        while not stop.is_set():
            try:
                conns.append(srv.accept()[0])
            except OSError:
                pass

    threading.Thread(target=accept, daemon=True).start()
    yield f"rtsp://127.0.0.1:{srv.getsockname()[1]}/stream"
    stop.set()
    for c in conns:
        c.close()
    srv.close()


def test_source_that_connects_but_never_sends_is_a_source_error_in_bounded_time(model, silent_server):
    pipe = Pipeline.from_model(model, threads=1, stall_timeout_s=0.2, stall_give_up_s=1.0, reconnect_retries=1)
    t0 = time.monotonic()
    with pytest.raises(SourceError, match="never delivered a frame"):
        list(pipe.run(silent_server))
    assert time.monotonic() - t0 < 5
    assert pipe.stats.error and "giving up" in pipe.stats.error and silent_server in pipe.stats.error


frame_shapes = st.one_of(
    st.tuples(st.integers(0, 90), st.integers(0, 90)),
    st.tuples(st.integers(0, 90), st.integers(0, 90), st.sampled_from([0, 1, 2, 3, 4, 5])),
    st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 3), st.integers(1, 3)),
)


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(shape=frame_shapes, dtype=st.sampled_from([np.uint8, np.uint16, np.float32, np.float64, np.int8, bool]),
       fill=st.sampled_from(["zeros", "noise", "face", "nan"]), fault=st.sampled_from([None, None, "read_error"]))
def test_any_frame_the_camera_hands_over_gives_one_result_never_an_exception(model_pipe, shape, dtype, fill,
                                                                           fault):
    rng = np.random.default_rng(0)
    if fill == "face" and len(shape) == 3 and shape[2] == 3 and min(shape[:2]) >= 32:
        img = _frame(shape[1], shape[0]).astype(dtype)
    elif fill == "noise":
        img = (rng.random(shape) * 255).astype(dtype)
    else:
        img = np.zeros(shape, dtype)
        if fill == "nan" and img.dtype.kind == "f":
            img[...] = np.nan
    result = model_pipe.process(Frame(7, img, 0.1, 0.0, fault))
    assert result.frame == 7 and (result.fault is not None or img.dtype == np.uint8)
    assert validate_line(json.loads(result.to_json())) == []


@pytest.fixture(scope="module")
def model_pipe(model):
    return Pipeline.from_model(model, threads=1, detect_every=1)
