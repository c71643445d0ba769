"""Measure ONE inference path (torch, ort-fp32, ort-int8, trt) — in its own process by default.

Each path runs in a fresh ``python -m fer_edge.evaluation.worker`` subprocess so its peak RSS
(``VmHWM`` of that process, see :func:`~.timing.peak_rss_mb`) is its own: torch's few hundred MB
of libraries do not inflate the ONNX Runtime figure, and one path's allocator state cannot slow
the next. The parent passes a JSON
job on the command line and reads one JSON line back.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from .timing import LatencyStats, current_rss_mb, peak_rss_mb, throughput, time_calls

RESULT_PREFIX = "FER_EDGE_BENCH_RESULT "


@dataclass
class PathJob:
    """What to measure: a named path, the model file and the backend that runs it."""

    name: str
    model: str
    backend: str
    precision: str = "fp32"
    batches: List[int] = field(default_factory=lambda: [1, 8, 32])
    warmup: int = 10
    iters: int = 200
    threads: Optional[int] = None
    seed: int = 0


@dataclass
class PathResult:
    """Figures of one path. ``status`` is ``ok``, ``skipped`` or ``failed`` (then ``reason`` says why)."""

    name: str
    model: str = ""
    backend: str = ""
    precision: str = ""
    status: str = "ok"
    reason: str = ""
    size_mb: float = 0.0
    load_s: float = 0.0
    latency: Optional[Dict[str, float]] = None
    latency_samples_ms: List[float] = field(default_factory=list)
    throughput: Dict[str, float] = field(default_factory=dict)
    batch_errors: Dict[str, str] = field(default_factory=dict)
    rss_before_load_mb: float = 0.0
    peak_rss_mb: float = 0.0
    rss_method: str = ""
    macs_per_image: Optional[int] = None
    gmacs_per_s: Optional[float] = None
    peak_fraction: Optional[float] = None
    backend_info: Dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> PathResult:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def measure(job: PathJob, rss_method: str = "in-process") -> PathResult:
    """Open the model, time batch-1 latency and throughput at each batch size; never raises for a batch."""
    from .loading import open_model

    res = PathResult(name=job.name, model=job.model, backend=job.backend, precision=job.precision,
                     size_mb=Path(job.model).stat().st_size / 2**20, rss_method=rss_method)
    res.rss_before_load_mb = current_rss_mb()
    t0 = time.perf_counter()
    be = open_model(job.model, backend=job.backend, threads=job.threads)
    res.load_s = time.perf_counter() - t0
    shape = tuple(be.contract.preprocess.input_shape)
    rng = np.random.default_rng(job.seed)
    x1 = rng.standard_normal((1, *shape)).astype(np.float32)
    samples = time_calls(lambda: be.infer(x1), job.iters, job.warmup)
    res.latency = LatencyStats.from_samples(samples).to_dict()
    res.latency_samples_ms = [round(float(s) * 1e3, 5) for s in samples]
    for b in job.batches:
        xb = rng.standard_normal((b, *shape)).astype(np.float32)
        try:
            res.throughput[str(b)] = throughput(lambda xb=xb: be.infer(xb), b, max(3, job.iters // b),
                                                warmup=max(1, job.warmup // b))
        except Exception as exc:  # noqa: BLE001 - e.g. an engine built without this batch size
            res.batch_errors[str(b)] = f"{type(exc).__name__}: {str(exc)[:200]}"
    try:
        res.backend_info = json.loads(json.dumps(be.info(), default=str))
    except Exception as exc:  # noqa: BLE001 - info() is diagnostics only
        res.backend_info = {"error": str(exc)}
    res.peak_rss_mb = peak_rss_mb()
    close = getattr(be, "close", None)
    if callable(close):
        close()
    return res


def measure_isolated(job: PathJob, timeout_s: float = 600.0) -> PathResult:
    """Run :func:`measure` in a subprocess; a crash or timeout becomes a ``failed`` result, not an exception."""
    cmd = [sys.executable, "-m", "fer_edge.evaluation.worker", json.dumps(asdict(job))]
    env = dict(os.environ)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env, check=False)
    except subprocess.TimeoutExpired:
        return PathResult(name=job.name, model=job.model, backend=job.backend, precision=job.precision,
                          status="failed", reason=f"timed out after {timeout_s:.0f} s")
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return PathResult.from_dict(json.loads(line[len(RESULT_PREFIX):]))
    tail = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
    return PathResult(name=job.name, model=job.model, backend=job.backend, precision=job.precision,
                      status="failed", reason=f"worker exited {proc.returncode}: {tail[:300]}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    from fer_edge.runtime.errors import FerEdgeError

    argv = list(sys.argv[1:] if argv is None else argv)
    job = PathJob(**json.loads(argv[0]))
    try:
        res = measure(job, rss_method="subprocess VmHWM (interpreter + libraries + model + buffers)")
    except FerEdgeError as exc:
        res = PathResult(name=job.name, model=job.model, backend=job.backend, precision=job.precision,
                         status="failed", reason=str(exc))
    print(RESULT_PREFIX + json.dumps(res.to_dict()), flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover - exercised through measure_isolated
    sys.exit(main())
