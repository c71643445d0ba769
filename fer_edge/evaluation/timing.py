"""Latency and throughput of one callable: warm-up, timed calls, percentiles.

Tail latency (p95/p99) matters on a camera: a 30 fps stream has a 33 ms budget per frame, and a
median that fits says nothing about the frames that do not. Throughput is computed (in
:mod:`.schedule`) from the median batch time, so one preempted call does not decide the figure.
"""
from __future__ import annotations

import os
import resource
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, Sequence

import numpy as np


@dataclass
class LatencyStats:
    """Milliseconds per call; percentiles by linear interpolation (numpy's default)."""

    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float
    n: int

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_samples(cls, seconds: Sequence[float]) -> LatencyStats:
        ms = np.asarray(seconds, dtype=np.float64) * 1e3
        if ms.size == 0:
            raise ValueError("no latency samples")
        p50, p95, p99 = np.percentile(ms, [50, 95, 99])
        return cls(float(p50), float(p95), float(p99), float(ms.mean()), float(ms.min()), int(ms.size))


def time_calls(fn: Callable[[], Any], iters: int, warmup: int = 5) -> np.ndarray:
    """Seconds of each of ``iters`` calls of ``fn`` after ``warmup`` untimed ones."""
    for _ in range(max(0, warmup)):
        fn()
    out = np.empty(max(1, iters), dtype=np.float64)
    for i in range(out.size):
        t0 = time.perf_counter()
        fn()
        out[i] = time.perf_counter() - t0
    return out


def current_rss_mb() -> float:
    """Resident set size now (Linux ``/proc/self/statm``; the peak so far elsewhere)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError, AttributeError):
        return peak_rss_mb()


def peak_rss_mb() -> float:
    """Peak resident set size of this process image.

    Linux: ``VmHWM`` from ``/proc/self/status``, which belongs to the current address space.
    ``ru_maxrss`` is not used there because the kernel carries it across ``fork``+``exec``: a worker
    started by a parent that imported torch would report the parent's 300 MB as its own.
    Elsewhere: ``ru_maxrss`` (KiB on Linux, bytes on macOS).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**10
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10
