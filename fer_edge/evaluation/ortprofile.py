"""Which nodes ONNX Runtime actually runs in int8, measured with its own profiler (``enable_profiling``).

The optimised-graph op counts (:mod:`.ortgraph`) say what the graph *is*; the profile says what ran and
where the time went: per op type, how many kernels ran and their share of the kernel time. An INT8 model
whose convolutions run in float behind ``DequantizeLinear`` (the S8S8 symmetric layout on the CPU) shows
it here at a glance: few ``QLinearConv``, many ``Conv`` + ``DequantizeLinear``.
"""
from __future__ import annotations

import collections
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, Optional, Union

import numpy as np

log = logging.getLogger(__name__)

#: ONNX Runtime CPU kernels that compute in int8.
INT8_OPS = frozenset(("QLinearConv", "NhwcQLinearConv", "QGemm", "QLinearMatMul", "MatMulInteger", "ConvInteger",
                      "QLinearAdd", "QLinearMul", "QLinearGlobalAveragePool", "QLinearAveragePool", "QLinearConcat",
                      "QLinearLeakyRelu", "QLinearSigmoid", "QLinearSoftmax", "QLinearReduceMean",
                      "DynamicQuantizeMatMul", "NhwcMaxPool"))
#: Kernels that carry the MACs when they run in float.
FLOAT_COMPUTE_OPS = frozenset(("Conv", "FusedConv", "NchwcConv", "Gemm", "FusedGemm", "MatMul", "FusedMatMul",
                               "ConvTranspose"))
QDQ_OPS = frozenset(("QuantizeLinear", "DequantizeLinear"))


def profile_nodes(path: Union[str, os.PathLike], batch: int = 32, runs: int = 10, threads: Optional[int] = None,
                  warmup: int = 3) -> Dict[str, Any]:
    """Run ``path`` as given (no artefact substitution) ``runs`` times at ``batch`` with profiling on.

    Returns the nodes that ran (one entry per graph node), how many ran an int8 kernel, how many a float
    Conv/Gemm, how many an unfused Quantize/DequantizeLinear, the int8 kernels' share of kernel time,
    and per op type the count and mean milliseconds per run.
    """
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="fer-edge-ortprof-") as tmp:
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL  # what the runtime uses
        so.enable_profiling = True
        so.profile_file_prefix = str(Path(tmp) / "profile")
        so.log_severity_level = 3
        so.inter_op_num_threads = 1
        if threads:
            so.intra_op_num_threads = int(threads)
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        inp = sess.get_inputs()[0]
        dims = [d if isinstance(d, int) and d > 0 else 1 for d in inp.shape[1:]]
        fixed = inp.shape[0] if isinstance(inp.shape[0], int) and inp.shape[0] > 0 else None
        x = np.random.default_rng(0).standard_normal((fixed or batch, *dims)).astype(np.float32)
        for _ in range(warmup + runs):
            sess.run(None, {inp.name: x})
        events = json.loads(Path(sess.end_profiling()).read_text())
    return summarise(events, runs, fixed or batch, skip_runs=warmup)


def summarise(events: Any, runs: int, batch: int, skip_runs: int = 0) -> Dict[str, Any]:
    """Group ORT profiler events (``cat == "Node"``, ``*_kernel_time``) by node and by op type, leaving out
    the first ``skip_runs`` runs (warm-up: the first run allocates and packs weights)."""
    starts = sorted(float(e.get("ts", 0)) for e in events if e.get("name") == "model_run")
    t0 = starts[skip_runs] if 0 < skip_runs < len(starts) else float("-inf")
    nodes: Dict[str, Dict[str, Any]] = {}
    for e in events:
        if e.get("cat") != "Node" or not str(e.get("name", "")).endswith("_kernel_time"):
            continue
        if float(e.get("ts", 0)) < t0:
            continue
        name = e["name"][: -len("_kernel_time")]
        n = nodes.setdefault(name, {"op": e.get("args", {}).get("op_name", "?"), "us": 0.0})
        n["us"] += float(e.get("dur", 0))
    by_op: Dict[str, Dict[str, float]] = collections.defaultdict(lambda: {"count": 0, "ms": 0.0})
    for n in nodes.values():
        by_op[n["op"]]["count"] += 1
        by_op[n["op"]]["ms"] += n["us"] / 1000.0 / max(runs, 1)
    total = sum(v["ms"] for v in by_op.values()) or 1.0
    int8_ms = sum(v["ms"] for k, v in by_op.items() if k in INT8_OPS)
    count = {k: int(v["count"]) for k, v in by_op.items()}
    return {
        "batch": batch, "nodes": len(nodes),
        "int8": sum(c for k, c in count.items() if k in INT8_OPS),
        "float_compute": sum(c for k, c in count.items() if k in FLOAT_COMPUTE_OPS),
        "qdq": sum(c for k, c in count.items() if k in QDQ_OPS),
        "int8_time_share": int8_ms / total,
        "kernel_ms": total,
        "by_op": {k: {"count": int(v["count"]), "ms": round(v["ms"], 4)}
                  for k, v in sorted(by_op.items(), key=lambda kv: -kv[1]["ms"])},
    }


def safe_profile(path: Union[str, os.PathLike], **kw: Any) -> Dict[str, Any]:
    """:func:`profile_nodes`, or ``{"error": ...}``: a profile explains a benchmark, it never fails one."""
    try:
        return profile_nodes(path, **kw)
    except Exception as exc:  # noqa: BLE001
        log.warning("bench: profiling %s failed (%s)", path, exc)
        return {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
