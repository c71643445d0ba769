"""Run statistics: frames, faces, faults by kind, FPS and per-stage latency percentiles.

Faults are counted, never raised, and each kind is logged once (a camera that drops every other
frame must not flood the log). Latencies live in fixed-size ring buffers so a week-long live run
keeps a flat memory footprint; percentiles cover the most recent ``window`` frames.
"""
from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any, Dict, Iterable, Optional

import numpy as np

log = logging.getLogger("fer_edge.runtime")

STAGES = ("capture", "detect", "preprocess", "infer", "post")


class _Ring:
    def __init__(self, size: int):
        self.buf = np.zeros(size, dtype=np.float32)
        self.n = 0

    def add(self, v: float) -> None:
        self.buf[self.n % len(self.buf)] = v
        self.n += 1

    def values(self) -> np.ndarray:
        return self.buf[: min(self.n, len(self.buf))]


class RunStats:
    """Counters and latency windows of one pipeline run."""

    def __init__(self, window: int = 100_000, stages: Iterable[str] = STAGES):
        self.frames = 0
        self.faces = 0
        self.frames_with_faces = 0
        self.detections = 0
        self.faults: Counter = Counter()
        self.events: Counter = Counter()
        self._logged: set = set()
        self.stages = tuple(stages)
        self._lat = {s: _Ring(window) for s in (*self.stages, "total")}
        self.t_start = time.perf_counter()
        self.t_end: Optional[float] = None
        self.error: Optional[str] = None

    def fault(self, kind: str, detail: str = "", n: int = 1) -> None:
        """Count a fault; the first of each kind is logged with its detail."""
        self.faults[kind] += n
        if kind not in self._logged:
            self._logged.add(kind)
            log.warning("fault %s%s (counted; later ones of this kind are not logged)",
                        kind, f": {detail}" if detail else "")

    def frame(self, n_faces: int, latency_ms: Dict[str, float]) -> None:
        self.frames += 1
        self.faces += n_faces
        self.frames_with_faces += int(n_faces > 0)
        for s in self.stages:
            self._lat[s].add(float(latency_ms.get(s, 0.0)))
        self._lat["total"].add(float(sum(latency_ms.get(s, 0.0) for s in self.stages)))

    def finish(self) -> None:
        if self.t_end is None:
            self.t_end = time.perf_counter()

    @property
    def wall_s(self) -> float:
        return (self.t_end or time.perf_counter()) - self.t_start

    def latency_summary(self) -> Dict[str, Dict[str, float]]:
        out = {}
        for name, ring in self._lat.items():
            v = ring.values()
            if len(v) == 0:
                out[name] = {"mean": 0.0, "p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
                continue
            p50, p95, p99 = np.percentile(v, [50, 95, 99])
            out[name] = {"mean": round(float(v.mean()), 3), "p50": round(float(p50), 3),
                         "p95": round(float(p95), 3), "p99": round(float(p99), 3), "max": round(float(v.max()), 3)}
        return out

    def summary(self) -> Dict[str, Any]:
        wall = self.wall_s
        return {
            "frames": self.frames,
            "faces": self.faces,
            "frames_with_faces": self.frames_with_faces,
            "detections_run": self.detections,
            "faults": dict(sorted(self.faults.items())),
            "fault_total": int(sum(self.faults.values())),
            "events": dict(sorted(self.events.items())),
            "wall_s": round(wall, 3),
            "fps": round(self.frames / wall, 2) if wall > 0 else 0.0,
            "latency_ms": self.latency_summary(),
            "error": self.error,
        }


def format_summary(s: Dict[str, Any]) -> str:
    """A few human lines for the end of ``fer-edge run``."""
    lat = s["latency_ms"]["total"]
    faults = ", ".join(f"{k}={v}" for k, v in s["faults"].items()) or "none"
    lines = [
        f"frames {s['frames']}  faces {s['faces']}  ({s['frames_with_faces']} frames with a face)  "
        f"detections {s['detections_run']}",
        f"{s['fps']:.1f} FPS end to end over {s['wall_s']:.1f} s; frame latency p50 {lat['p50']:.2f} ms  "
        f"p95 {lat['p95']:.2f} ms  p99 {lat['p99']:.2f} ms",
        "per stage p50 ms: " + "  ".join(f"{k} {v['p50']:.2f}" for k, v in s["latency_ms"].items() if k != "total"),
        f"faults: {faults}",
    ]
    if s.get("error"):
        lines.append(f"source ended with an error: {s['error']}")
    return "\n".join(lines)
