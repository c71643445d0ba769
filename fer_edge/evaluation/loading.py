"""Open any fer-edge artefact as a :class:`~fer_edge.runtime.backends.base.Backend`.

ONNX, INT8 ONNX and TensorRT engines go through the runtime's ``open_backend`` (the very code the
product runs); a ``.pt`` checkpoint is wrapped by :class:`TorchBackend` here, so evaluation and the
benchmark treat every artefact alike. torch is imported only when a checkpoint is opened.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Optional, Union

import numpy as np

from fer_edge.runtime.contract import Contract, PreprocessSpec
from fer_edge.runtime.errors import BackendUnavailable, ModelError

CHECKPOINT_SUFFIXES = (".pt", ".pth")
BACKENDS = ("auto", "torch", "onnxruntime", "tensorrt")


class TorchBackend:
    """Eager PyTorch FP32 inference of a checkpoint: the reference every exported path is judged by.

    Uses all cores by default (``torch.set_num_threads``), like ONNX Runtime does, so a speed-up of
    ORT over eager is not an artefact of thread counts.
    """

    name = "torch"

    def __init__(self, path: Union[str, Path], threads: Optional[int] = None):
        try:
            import torch
        except ImportError as exc:
            raise BackendUnavailable("evaluating a .pt checkpoint needs torch; `pip install fer-edge[train]` "
                                     "or evaluate the exported .onnx instead") from exc
        from fer_edge.train.checkpoint import load_checkpoint

        self._torch = torch
        self.threads = int(threads or os.cpu_count() or 1)
        torch.set_num_threads(self.threads)
        self.path = Path(path)
        self.net, self.manifest = load_checkpoint(self.path)
        self.contract = Contract(labels=tuple(self.manifest.labels),
                                 preprocess=PreprocessSpec.from_dict(self.manifest.preprocess),
                                 crop=self.manifest.crop)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            logits = self.net(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)))
            return torch.softmax(logits, dim=1).numpy()

    def info(self) -> Dict[str, Any]:
        return {"backend": self.name, "torch": self._torch.__version__, "threads": self.threads,
                "path": str(self.path), "precision": "fp32", "sha256": self.manifest.sha256,
                "backbone": self.net.spec.backbone}


def is_checkpoint(path: Union[str, Path]) -> bool:
    return Path(path).suffix.lower() in CHECKPOINT_SUFFIXES


def open_model(path: Union[str, Path], backend: str = "auto", threads: Optional[int] = None) -> Any:
    """A Backend for ``path``: torch for checkpoints, the runtime's ``open_backend`` for everything else.

    ``threads`` sets torch's threads / ORT's intra-op threads (``None``: all cores for torch, ORT's
    own default — one per physical core — for ORT).
    """
    path = Path(path)
    if backend not in BACKENDS:
        raise ModelError(f"backend {backend!r} is not one of {list(BACKENDS)}")
    if not path.is_file():
        raise ModelError(f"{path}: model file not found")
    if is_checkpoint(path):
        if backend not in ("auto", "torch"):
            raise ModelError(f"{path}: a checkpoint runs on torch only; export it to ONNX for {backend}")
        return TorchBackend(path, threads=threads)
    if backend == "torch":
        raise ModelError(f"{path}: the torch backend reads .pt checkpoints only")
    try:
        from fer_edge.runtime.backends import open_backend
    except ImportError as exc:
        raise BackendUnavailable("fer_edge.runtime.backends.open_backend is not available in this "
                                 "installation; update fer-edge") from exc
    return open_backend(path, backend=backend, threads=int(threads or 0))
