"""Inference backends behind one interface, and :func:`open_backend`, the factory that picks one.

Backends are imported lazily by module path so a machine without TensorRT (or without ONNX
Runtime) can still open the other, and ``import fer_edge.runtime`` pulls in neither.
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
import os
from pathlib import Path
from typing import Any, Union

from fer_edge.runtime.backends.base import Backend
from fer_edge.runtime.errors import BackendUnavailable, ConfigError, ModelError

log = logging.getLogger(__name__)

BACKENDS = ("auto", "tensorrt", "onnxruntime")
#: Where each backend class lives; imported only when chosen.
_IMPL = {
    "onnxruntime": ("fer_edge.runtime.backends.onnxruntime", "OnnxRuntimeBackend"),
    "tensorrt": ("fer_edge.runtime.backends.tensorrt", "TensorRTBackend"),
}


def tensorrt_available() -> bool:
    """True when the ``tensorrt`` Python package is importable here (pycuda is checked by the backend)."""
    return importlib.util.find_spec("tensorrt") is not None


def _backend_class(name: str):
    module, cls = _IMPL[name]
    try:
        return getattr(importlib.import_module(module), cls)
    except ImportError as exc:
        what = "tensorrt and pycuda (JetPack ships TensorRT; `pip install fer-edge[jetson]`)" \
            if name == "tensorrt" else "onnxruntime (`pip install fer-edge[runtime]`)"
        raise BackendUnavailable(f"the {name} backend cannot be imported ({exc}); install {what}") from exc


def _call_from_path(cls, path: Path, kw: dict):
    """Pass only the keyword options this backend's ``from_path`` accepts (e.g. ``threads`` is ORT-only)."""
    try:
        params = inspect.signature(cls.from_path).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return cls.from_path(path, **kw)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return cls.from_path(path, **kw)
    accepted = {k: v for k, v in kw.items() if k in params}
    dropped = sorted(set(kw) - set(accepted))
    if dropped:
        log.debug("%s.from_path ignores %s", cls.__name__, dropped)
    return cls.from_path(path, **accepted)


def resolve_backend(path: Union[str, os.PathLike], backend: str = "auto") -> str:
    """Which backend ``open_backend`` would use for ``path``; raises with what to do when none fits."""
    if backend not in BACKENDS:
        raise ConfigError(f"runtime.backend: {backend!r} is not one of {list(BACKENDS)}")
    # Imported here: runtime.model imports backends.base, so a top-level import made
    # `import fer_edge.runtime.model` fail when it was the first runtime module imported.
    from fer_edge.runtime.model import model_format

    fmt = model_format(path)
    if fmt == "engine":
        if backend == "onnxruntime":
            raise ModelError(f"{path}: a TensorRT engine cannot run on ONNX Runtime; give the .onnx model "
                             "it was built from, or use --backend tensorrt")
        if not tensorrt_available():
            raise BackendUnavailable(f"{path}: is a TensorRT engine but the tensorrt package is not "
                                     "installed here; run it on the device it was built on (JetPack ships "
                                     "TensorRT) or run the .onnx model with --backend onnxruntime")
        return "tensorrt"
    if backend == "tensorrt":
        raise ModelError(f"{path}: --backend tensorrt needs an engine; build one on the device with "
                         f"`fer-edge build --model {path}` and run the .engine it writes")
    return "onnxruntime"


def open_backend(path: Union[str, os.PathLike], backend: str = "auto", **kw: Any) -> Backend:
    """Open ``path`` with the named backend (``auto``: TensorRT for engines, else ONNX Runtime).

    Keyword options (``providers``, ``threads`` …) go to the chosen backend's ``from_path`` when it
    takes them. Missing or corrupt models raise :class:`ModelError`, a backend that cannot run here
    :class:`BackendUnavailable`.
    """
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"{p}: model file not found" + ("" if p.parent.is_dir() else
                                                          f" (folder {p.parent} does not exist)"))
    name = resolve_backend(p, backend)
    cls = _backend_class(name)
    log.info("backend: %s (%s) for %s", name, "chosen" if backend == name else "auto", p.name)
    return _call_from_path(cls, p, kw)


__all__ = ["Backend", "BACKENDS", "open_backend", "resolve_backend", "tensorrt_available"]
