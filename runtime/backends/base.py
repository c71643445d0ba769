"""The one inference interface every backend (ONNX Runtime, TensorRT) implements.

The runtime's pipeline, evaluation and benchmarks talk to ``Backend`` only, so pre- and
post-processing are identical whichever engine runs the network.
"""
from __future__ import annotations

from typing import Any, Dict, Protocol, runtime_checkable

import numpy as np

from fer_edge.runtime.contract import Contract

#: Keys under which export stores the contract in ONNX ``metadata_props`` (values are strings).
META_CONTRACT = "fer_edge.contract"            # JSON: {"labels": [...], "preprocess": {...}, "crop": {...}}
META_PRODUCER_VERSION = "fer_edge.producer_version"
META_CHECKPOINT_SHA256 = "fer_edge.checkpoint_sha256"
META_PRECISION = "fer_edge.precision"          # "fp32" or "int8"
INPUT_NAME = "input"
OUTPUT_LOGITS = "logits"
OUTPUT_PROBS = "probs"


@runtime_checkable
class Backend(Protocol):
    """``infer(batch NxCxHxW float32) -> probs NxK float32``; ``contract`` says how to feed it."""

    name: str
    contract: Contract

    def infer(self, batch: np.ndarray) -> np.ndarray: ...

    def info(self) -> Dict[str, Any]: ...
