"""Tiny fer-edge ONNX models (FP32 and Q/DQ) built with ``onnx.helper``: no torch, milliseconds to make."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from fer_edge.runtime.backends.base import INPUT_NAME, META_CONTRACT, META_PRECISION, OUTPUT_LOGITS, OUTPUT_PROBS
from fer_edge.runtime.contract import LABELS, Contract, PreprocessSpec
from fer_edge.runtime.manifest import Manifest, write_manifest

SPEC = PreprocessSpec(size=16, colour="gray", mean=(0.5,), std=(0.25,))


def make_model(path: Path, qdq: bool = False, spec: PreprocessSpec = SPEC, seed: int = 0,
               manifest: bool = True, contract: bool = True, batch: object = "N") -> Path:
    """``input`` N×C×S×S → Flatten → Gemm → ``logits`` → Softmax → ``probs`` (+ Q/DQ on the input if asked)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    c, s, _ = spec.input_shape
    k = len(LABELS)
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((c * s * s, k)) * 0.1).astype(np.float32)
    b = (rng.standard_normal(k) * 0.1).astype(np.float32)
    inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")]
    nodes = []
    x = INPUT_NAME
    if qdq:
        inits += [numpy_helper.from_array(np.array(4.0 / 127, np.float32), "x_scale"),
                  numpy_helper.from_array(np.array(0, np.int8), "x_zp")]
        nodes += [helper.make_node("QuantizeLinear", [x, "x_scale", "x_zp"], ["xq"], name="input_q"),
                  helper.make_node("DequantizeLinear", ["xq", "x_scale", "x_zp"], ["xdq"], name="input_dq")]
        x = "xdq"
    nodes += [helper.make_node("Flatten", [x], ["flat"], name="flatten", axis=1),
              helper.make_node("Gemm", ["flat", "W", "B"], [OUTPUT_LOGITS], name="fc"),
              helper.make_node("Softmax", [OUTPUT_LOGITS], [OUTPUT_PROBS], name="softmax", axis=1)]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [batch, c, s, s])],
        [helper.make_tensor_value_info(OUTPUT_LOGITS, TensorProto.FLOAT, [batch, k]),
         helper.make_tensor_value_info(OUTPUT_PROBS, TensorProto.FLOAT, [batch, k])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    precision = "int8" if qdq else "fp32"
    con = Contract(labels=LABELS, preprocess=spec, crop={"detector": "haar", "margin": 0.2})
    meta = {META_PRECISION: precision}
    if contract:
        meta[META_CONTRACT] = json.dumps(con.to_dict())
    helper.set_model_props(model, meta)
    onnx.save(model, str(path))
    if manifest:
        write_manifest(path, Manifest(kind="int8_onnx" if qdq else "onnx", precision=precision,
                                      labels=list(LABELS), preprocess=spec.to_dict(), crop=con.to_dict()["crop"]))
    return Path(path)
