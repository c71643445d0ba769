"""What this machine offers fer-edge: versions, ONNX Runtime providers, CPU and GPU.

``fer-edge info`` prints it and ``fer-edge bench`` records it beside every measurement. Imports torch
only when it is installed, and then only to name the CUDA device; never imports a stage.
"""
from __future__ import annotations

import importlib
import os
import platform
import sys
from typing import Any, Dict, Optional


def _version(module: str) -> Optional[str]:
    try:
        mod = importlib.import_module(module)
    except Exception:  # noqa: BLE001 - any import failure means "not usable here"
        return None
    return str(getattr(mod, "__version__", "unknown"))


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def collect() -> Dict[str, Any]:
    from fer_edge import __version__

    info: Dict[str, Any] = {
        "fer_edge": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": {"model": _cpu_model(), "cores": os.cpu_count(), "machine": platform.machine()},
        "numpy": _version("numpy"),
        "opencv": _version("cv2"),
        "onnx": _version("onnx"),
        "onnxruntime": _version("onnxruntime"),
        "onnxruntime_providers": [],
        "torch": None,
        "cuda_device": None,
        "tensorrt": _version("tensorrt"),
        "pycuda": None,
    }
    if info["onnxruntime"]:
        import onnxruntime as ort

        info["onnxruntime_providers"] = list(ort.get_available_providers())
    if importlib.util.find_spec("torch") is not None:
        info["torch"] = _version("torch")
        try:
            import torch

            if torch.cuda.is_available():
                info["cuda_device"] = torch.cuda.get_device_name(0)
        except Exception:  # noqa: BLE001
            pass
    try:
        import pycuda.driver as cuda

        info["pycuda"] = _version("pycuda")
        cuda.init()
        if cuda.Device.count() and info["cuda_device"] is None:
            info["cuda_device"] = cuda.Device(0).name()
    except Exception:  # noqa: BLE001 - absent or no driver
        pass
    return info
