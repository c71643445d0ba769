"""Shared fixtures. Tests build their own tiny data in tmp_path: nothing is downloaded or committed."""
from __future__ import annotations

import os

import pytest

# Keep the suite within 2 cores and deterministic.
os.environ.setdefault("OMP_NUM_THREADS", "2")


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
