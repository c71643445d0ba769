"""The CPU INT8 artefact (``model.int8-cpu.onnx``): ONNX Runtime's fast x86 layout from the same ranges.

TensorRT wants symmetric int8 activations (zero-point 0) and explicit ReLUs; ONNX Runtime's x86 kernels
want uint8 activations and int8 per-channel weights (U8S8) in complete DQ→Conv→Q groups that its level-2
QDQ transformers fuse into ``QLinearConv``/``QGemm``. One layout cannot serve both, so calibration writes
both from ONE set of measured ranges (ORT's range cache), judged by ONE gate; each keeps in float only the
layers it needs itself (a float layer on the CPU is a DQ→float→Q round trip that eats the INT8 speed-up).

The only change to the ranges: a tensor produced by a ReLU gets its lower bound clamped to 0 (it cannot
be negative; with min-max ranges it already is). That makes its uint8 zero-point 0, which is what lets
the quantizer fold the ReLU into the Q/DQ pair exactly (symmetric methods — entropy, percentile — would
otherwise leave a negative half in the range and the folded ReLU would let negatives through).
"""
from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Sequence, Union

import numpy as np
import onnx

log = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


def cpu_ranges(pre_path: PathLike, ranges_cache: PathLike, out: PathLike) -> Path:
    """A copy of ``ranges_cache`` with every ReLU output's lower bound clamped to 0 (see the module doc)."""
    from onnxruntime.quantization.calibrate import TensorData, TensorsData, load_tensors_data, save_tensors_data

    model = onnx.load(str(pre_path), load_external_data=False)
    relu_out = {n.output[0] for n in model.graph.node if n.op_type == "Relu"}
    data = load_tensors_data(ranges_cache)
    changed: Dict[str, Any] = {}
    for name, td in data.items():
        if name not in relu_out:
            changed[name] = td
            continue
        lo, hi = (np.asarray(v, np.float32) for v in td.range_value)
        changed[name] = TensorData(lowest=np.maximum(lo, np.float32(0)).astype(np.float32),
                                   highest=np.maximum(hi, np.float32(1e-8)).astype(np.float32))
    save_tensors_data(TensorsData(data.calibration_method, changed), out)
    return Path(out)


@dataclass
class CpuLayout:
    """What a CPU Q/DQ model holds, and every departure from U8 activations + S8 per-channel weights."""

    activations: int = 0
    weights: int = 0
    problems: List[str] = field(default_factory=list)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def inspect_cpu(model: onnx.ModelProto) -> CpuLayout:
    """Activation Q/DQ: scalar uint8 zero points; weight DQ: int8, zero-point 0, one scale per output channel."""
    from onnx import numpy_helper

    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    out = CpuLayout()
    for node in model.graph.node:
        if node.op_type not in QDQ_OPS:
            continue
        if len(node.input) < 3 or node.input[2] not in inits or node.input[1] not in inits:
            out.problems.append(f"{node.name}: scale/zero-point are not constants")
            continue
        scale, zp = inits[node.input[1]], inits[node.input[2]]
        src = node.input[0]
        if node.op_type == "DequantizeLinear" and src in inits:
            w = inits[src]
            if w.dtype == np.int32:  # int32 bias (scale = activation scale × weight scale): what QLinearConv takes
                continue
            out.weights += 1
            if w.dtype != np.int8 or zp.dtype != np.int8 or np.any(zp != 0):
                out.problems.append(f"{node.name}: weight {src!r} is {w.dtype} with zero-point {zp.ravel()[:3]}, "
                                    "expected int8 symmetric")
            elif w.ndim > 1 and np.asarray(scale).size not in (1, w.shape[0]):
                out.problems.append(f"{node.name}: weight {src!r} has {np.asarray(scale).size} scales for "
                                    f"{w.shape[0]} output channels")
        else:
            out.activations += 1
            if zp.dtype != np.uint8 or np.asarray(zp).size != 1 or np.asarray(scale).size != 1:
                out.problems.append(f"{node.name}: activation {src!r} is {zp.dtype} (size {np.asarray(zp).size}), "
                                    "expected a per-tensor uint8 zero-point")
    return out


def node_profile(path: PathLike) -> Dict[str, Any]:
    """What ONNX Runtime's CPU provider runs after its graph optimisations (the level the runtime uses).

    ``int8`` counts nodes in :data:`INT8_OPS`, ``float_compute`` Conv/Gemm/MatMul left in float and
    ``qdq`` the Quantize/DequantizeLinear nodes that were not fused (each pair is a float round trip).
    """
    from fer_edge.evaluation.ortgraph import optimised_ops

    ops = optimised_ops(path)["ops"]
    return summarise_ops(ops)


def summarise_ops(ops: Dict[str, int]) -> Dict[str, Any]:
    """Group an op-count table into int8 / float compute / unfused Q-DQ (the bench's node profile's groups)."""
    from fer_edge.evaluation.ortprofile import FLOAT_COMPUTE_OPS, INT8_OPS

    int8 = sum(v for k, v in ops.items() if k in INT8_OPS)
    flt = sum(v for k, v in ops.items() if k in FLOAT_COMPUTE_OPS)
    qdq = sum(v for k, v in ops.items() if k in QDQ_OPS)
    return {"nodes": int(sum(ops.values())), "int8": int(int8), "float_compute": int(flt), "qdq": int(qdq),
            "ops": dict(ops)}


def check_fused(profile: Dict[str, Any], excluded: Sequence[str], where: str) -> List[str]:
    """Sentences about compute left in float that the gate did not ask for (logged; the report shows them)."""
    notes = []
    if profile["float_compute"] > len(excluded):
        notes.append(f"{where}: {profile['float_compute']} Conv/Gemm node(s) run in float after ONNX Runtime's "
                     f"optimisations but only {len(excluded)} layer(s) were kept in float by the gate")
    return notes
