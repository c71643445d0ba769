"""Shared setup for the TensorRT tests: fake modules installed the way a real import would see them."""
from __future__ import annotations

import sys
from typing import Any

from .pycuda_fake import FakeGPU, install
from .tensorrt_fake import make_tensorrt


def install_fakes(monkeypatch: Any, gen: str, gpu: FakeGPU = None, autoprimaryctx: bool = True,
                  **trt_options: Any) -> Any:
    """Fake ``tensorrt`` (generation ``gen``) and ``pycuda`` in ``sys.modules``; returns the trt fake."""
    gpu = gpu or FakeGPU()
    trt = make_tensorrt(gen, gpu=gpu, **trt_options)
    trt.gpu = gpu
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    install(monkeypatch, gpu, autoprimaryctx=autoprimaryctx)
    return trt


def called(trt: Any, what: str) -> list:
    """Details of every recorded call named ``what`` (in order)."""
    return [detail for name, detail in trt.calls if name == what]
