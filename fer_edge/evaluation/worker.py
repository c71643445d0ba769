"""One inference path (torch, ort-fp32, ort-int8, trt) opened and timed on request — here or in its own process.

A :class:`PathSession` holds one loaded model and times calls when asked; :mod:`.schedule` asks every
path in turn, round after round, so all paths see the same machine load (on a shared machine the
load drifts by the minute, and a ratio of two paths measured minutes apart measures the drift).

With isolation each session lives in ``python -m fer_edge.evaluation.worker --serve JOB``: its peak
RSS (``VmHWM`` of that process, see :func:`~.timing.peak_rss_mb`) is then its own — torch's few
hundred MB of libraries do not inflate the ONNX Runtime figure — and a crash fails one path only.
The parent talks to it in JSON lines over stdin/stdout.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from .timing import current_rss_mb, peak_rss_mb, time_calls

RESULT_PREFIX = "FER_EDGE_BENCH "
RSS_ISOLATED = "subprocess VmHWM (interpreter + libraries + model + buffers)"
RSS_IN_PROCESS = "in-process (whole benchmark process, not per path)"


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

    @classmethod
    def failed(cls, job: PathJob, reason: str) -> PathResult:
        return cls(name=job.name, model=job.model, backend=job.backend, precision=job.precision, status="failed",
                   reason=reason)


class PathSession:
    """One opened model with its random inputs; ``time`` returns seconds per call of ``n`` calls."""

    def __init__(self, job: PathJob):
        from .loading import open_model

        self.job = job
        rss0 = current_rss_mb()
        t0 = time.perf_counter()
        self.backend = open_model(job.model, backend=job.backend, threads=job.threads)
        self.header = {"size_mb": Path(job.model).stat().st_size / 2**20, "load_s": time.perf_counter() - t0,
                       "rss_before_load_mb": rss0}
        self._shape = tuple(self.backend.contract.preprocess.input_shape)
        self._rng = np.random.default_rng(job.seed)
        self._inputs: Dict[int, np.ndarray] = {}

    def time(self, batch: int, n: int, warmup: int = 0) -> List[float]:
        if batch not in self._inputs:
            self._inputs[batch] = self._rng.standard_normal((batch, *self._shape)).astype(np.float32)
        x = self._inputs[batch]
        if n <= 0:
            for _ in range(warmup):
                self.backend.infer(x)
            return []
        return [float(t) for t in time_calls(lambda: self.backend.infer(x), n, warmup)]

    def finish(self) -> Dict[str, Any]:
        try:
            info = json.loads(json.dumps(self.backend.info(), default=str))
        except Exception as exc:  # noqa: BLE001 - info() is diagnostics only
            info = {"error": str(exc)}
        self.close()
        return {"backend_info": info, "peak_rss_mb": peak_rss_mb()}

    def close(self) -> None:
        """Release the backend (TensorRT device memory); safe to call twice."""
        close = getattr(self.backend, "close", None)
        if callable(close):
            close()


class RemoteSession:
    """A :class:`PathSession` in a ``--serve`` subprocess, with the same ``header``/``time``/``finish``."""

    def __init__(self, job: PathJob, timeout_s: float = 600.0):
        self.job = job
        self.timeout_s = timeout_s
        # stderr to a file, not a pipe: a chatty library must not fill a pipe nobody reads and stall the worker
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen([sys.executable, "-m", "fer_edge.evaluation.worker", "--serve",
                                      json.dumps(asdict(job))], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._stderr, text=True, bufsize=1)
        self.header = self._reply()

    def _reply(self) -> Dict[str, Any]:
        assert self.proc.stdout is not None
        # a hung worker (driver deadlock, swapping) is killed after timeout_s: the read then sees EOF
        watchdog = threading.Timer(self.timeout_s, self.proc.kill)
        watchdog.start()
        try:
            for line in self.proc.stdout:
                if line.startswith(RESULT_PREFIX):
                    msg = json.loads(line[len(RESULT_PREFIX):])
                    if not msg.get("ok"):
                        raise RuntimeError(msg.get("error", "worker error"))
                    return msg
        finally:
            watchdog.cancel()
        self.proc.wait(timeout=30)
        self._stderr.seek(0)
        err = self._stderr.read().strip().splitlines() or [f"exit code {self.proc.returncode}"]
        raise RuntimeError(f"worker exited {self.proc.returncode}: {err[-1][:300]}")

    def _ask(self, **msg: Any) -> Dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        return self._reply()

    def time(self, batch: int, n: int, warmup: int = 0) -> List[float]:
        return self._ask(op="time", batch=batch, n=n, warmup=warmup)["samples"]

    def finish(self) -> Dict[str, Any]:
        try:
            return self._ask(op="finish")
        finally:
            self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()


def _send(msg: Dict[str, Any]) -> None:
    print(RESULT_PREFIX + json.dumps(msg), flush=True)


def serve(job: PathJob) -> int:
    """The subprocess side: open the path, then answer ``time``/``finish`` requests until stdin closes."""
    from fer_edge.runtime.errors import FerEdgeError

    try:
        session = PathSession(job)
    except FerEdgeError as exc:
        _send({"ok": False, "error": str(exc)})
        return 0
    _send({"ok": True, **session.header})
    for line in sys.stdin:
        req = json.loads(line)
        if req.get("op") == "finish":
            _send({"ok": True, **session.finish()})
            return 0
        try:
            _send({"ok": True, "samples": session.time(int(req["batch"]), int(req["n"]), int(req.get("warmup", 0)))})
        except Exception as exc:  # noqa: BLE001 - e.g. an engine built without this batch size
            _send({"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:200]}"})
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 2 or argv[0] != "--serve":
        print("usage: python -m fer_edge.evaluation.worker --serve JOB_JSON", file=sys.stderr)
        return 2
    return serve(PathJob(**json.loads(argv[1])))


if __name__ == "__main__":  # pragma: no cover - exercised through RemoteSession
    sys.exit(main())
