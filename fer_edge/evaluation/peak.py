"""The machine's practical FP32 and INT8 GEMM peak, measured in the same run as the benchmark.

A model's "achieved GMAC/s" means little on its own; as a fraction of what this CPU (or GPU) reaches
on a large dense matrix product it says how much of the hardware the model uses. The peak is
measured with the same engine the models run on: an ONNX Runtime ``MatMul`` graph (FP32) and a
``MatMulInteger`` graph (uint8 × int8 → int32, the kernel behind ORT's quantized Conv/MatMul, using
VNNI where the CPU has it), built with ``onnx.helper`` in memory. numpy's BLAS is measured too for
FP32 and the better of the two is the practical peak.

The peak uses the *fastest* of the timed repetitions (the machine is shared; the best run is the
one least disturbed), the models use the median: the fraction of peak is therefore a lower bound.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

from fer_edge.runtime.errors import BackendUnavailable

from .timing import time_calls


@dataclass
class GemmPeak:
    """GMAC/s of one GEMM engine on an ``m×k @ k×n`` product (``gmacs_per_s`` from the fastest run)."""

    engine: str
    dtype: str
    m: int
    k: int
    n: int
    median_s: float
    best_s: float
    gmacs_per_s: float
    threads: int

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


@dataclass
class PeakResult:
    """Practical FP32 and INT8 peaks (best engine for each) and every measurement behind them."""

    fp32_gmacs_per_s: float
    int8_gmacs_per_s: float
    runs: Dict[str, GemmPeak]

    def to_dict(self) -> Dict[str, Any]:
        return {"fp32_gmacs_per_s": self.fp32_gmacs_per_s, "int8_gmacs_per_s": self.int8_gmacs_per_s,
                "runs": {k: v.to_dict() for k, v in self.runs.items()}}


def _time_runs(fn: Callable[[], Any], reps: int, warmup: int = 2) -> Tuple[float, float]:
    """(median, best) seconds of ``reps`` calls after ``warmup`` untimed ones."""
    t = time_calls(fn, reps, warmup)
    return float(np.median(t)), float(np.min(t))


def _matmul_model(op: str, m: int, k: int, n: int, a_type: int, b_type: int, y_type: int) -> bytes:
    """A one-node ONNX graph ``Y = op(A, B)`` with B as an initializer (weights, as in a model)."""
    import onnx
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(0)
    if b_type == onnx.TensorProto.INT8:
        b = rng.integers(-127, 128, size=(k, n), dtype=np.int8)
    else:
        b = rng.standard_normal((k, n)).astype(np.float32)
    node = helper.make_node(op, ["A", "B"], ["Y"])
    graph = helper.make_graph([node], f"{op.lower()}_peak",
                              [helper.make_tensor_value_info("A", a_type, [m, k])],
                              [helper.make_tensor_value_info("Y", y_type, [m, n])],
                              [numpy_helper.from_array(b, "B")])
    opset = 17
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _ort_session(model_bytes: bytes, threads: int) -> Any:
    try:
        import onnxruntime as ort
    except ImportError as exc:  # pragma: no cover - onnxruntime is part of the runtime extra
        raise BackendUnavailable("onnxruntime is not installed; `pip install onnxruntime`") from exc
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])


def ort_gemm(dtype: str, m: int = 1024, k: int = 1024, n: int = 1024, reps: int = 10,
             threads: Optional[int] = None) -> GemmPeak:
    """GMAC/s of ORT ``MatMul`` (``fp32``) or ``MatMulInteger`` (``int8``: uint8 activations, int8 weights)."""
    import onnx

    threads = threads or os.cpu_count() or 1
    rng = np.random.default_rng(1)
    if dtype == "fp32":
        blob = _matmul_model("MatMul", m, k, n, onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT,
                             onnx.TensorProto.FLOAT)
        a = rng.standard_normal((m, k)).astype(np.float32)
    elif dtype == "int8":
        blob = _matmul_model("MatMulInteger", m, k, n, onnx.TensorProto.UINT8, onnx.TensorProto.INT8,
                             onnx.TensorProto.INT32)
        a = rng.integers(0, 256, size=(m, k), dtype=np.uint8)
    else:
        raise ValueError(f"dtype {dtype!r} is not fp32 or int8")
    sess = _ort_session(blob, threads)
    feed = {"A": a}
    median, best = _time_runs(lambda: sess.run(None, feed), reps)
    return GemmPeak(f"ort-{'MatMul' if dtype == 'fp32' else 'MatMulInteger'}", dtype, m, k, n, median, best,
                    m * k * n / best / 1e9, threads)


def numpy_gemm(m: int = 1024, k: int = 1024, n: int = 1024, reps: int = 10) -> GemmPeak:
    """GMAC/s of numpy's BLAS ``float32`` matmul (threads as BLAS decides, usually all cores)."""
    rng = np.random.default_rng(2)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    median, best = _time_runs(lambda: a @ b, reps)
    return GemmPeak("numpy-blas", "fp32", m, k, n, median, best, m * k * n / best / 1e9, os.cpu_count() or 1)


def measure_peak(size: int = 1024, reps: int = 20, threads: Optional[int] = None) -> PeakResult:
    """Measure FP32 (ORT MatMul, numpy) and INT8 (ORT MatMulInteger) GEMM; keep the best of each.

    numpy's BLAS picks its own thread count, so it only competes for the FP32 peak when the models
    also use every core (``threads`` unset or equal to the core count); otherwise it is recorded only.
    """
    runs = {
        "fp32_ort": ort_gemm("fp32", size, size, size, reps, threads),
        "fp32_numpy": numpy_gemm(size, size, size, reps),
        "int8_ort": ort_gemm("int8", size, size, size, reps, threads),
    }
    all_cores = threads is None or threads == (os.cpu_count() or 1)
    fp32 = max(r.gmacs_per_s for k, r in runs.items() if r.dtype == "fp32" and (all_cores or k != "fp32_numpy"))
    int8 = max(r.gmacs_per_s for r in runs.values() if r.dtype == "int8")
    return PeakResult(fp32, int8, runs)


def best_of(a: PeakResult, b: PeakResult) -> PeakResult:
    """Per engine the faster of two measurements: the practical peak is the best the machine showed.

    The benchmark measures the peak before and after the paths, so one burst of load from another
    process cannot lower the peak (and inflate every path's share of it).
    """
    runs = {k: (a.runs[k] if a.runs[k].gmacs_per_s >= b.runs[k].gmacs_per_s else b.runs[k]) for k in a.runs}
    return PeakResult(max(a.fp32_gmacs_per_s, b.fp32_gmacs_per_s), max(a.int8_gmacs_per_s, b.int8_gmacs_per_s),
                      runs)
