"""Shared fixtures. Tests build their own tiny data in tmp_path: nothing is downloaded or committed."""
from __future__ import annotations

import os

import pytest

# Keep the suite within 2 cores and deterministic.
os.environ.setdefault("OMP_NUM_THREADS", "2")

# Fuzzing: random examples on a developer's machine (new inputs every run find new bugs), a fixed
# derandomized set in CI (a submission must not fail on a bug it did not touch; what a random run
# finds is pinned with @example and fixed). FER_EDGE_FUZZ_SCALE scales the example counts.
try:
    from hypothesis import settings as _hyp_settings

    _hyp_settings.register_profile("ci", derandomize=True, database=None)
    if os.environ.get("CI"):
        _hyp_settings.load_profile("ci")
except ImportError:  # pragma: no cover - hypothesis is part of the test extra
    pass


@pytest.fixture(autouse=True)
def _seed():
    import random

    import numpy as np

    random.seed(0)
    np.random.seed(0)
    yield


@pytest.fixture(autouse=True, scope="session")
def _faces_cache(tmp_path_factory):
    """Keep the shared footage cache (calibrate/eval --detect) out of the repo during tests."""
    os.environ["FER_EDGE_FACES_CACHE"] = str(tmp_path_factory.mktemp("faces-cache"))
    yield


# ONNX models for the TensorRT build tests (fake TensorRT): an FP32 one and a symmetric Q/DQ INT8 one.
@pytest.fixture
def fp32(tmp_path):
    from fakes.models import make_model

    return make_model(tmp_path / "model.onnx")


@pytest.fixture
def qdq(tmp_path):
    from fakes.models import make_model

    return make_model(tmp_path / "model.int8.onnx", qdq=True)


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """A tiny FP32 model, calibrated once per module (tests/calibration_fixtures.py)."""
    from calibration_fixtures import plain_world

    return plain_world(tmp_path_factory.mktemp("calib_plain"))


@pytest.fixture(scope="module")
def sensitive(tmp_path_factory):
    """A tiny FP32 model whose INT8 collapses until the gate keeps its head in float."""
    from calibration_fixtures import _world

    root = tmp_path_factory.mktemp("calib_sensitive")
    return root, _world(root, sensitive=True)
