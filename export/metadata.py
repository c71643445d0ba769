"""The contract inside the ONNX file: ``metadata_props`` written by export and calibration.

The runtime reads the labels and preprocessing from the model itself
(:func:`fer_edge.runtime.model.describe_onnx`), so users never copy a mean/std by hand. Keys are
the constants in :mod:`fer_edge.runtime.backends.base`, values are strings (ONNX allows no other).
This module imports ``onnx`` only, never torch, so INT8 calibration can reuse it.
"""
from __future__ import annotations

import json
from typing import Dict, Mapping

import onnx

from fer_edge.runtime.backends.base import META_CHECKPOINT_SHA256, META_CONTRACT, META_PRECISION, META_PRODUCER_VERSION
from fer_edge.runtime.contract import Contract
from fer_edge.runtime.manifest import producer_version


def contract_metadata(contract: Contract, checkpoint_sha256: str, precision: str = "fp32") -> Dict[str, str]:
    """The ``metadata_props`` of a fer-edge ONNX model: its contract (labels, preprocess, crop) as JSON."""
    body = contract.to_dict()
    return {
        META_CONTRACT: json.dumps(body, sort_keys=True),
        META_PRODUCER_VERSION: producer_version(),
        META_CHECKPOINT_SHA256: checkpoint_sha256,
        META_PRECISION: precision,
    }


def set_metadata(model: onnx.ModelProto, values: Mapping[str, str]) -> onnx.ModelProto:
    """Replace (not append) each key in ``model.metadata_props``; other keys are kept."""
    keep = [(p.key, p.value) for p in model.metadata_props if p.key not in values]
    del model.metadata_props[:]
    for key, value in keep + sorted(values.items()):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, str(value)
    return model


def get_metadata(model: onnx.ModelProto) -> Dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}
