"""Multiply-accumulates per image, counted from the ONNX graph itself.

Counting from the graph (not from the PyTorch module) means the FP32 ONNX, the Q/DQ INT8 ONNX and
a QOperator INT8 ONNX are counted by the same rule, so "achieved GMAC/s" is comparable across
paths. The batch dimension is pinned to 1 and ONNX shape inference fills in every tensor's shape.
Only the ops that carry the arithmetic are counted (Conv, Gemm, MatMul and their integer/QLinear
forms); element-wise ops, pooling and softmax are a rounding error for a CNN and are left out.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

from fer_edge.runtime.errors import ModelError

#: op type → (index of the data input, index of the weight input)
CONV_OPS = {"Conv": (0, 1), "ConvInteger": (0, 1), "QLinearConv": (0, 3)}
MATMUL_OPS = {"MatMul": (0, 1), "MatMulInteger": (0, 1), "QLinearMatMul": (0, 3)}
#: Gemm and ONNX Runtime's quantized QGemm (com.microsoft): shapes from A, B and transA/transB.
GEMM_OPS = {"Gemm": (0, 1), "QGemm": (0, 3)}


@dataclass
class MacCount:
    """MACs of one image, by op type, plus the nodes whose shapes could not be inferred."""

    total: int = 0
    by_op: Dict[str, int] = field(default_factory=dict)
    #: MACs in grouped/depthwise convolutions: little weight reuse, far from GEMM speed on any engine.
    grouped_conv: int = 0
    uncounted: List[str] = field(default_factory=list)

    @property
    def gmacs(self) -> float:
        return self.total / 1e9

    def to_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        d["gmacs"] = self.gmacs
        return d


def _prod(values: Sequence[int]) -> int:
    out = 1
    for v in values:
        out *= int(v)
    return out


def _pin_batch(model: Any) -> None:
    """Set every symbolic/unknown input dimension to 1 so shape inference yields numbers."""
    inits = {i.name for i in model.graph.initializer}
    for inp in model.graph.input:
        if inp.name in inits:
            continue
        for dim in inp.type.tensor_type.shape.dim:
            if not dim.HasField("dim_value") or dim.dim_value <= 0:
                dim.Clear()
                dim.dim_value = 1


def _shape_table(model: Any) -> Dict[str, List[int]]:
    shapes: Dict[str, List[int]] = {}
    for init in model.graph.initializer:
        shapes[init.name] = list(init.dims)
    for node in model.graph.node:  # Constant nodes hold weights in some exporters' graphs
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    shapes[node.output[0]] = list(attr.t.dims)
    for vi in list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output):
        dims = vi.type.tensor_type.shape.dim
        if vi.type.HasField("tensor_type") and all(d.HasField("dim_value") for d in dims):
            shapes.setdefault(vi.name, [d.dim_value for d in dims])
    return shapes


def _attr(node: Any, name: str, default: Any) -> Any:
    import onnx

    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _node_macs(node: Any, shapes: Dict[str, List[int]]) -> Optional[int]:
    out = shapes.get(node.output[0])
    if node.op_type in CONV_OPS:
        _, w_idx = CONV_OPS[node.op_type]
        w = shapes.get(node.input[w_idx]) if len(node.input) > w_idx else None
        if out is None or w is None or len(w) < 3:
            return None
        # every output element needs (C_in / group) * prod(kernel) MACs; w is [C_out, C_in/group, *k]
        return _prod(out) * _prod(w[1:])
    if node.op_type in GEMM_OPS:
        a_idx, b_idx = GEMM_OPS[node.op_type]
        a = shapes.get(node.input[a_idx])
        b = shapes.get(node.input[b_idx]) if len(node.input) > b_idx else None
        if a is None or b is None or len(a) != 2 or len(b) != 2:
            return None
        m, k = (a[1], a[0]) if _attr(node, "transA", 0) else (a[0], a[1])
        n = b[0] if _attr(node, "transB", 0) else b[1]
        return int(m) * int(n) * int(k)
    if node.op_type in MATMUL_OPS:
        a_idx, b_idx = MATMUL_OPS[node.op_type]
        a = shapes.get(node.input[a_idx])
        if out is None or a is None:
            return None
        # every output element is a dot product over A's last axis
        return _prod(out) * int(a[-1])
    return 0


def count_macs(model_or_path: Union[str, Path, Any]) -> MacCount:
    """MACs of one image through an ONNX model (path or ``onnx.ModelProto``), batch pinned to 1."""
    import onnx

    if isinstance(model_or_path, (str, Path)):
        try:
            model = onnx.load(str(model_or_path))
        except Exception as exc:  # noqa: BLE001 - onnx raises several unrelated types for bad files
            raise ModelError(f"{model_or_path}: not a readable ONNX model ({exc}); re-export it") from exc
    else:
        model = onnx.ModelProto()
        model.CopyFrom(model_or_path)
    _pin_batch(model)
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception as exc:  # noqa: BLE001 - best effort: unknown shapes are reported as uncounted
        raise ModelError(f"ONNX shape inference failed ({exc}); cannot count MACs") from exc
    shapes = _shape_table(model)
    result = MacCount()
    for node in model.graph.node:
        macs = _node_macs(node, shapes)
        if macs is None:
            result.uncounted.append(f"{node.op_type}:{node.name or node.output[0]}")
        elif macs:
            result.by_op[node.op_type] = result.by_op.get(node.op_type, 0) + macs
            result.total += macs
            if node.op_type in CONV_OPS and int(_attr(node, "group", 1)) > 1:
                result.grouped_conv += macs
    return result
