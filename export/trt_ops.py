"""Which ONNX operators TensorRT runs — checked at export, not discovered on the device.

A model that exports fine but holds an operator TensorRT's ONNX parser rejects only fails hours
later on the car's computer. The allow-list below is the subset of the TensorRT 8.6-10.x ONNX
operator support matrix (onnx-tensorrt ``docs/operators.md``) that a fer-edge CNN can plausibly
produce, plus QuantizeLinear/DequantizeLinear for the INT8 model. It is deliberately short: an
operator missing here is a reason to look, not proof TensorRT cannot run it; extend the list (with
the support-matrix line as the reason) rather than disabling the check.
"""
from __future__ import annotations

from typing import Dict, FrozenSet, Iterable, List, Tuple

import onnx

from fer_edge.runtime.errors import ModelError

TRT_ALLOWED_OPS: FrozenSet[str] = frozenset({
    # convolution / linear
    "Conv", "ConvTranspose", "Gemm", "MatMul",
    # normalisation (BatchNorm is folded on export; kept for unfused graphs)
    "BatchNormalization", "InstanceNormalization", "LayerNormalization",
    # activations
    "Relu", "Clip", "LeakyRelu", "PRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Elu", "Selu",
    "Softplus", "Softmax", "LogSoftmax", "Erf", "Gelu",
    # pooling
    "GlobalAveragePool", "GlobalMaxPool", "AveragePool", "MaxPool", "ReduceMean", "ReduceMax", "ReduceSum",
    # elementwise
    "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Exp", "Log", "Abs", "Neg", "Max", "Min", "Reciprocal",
    # shape
    "Flatten", "Reshape", "Transpose", "Concat", "Split", "Slice", "Squeeze", "Unsqueeze", "Shape", "Gather",
    "Identity", "Constant", "Pad", "Resize", "Cast",
    # explicit quantization
    "QuantizeLinear", "DequantizeLinear",
})


def unsupported_nodes(model: onnx.ModelProto, allowed: Iterable[str] = TRT_ALLOWED_OPS) -> List[Tuple[str, str]]:
    """(node name, op type) of every node outside the allow-list or outside the default ONNX domain."""
    allowed_set = set(allowed)
    bad = []
    for i, node in enumerate(model.graph.node):
        custom_domain = node.domain not in ("", "ai.onnx")
        if custom_domain or node.op_type not in allowed_set:
            op = f"{node.domain}::{node.op_type}" if custom_domain else node.op_type
            bad.append((node.name or f"#{i}", op))
    return bad


def check_trt_ops(model: onnx.ModelProto, where: str = "model") -> Dict[str, int]:
    """Raise :class:`ModelError` naming every node TensorRT cannot run; return the op histogram."""
    bad = unsupported_nodes(model)
    if bad:
        shown = ", ".join(f"{name} ({op})" for name, op in bad[:20])
        more = f" and {len(bad) - 20} more" if len(bad) > 20 else ""
        raise ModelError(f"{where}: {len(bad)} node(s) use operators not on the TensorRT allow-list: {shown}{more}. "
                         "Replace those layers in the model (see export/trt_ops.py for the list) or extend the "
                         "list if the TensorRT ONNX support matrix covers them")
    hist: Dict[str, int] = {}
    for node in model.graph.node:
        hist[node.op_type] = hist.get(node.op_type, 0) + 1
    return hist
