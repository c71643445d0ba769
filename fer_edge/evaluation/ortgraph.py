"""What ONNX Runtime actually runs: op counts of the *optimised* graph, and the INT8 activation type.

An INT8 model that is slower than its FP32 parent is nearly always explained by its optimised
graph: Q/DQ pairs ORT could not fold into ``QLinearConv``, convolutions left in float, layout
``Transpose``s that were not cancelled, or int8 (S8S8) activations where ORT's fast x86 kernels
want uint8 (U8S8). The benchmark records this next to the timings so a missed goal explains itself.
"""
from __future__ import annotations

import collections
import logging
import tempfile
from pathlib import Path
from typing import Any, Dict, Optional, Union

log = logging.getLogger(__name__)

QUANT_OPS = ("QLinearConv", "ConvInteger", "QLinearMatMul", "MatMulInteger", "QGemm", "QLinearAdd")
FLOAT_OPS = ("Conv", "Gemm", "MatMul", "FusedConv", "FusedGemm", "FusedMatMul", "NchwcConv")
OVERHEAD_OPS = ("QuantizeLinear", "DequantizeLinear", "Transpose", "Clip", "ReorderInput", "ReorderOutput")


def _activation_type(model: Any) -> Optional[str]:
    """``uint8``/``int8`` from the zero point of the first QuantizeLinear (what activations are stored as)."""
    import onnx

    inits = {i.name: i for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear" and len(node.input) > 2 and node.input[2] in inits:
            return onnx.helper.tensor_dtype_to_np_dtype(inits[node.input[2]].data_type).name
    return None


def optimised_ops(path: Union[str, Path]) -> Dict[str, Any]:
    """Op counts of ``path`` after ONNX Runtime's CPU graph optimisations, grouped for a reader."""
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="fer-edge-ortgraph-") as tmp:
        out = Path(tmp) / "optimised.onnx"
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.optimized_model_filepath = str(out)
        so.log_severity_level = 3
        ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        opt = onnx.load(str(out))
    counts = collections.Counter(n.op_type for n in opt.graph.node)
    return {
        "ops": dict(sorted(counts.items(), key=lambda kv: -kv[1])),
        "quantized_compute": sum(counts[o] for o in QUANT_OPS),
        "float_compute": sum(counts[o] for o in FLOAT_OPS),
        "overhead": {o: counts[o] for o in OVERHEAD_OPS if counts[o]},
        "activation_type": _activation_type(onnx.load(str(path))),
    }


def explain_int8(path: Union[str, Path]) -> Dict[str, Any]:
    """:func:`optimised_ops` plus sentences on what makes this INT8 graph slow on ONNX Runtime's CPU path."""
    try:
        info = optimised_ops(path)
    except Exception as exc:  # noqa: BLE001 - a diagnosis must never fail the benchmark
        return {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    notes = []
    if info["activation_type"] == "int8":
        notes.append("activations are int8 (S8S8): ONNX Runtime's fast x86 kernels are U8S8 — quantize "
                     "activations as uint8 for a CPU target (keep symmetric int8 for TensorRT)")
    if info["float_compute"]:
        notes.append(f"{info['float_compute']} Conv/Gemm node(s) still run in float after optimisation")
    qdq = info["overhead"].get("QuantizeLinear", 0) + info["overhead"].get("DequantizeLinear", 0)
    if qdq > 4:
        notes.append(f"{qdq} Quantize/DequantizeLinear node(s) were not folded into quantized ops")
    if info["overhead"].get("Transpose", 0) > 2:
        notes.append(f"{info['overhead']['Transpose']} layout Transpose(s) remain between quantized ops")
    info["notes"] = notes
    return info
