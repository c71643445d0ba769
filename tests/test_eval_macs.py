"""MAC counting from the ONNX graph against a hand-computed small network."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from test_eval_support import shared_artefacts

from fer_edge.evaluation.macs import count_macs
from fer_edge.runtime.errors import ModelError


@pytest.fixture(scope="session")
def artefacts(tmp_path_factory):
    return shared_artefacts(tmp_path_factory)


def small_net() -> onnx.ModelProto:
    """input N×1×8×8 → Conv 1→4 3×3 p1 → depthwise Conv 3×3 s2 p1 (group 4) → Flatten → Gemm 64→10 → MatMul 10→3."""
    w = lambda *s: numpy_helper.from_array(np.ones(s, np.float32))  # noqa: E731
    inits = [w(4, 1, 3, 3), w(4, 1, 3, 3), w(10, 64), w(10), w(10, 3)]
    for t, name in zip(inits, ["w1", "w2", "wg", "bg", "wm"]):
        t.name = name
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1], strides=[2, 2], group=4),
        helper.make_node("Flatten", ["c2"], ["f"]),
        helper.make_node("Gemm", ["f", "wg", "bg"], ["g"], transB=1),
        helper.make_node("MatMul", ["g", "wm"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "small", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_hand_computed_small_conv_net(tmp_path):
    # conv1: 4×8×8 outputs × (1·3·3) = 2304; depthwise: 4×4×4 outputs × (1·3·3) = 576;
    # gemm: 1×10 outputs × 64 = 640; matmul: 1×3 outputs × 10 = 30
    path = tmp_path / "small.onnx"
    onnx.save(small_net(), str(path))
    m = count_macs(path)
    assert m.by_op == {"Conv": 2304 + 576, "Gemm": 640, "MatMul": 30}
    assert m.total == 3550 and m.uncounted == [] and m.grouped_conv == 576
    assert count_macs(small_net()).total == 3550   # a ModelProto works too (and is not modified)


def test_int8_graph_counts_like_fp32(artefacts):
    """Q/DQ INT8 keeps the same Conv/Gemm arithmetic as its FP32 parent."""
    fp32, int8 = count_macs(artefacts.onnx), count_macs(artefacts.int8)
    assert fp32.total > 0 and fp32.total == int8.total


def test_qoperator_graph_is_counted(artefacts, tmp_path):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = tmp_path / "dyn.onnx"
    quantize_dynamic(str(artefacts.onnx), str(out), weight_type=QuantType.QInt8)  # ConvInteger / MatMulInteger
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert ops & {"ConvInteger", "MatMulInteger", "QLinearConv", "QGemm"}
    assert count_macs(out).total == count_macs(artefacts.onnx).total


def test_unreadable_model_is_a_model_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx model")
    with pytest.raises(ModelError):
        count_macs(bad)
