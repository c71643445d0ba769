"""ONNX Runtime backend: the CPU path everywhere, the CUDA provider when the wheel has it.

Reads the contract from the model itself (metadata + verified sidecar) so whoever opens a backend
feeds it exactly what it was trained on. ``infer`` always returns the model's ``probs`` output as
float32 ``NxK``; a model exported with a fixed batch of 1 is run one face at a time.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from fer_edge.runtime.backends.base import INPUT_NAME, OUTPUT_LOGITS, OUTPUT_PROBS
from fer_edge.runtime.contract import Contract
from fer_edge.runtime.errors import ModelError
from fer_edge.runtime.model import ModelInfo, cpu_int8_for, describe_onnx, open_session

log = logging.getLogger(__name__)

#: Providers tried in this order when the caller does not name them.
PREFERRED_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")


def default_providers() -> List[str]:
    import onnxruntime as ort

    available = set(ort.get_available_providers())
    return [p for p in PREFERRED_PROVIDERS if p in available] or ["CPUExecutionProvider"]


def _softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class OnnxRuntimeBackend:
    """:class:`~fer_edge.runtime.backends.base.Backend` over one ``onnxruntime.InferenceSession``."""

    name = "onnxruntime"

    def __init__(self, session: Any, model: ModelInfo, threads: int = 0):
        self.session = session
        self.model = model
        self.contract: Contract = model.contract
        self.threads = threads
        inp = session.get_inputs()[0]
        self.input_name = inp.name
        self.input_shape = list(inp.shape)
        outputs = [o.name for o in session.get_outputs()]
        if OUTPUT_PROBS in outputs:
            self.output_name, self._softmax = OUTPUT_PROBS, False
        elif OUTPUT_LOGITS in outputs:
            log.warning("%s: no %r output; applying softmax to %r", model.path, OUTPUT_PROBS, OUTPUT_LOGITS)
            self.output_name, self._softmax = OUTPUT_LOGITS, True
        else:
            raise ModelError(f"{model.path}: outputs {outputs} include neither {OUTPUT_PROBS!r} nor "
                             f"{OUTPUT_LOGITS!r}; re-export it with `fer-edge export`")
        if inp.name != INPUT_NAME:
            log.debug("%s: input is named %r (expected %r)", model.path, inp.name, INPUT_NAME)
        want = list(self.contract.preprocess.input_shape)
        got = [d if isinstance(d, int) else None for d in self.input_shape[1:]]
        if len(got) != 3 or any(g is not None and g != w for g, w in zip(got, want)):
            raise ModelError(f"{model.path}: input shape {self.input_shape} does not match its contract's "
                             f"preprocessing (N, {', '.join(map(str, want))}); re-export it")
        batch_dim = self.input_shape[0]
        self.fixed_batch: Optional[int] = batch_dim if isinstance(batch_dim, int) and batch_dim > 0 else None

    @classmethod
    def from_path(cls, path: Union[str, os.PathLike], providers: Optional[Sequence[str]] = None,
                  threads: int = 0, cpu_int8: bool = True) -> OnnxRuntimeBackend:
        """Open an ONNX model; ``threads`` = intra-op threads (0: ONNX Runtime's default).

        On the CPU provider a TensorRT Q/DQ model (``model.int8.onnx``) is replaced by the CPU INT8 layout
        calibrated with it (``model.int8-cpu.onnx``, U8 activations that ORT fuses into QLinearConv) when
        that file is present and its manifest names this model; ``cpu_int8=False`` runs the file as given.
        """
        import onnxruntime as ort

        p = Path(path)
        if not p.is_file():
            raise ModelError(f"{p}: model file not found")
        providers = list(providers) if providers else default_providers()
        alt = cpu_int8_for(p) if cpu_int8 and providers[0] == "CPUExecutionProvider" else None
        if alt is not None:
            log.info("onnxruntime: %s → %s (the CPU INT8 layout calibrated with it)", p.name, alt.name)
            p = alt
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.inter_op_num_threads = 1
        if threads and threads > 0:
            opts.intra_op_num_threads = int(threads)
        opts.log_severity_level = 3
        session = open_session(p, providers, opts)
        meta = dict(session.get_modelmeta().custom_metadata_map)
        backend = cls(session, describe_onnx(p, metadata=meta), threads=threads)
        log.info("onnxruntime: %s (%s, providers %s)", p.name, backend.model.precision,
                 ",".join(session.get_providers()))
        return backend

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """``NxCxHxW`` float32 → ``NxK`` float32 probabilities (an empty batch gives ``0xK``)."""
        x = np.ascontiguousarray(batch, dtype=np.float32)
        k = len(self.contract.labels)
        chw = tuple(self.contract.preprocess.input_shape)
        if x.ndim != 4 or tuple(x.shape[1:]) != chw:
            raise ValueError(f"batch shape {x.shape} is not Nx{'x'.join(map(str, chw))}")
        if x.shape[0] == 0:
            return np.zeros((0, k), dtype=np.float32)
        if self.fixed_batch is not None and x.shape[0] != self.fixed_batch:
            if self.fixed_batch != 1:
                raise ValueError(f"model has a fixed batch of {self.fixed_batch}, got {x.shape[0]}")
            out = np.concatenate([self._run(x[i:i + 1]) for i in range(x.shape[0])])
        else:
            out = self._run(x)
        return out

    def _run(self, x: np.ndarray) -> np.ndarray:
        y = self.session.run([self.output_name], {self.input_name: x})[0]
        y = np.asarray(y, dtype=np.float32).reshape(x.shape[0], -1)
        return _softmax(y) if self._softmax else y

    def info(self) -> Dict[str, Any]:
        import onnxruntime as ort

        return {
            "backend": self.name,
            "onnxruntime": ort.__version__,
            "providers": list(self.session.get_providers()),
            "precision": self.model.precision,
            "sha256": self.model.sha256,
            "path": str(self.model.path),
            "input_name": self.input_name,
            "input_shape": [d if isinstance(d, int) else str(d) for d in self.input_shape],
            "labels": list(self.contract.labels),
            "threads": self.threads,
            "manifest": self.model.manifest is not None,
        }
