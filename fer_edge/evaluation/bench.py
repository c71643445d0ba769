"""``run_bench``: every inference path side by side, in one run, against the machine's own peak.

Absolute milliseconds depend on the machine and on who else is using it, so the headline is a set
of ratios measured in the same run (INT8 vs torch eager, INT8 vs ORT FP32) and the fraction of the
GEMM peak measured minutes earlier on the same cores. Each path is measured in its own subprocess
(see :mod:`.worker`) so peak RSS is per path. A path that cannot run here (no TensorRT, no INT8
model given) is listed as skipped with the reason, never silently dropped.

The ``ort-int8`` path opens the INT8 model through the runtime, which on the CPU provider runs the CPU
INT8 artefact calibrated with it (``model.int8-cpu.onnx``); the diagnosis profiles the file that ran
and, for comparison, the TensorRT Q/DQ model as given (which nodes run in int8, where the time goes).
With ``accuracy_data`` (a labelled folder) the FP32 and INT8 paths are also scored on it, so speed and
accuracy of the same artefacts come from one run.
"""
from __future__ import annotations

import logging
import os
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

from fer_edge.runtime.errors import ConfigError, ModelError
from fer_edge.runtime.manifest import read_manifest, sha256_file

from .macs import count_macs
from .ortgraph import explain_int8
from .ortprofile import safe_profile
from .peak import best_of, measure_peak
from .schedule import run_interleaved
from .video import video_fps
from .worker import PathJob, PathResult

log = logging.getLogger(__name__)

PATHS = ("torch", "ort-fp32", "ort-int8", "trt")
#: Goals of issues 10 and 26 (recorded, not asserted): (key, description, target); met when value >= target,
#: except for keys in LOWER_IS_BETTER (met when value <= target).
GOALS = (
    ("int8_vs_torch_latency_b1", "batch-1 ORT INT8 vs torch eager FP32 (p50 speed-up)", 3.0),
    ("int8_vs_fp32_latency_b1", "batch-1 ORT INT8 vs ORT FP32 (p50 speed-up)", 1.6),
    ("int8_vs_fp32_throughput_b32", "batch-32 ORT INT8 vs ORT FP32 (throughput)", 2.0),
    ("int8_peak_fraction_b32", "batch-32 ORT INT8 throughput as a fraction of the int8 GEMM peak", 0.30),
    ("int8_accuracy_drop_pt", "ORT INT8 accuracy drop vs ORT FP32 on the labelled set (points)", 0.5),
)
LOWER_IS_BETTER = frozenset({"int8_accuracy_drop_pt"})
PathLike = Union[str, Path, None]


@dataclass
class BenchResult:
    """``bench.json``: machine, peak, per-path figures, ratios and goals, end-to-end video FPS."""

    machine: Dict[str, Any]
    peak: Dict[str, Any]
    paths: Dict[str, PathResult]
    ratios: Dict[str, Optional[float]] = field(default_factory=dict)
    goals: List[Dict[str, Any]] = field(default_factory=list)
    video: Dict[str, Any] = field(default_factory=dict)
    #: per path: what ONNX Runtime's optimised graph runs (see :mod:`.ortgraph`), to explain the ratios
    diagnosis: Dict[str, Any] = field(default_factory=dict)
    #: with a labelled set: accuracy of the ORT paths on it (the files the runtime ran) and the INT8 drop
    accuracy: Dict[str, Any] = field(default_factory=dict)
    settings: Dict[str, Any] = field(default_factory=dict)
    command: str = ""
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    def to_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        d["paths"] = {k: v.to_dict() for k, v in self.paths.items()}
        return d


def machine_info(threads: Optional[int]) -> Dict[str, Any]:
    from .machine import collect

    info = collect()
    return {"cpu": info["cpu"], "platform": info["platform"], "python": info["python"],
            "onnxruntime": info["onnxruntime"], "torch": info["torch"], "tensorrt": info["tensorrt"],
            "cuda_device": info["cuda_device"], "threads": threads or os.cpu_count(),
            "load_avg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def _nearby(onnx_path: Path, pattern: str) -> List[Path]:
    """Files matching ``pattern`` beside the model, in its parent folder, and under that (a run folder)."""
    here, run = onnx_path.parent, onnx_path.parent.parent
    seen: Dict[Path, None] = {}
    for cand in [*here.glob(pattern), *run.glob(pattern), *run.glob(f"*/{pattern}"), *run.glob(f"*/*/{pattern}")]:
        if cand.is_file() and cand.resolve() != onnx_path.resolve():
            seen.setdefault(cand.resolve(), None)
    return list(seen)


def find_checkpoint(onnx_path: Path) -> Optional[Path]:
    """The checkpoint an ONNX was exported from, found nearby by the sha256 its manifest records."""
    try:
        want = read_manifest(onnx_path).inputs.get("checkpoint")
    except Exception:  # noqa: BLE001 - no sidecar: nothing to match on
        return None
    if not want:
        return None
    for cand in _nearby(onnx_path, "*.pt"):
        if sha256_file(cand) == want:
            return cand
    return None


def default_int8(onnx_path: Path) -> Optional[Path]:
    """``model.int8.onnx`` beside the model, else a nearby INT8 whose manifest names this model as parent."""
    cand = onnx_path.with_name(onnx_path.stem + ".int8.onnx")
    if cand.is_file():
        return cand
    want = sha256_file(onnx_path)
    for cand in _nearby(onnx_path, "*.onnx"):
        try:
            if read_manifest(cand).inputs.get("fp32_onnx") == want:
                return cand
        except Exception:  # noqa: BLE001 - not a fer-edge artefact
            continue
    return None


def plan_paths(compare: Sequence[str], model: PathLike, int8: PathLike, checkpoint: PathLike,
               engine: PathLike) -> Dict[str, Union[PathJob, PathResult]]:
    """A job per requested path, or a skipped result saying what is missing."""
    from fer_edge.runtime.backends import tensorrt_available

    unknown = [c for c in compare if c not in PATHS]
    if unknown:
        raise ConfigError(f"bench --compare: {unknown} not among {list(PATHS)}")
    files = {"torch": (checkpoint, "torch", "fp32", "no checkpoint: give --checkpoint best.pt"),
             "ort-fp32": (model, "onnxruntime", "fp32", "no FP32 ONNX: give --model model.onnx"),
             "ort-int8": (int8, "onnxruntime", "int8", "no INT8 ONNX: give --int8 (from `fer-edge calibrate`)"),
             "trt": (engine, "tensorrt", "engine", "no engine: give --engine (from `fer-edge build` on the device)")}
    plan: Dict[str, Union[PathJob, PathResult]] = {}
    for name in compare:
        path, backend, precision, missing = files[name]
        if name == "trt" and not tensorrt_available():
            plan[name] = PathResult(name=name, backend=backend, status="skipped",
                                    reason="TensorRT is not installed on this machine (run bench on the device)")
        elif path is None:
            plan[name] = PathResult(name=name, backend=backend, status="skipped", reason=missing)
        elif not Path(path).is_file():
            raise ModelError(f"bench: {name} model {path} not found")
        else:
            plan[name] = PathJob(name=name, model=str(path), backend=backend, precision=precision)
    return plan


def _macs_source(name: str, job: PathJob, model: PathLike) -> Optional[Path]:
    if job.model.endswith(".onnx"):
        return Path(job.model)
    return Path(model) if model is not None else None  # torch / trt: the same network as the FP32 ONNX


def _add_macs(res: PathResult, name: str, job: PathJob, model: PathLike, peak: Any) -> None:
    """MACs per image from the ONNX graph, achieved GMAC/s at the largest batch, share of the own-precision peak."""
    src = _macs_source(name, job, model)
    if src is None:
        return
    res.macs_per_image = count_macs(src).total
    if res.throughput and res.macs_per_image:
        top = str(max(int(b) for b in res.throughput))
        res.gmacs_per_s = res.macs_per_image * res.throughput[top] / 1e9
        ref = peak.int8_gmacs_per_s if res.precision == "int8" else peak.fp32_gmacs_per_s
        res.peak_fraction = res.gmacs_per_s / ref


def _ratio(num: Optional[float], den: Optional[float]) -> Optional[float]:
    return num / den if num is not None and den not in (None, 0) else None


def compute_ratios(paths: Dict[str, PathResult], batch: int) -> Dict[str, Optional[float]]:
    """Speed-ups (>1: the first is faster) from p50 (and fastest) batch-1 latency and throughput at ``batch``."""
    def lat(n: str, key: str = "p50_ms") -> Optional[float]:
        r = paths.get(n)
        return r.latency[key] if r is not None and r.status == "ok" and r.latency else None

    def thr(n: str) -> Optional[float]:
        r = paths.get(n)
        return r.throughput.get(str(batch)) if r is not None and r.status == "ok" else None

    int8 = paths.get("ort-int8")
    return {
        "int8_vs_torch_latency_b1": _ratio(lat("torch"), lat("ort-int8")),
        "int8_vs_fp32_latency_b1": _ratio(lat("ort-fp32"), lat("ort-int8")),
        "fp32_vs_torch_latency_b1": _ratio(lat("torch"), lat("ort-fp32")),
        # the fastest call: the intrinsic cost, least disturbed by other processes on a shared machine
        "int8_vs_torch_latency_b1_min": _ratio(lat("torch", "min_ms"), lat("ort-int8", "min_ms")),
        "int8_vs_fp32_latency_b1_min": _ratio(lat("ort-fp32", "min_ms"), lat("ort-int8", "min_ms")),
        f"int8_vs_torch_throughput_b{batch}": _ratio(thr("ort-int8"), thr("torch")),
        f"int8_vs_fp32_throughput_b{batch}": _ratio(thr("ort-int8"), thr("ort-fp32")),
        "trt_vs_torch_latency_b1": _ratio(lat("torch"), lat("trt")),
        "int8_peak_fraction_b32": int8.peak_fraction if int8 is not None and batch == 32 else None,
    }


def judge_goals(ratios: Dict[str, Optional[float]]) -> List[Dict[str, Any]]:
    """Each goal with its measured value, met or not, and by how much it is missed."""
    out = []
    for key, text, target in GOALS:
        value = ratios.get(key)
        lower = key in LOWER_IS_BETTER
        row: Dict[str, Any] = {"key": key, "goal": text, "target": target, "value": value,
                               "direction": "<=" if lower else ">="}
        if value is None:
            row.update(met=None, note="not measured in this run")
        elif lower:
            row["met"] = bool(value <= target)
            row["note"] = "met" if row["met"] else f"over the limit by {value - target:.2f}"
        else:
            row["met"] = bool(value >= target)
            row["note"] = "met" if row["met"] else f"missed by {100 * (1 - value / target):.0f} % of the target"
        out.append(row)
    return out


def run_bench(model: PathLike = None, int8: PathLike = None, checkpoint: PathLike = None, engine: PathLike = None,
              compare: Sequence[str] = PATHS, out_dir: PathLike = None, batches: Sequence[int] = (1, 8, 32),
              warmup: int = 10, iters: int = 200, isolate: bool = True, peak_size: int = 1024,
              peak_reps: int = 20, video_frames: int = 300, threads: Optional[int] = None,
              command: str = "", rounds: int = 5, accuracy_data: PathLike = None,
              profile_runs: int = 10) -> BenchResult:
    """Measure every available path in ``compare``; write ``bench.json``, ``bench.md`` and charts to ``out_dir``.

    ``model`` is the FP32 ONNX; ``int8`` defaults to ``<model>.int8.onnx`` and ``checkpoint`` to the
    ``.pt`` next to it whose hash its manifest records. ``isolate`` runs each path in a subprocess
    (per-path peak RSS); without it RSS is that of this whole process. Paths are measured interleaved
    over ``rounds`` rounds (see :mod:`.schedule`). ``accuracy_data``: a labelled folder the ORT paths are
    scored on (accuracy and INT8's drop); ``profile_runs``: profiled runs per ORT model (0: no node profile).
    """
    if model is None and checkpoint is None and engine is None and int8 is None:
        raise ConfigError("bench: give at least --model (FP32 ONNX), --int8, --checkpoint or --engine")
    if model is not None:
        model = Path(model)
        int8 = int8 if int8 is not None else default_int8(model)
        checkpoint = checkpoint if checkpoint is not None else find_checkpoint(model)
    plan = plan_paths(compare, model, int8, checkpoint, engine)
    threads = threads or os.cpu_count()
    log.info("bench: measuring the GEMM peak (%d³, %d reps, %s threads)", peak_size, peak_reps, threads)
    peak = measure_peak(peak_size, peak_reps, threads)
    jobs: Dict[str, PathJob] = {}
    for name, item in plan.items():
        if isinstance(item, PathJob):
            item.batches, item.warmup, item.iters, item.threads = list(batches), warmup, iters, threads
            jobs[name] = item
        else:
            log.info("bench: %s skipped — %s", name, item.reason)
    log.info("bench: measuring %s interleaved over %d rounds", ", ".join(jobs) or "nothing", rounds)
    measured = run_interleaved(jobs, isolate=isolate, rounds=rounds) if jobs else {}
    peak = best_of(peak, measure_peak(peak_size, peak_reps, threads))    # again after: the best the machine showed
    log.info("bench: peak fp32 %.1f GMAC/s, int8 %.1f GMAC/s", peak.fp32_gmacs_per_s, peak.int8_gmacs_per_s)
    results: Dict[str, PathResult] = {}
    for name, item in plan.items():
        res = measured[name] if name in measured else item
        if res.status == "ok":
            _add_macs(res, name, jobs[name], model, peak)
            log.info("bench: %s passed — p50 %.3f ms, %s img/s", name, res.latency["p50_ms"],
                     {k: round(v, 1) for k, v in res.throughput.items()})
        elif res.status == "failed":
            log.warning("bench: %s failed — %s", name, res.reason)
        results[name] = res
    video = video_fps(_deploy_model(results), video_frames) if video_frames > 0 else \
        {"status": "skipped", "reason": "video_frames = 0"}
    top = max(batches)
    diagnosis = diagnose(results, top, threads, profile_runs)
    accuracy = score_accuracy(results, accuracy_data) if accuracy_data is not None else {}
    ratios = compute_ratios(results, top)
    ratios["int8_accuracy_drop_pt"] = accuracy.get("int8_drop_pt")
    result = BenchResult(machine=machine_info(threads), peak=peak.to_dict(), paths=results, ratios=ratios,
                         goals=judge_goals(ratios), video=video, diagnosis=diagnosis, accuracy=accuracy,
                         settings={"batches": list(batches), "warmup": warmup, "iters": iters, "rounds": rounds,
                                   "isolate": isolate, "peak_size": peak_size, "peak_reps": peak_reps},
                         command=command or " ".join([Path(sys.argv[0]).name] + sys.argv[1:]))
    if out_dir is not None:
        from .bench_report import write_bench_outputs

        write_bench_outputs(result, Path(out_dir))
    return result


def ran_file(r: PathResult) -> str:
    """The file a path actually ran (the runtime may run the CPU INT8 artefact for ``model.int8.onnx``)."""
    return str((r.backend_info or {}).get("path") or r.model)


def diagnose(results: Dict[str, PathResult], batch: int, threads: Optional[int], runs: int) -> Dict[str, Any]:
    """Per ORT path: the node profile of the file it ran (how many nodes ran int8 kernels, where the time went);
    for INT8 also the optimised graph's notes and, when the runtime substituted the CPU artefact, the profile
    of the model as given (the TensorRT Q/DQ layout on ONNX Runtime) for comparison."""
    out: Dict[str, Any] = {}
    for name, r in results.items():
        if r.status != "ok" or r.backend != "onnxruntime":
            continue
        ran = ran_file(r)
        d: Dict[str, Any] = explain_int8(ran) if r.precision == "int8" else {}
        d["file"] = ran
        if runs > 0:
            d["profile"] = safe_profile(ran, batch=batch, runs=runs, threads=threads)
            if r.precision == "int8" and Path(ran).resolve() != Path(r.model).resolve():
                d["as_given"] = {"file": r.model, "profile": safe_profile(r.model, batch=batch, runs=runs,
                                                                         threads=threads)}
        out[name] = d
    return out


def score_accuracy(results: Dict[str, PathResult], data: Union[str, Path]) -> Dict[str, Any]:
    """Accuracy (percent) of the FP32 and INT8 ORT paths on the labelled ``data``, opened as the runtime opens
    them (so INT8 is the file the speed was measured on), and INT8's drop in points."""
    from .evaluate import evaluate

    out: Dict[str, Any] = {"data": str(data)}
    for name in ("ort-fp32", "ort-int8"):
        r = results.get(name)
        if r is None or r.status != "ok":
            continue
        res = evaluate(r.model, str(data))
        out[name] = {"accuracy": 100.0 * res.accuracy, "macro_f1": 100.0 * res.macro_f1, "n": res.n,
                     "file": res.backend_info.get("path", r.model)}
    if "ort-fp32" in out and "ort-int8" in out:
        out["int8_drop_pt"] = out["ort-fp32"]["accuracy"] - out["ort-int8"]["accuracy"]
    return out


def _deploy_model(results: Dict[str, PathResult]) -> Optional[str]:
    """The artefact the runtime would ship: the engine if it ran, else INT8, else FP32 ONNX."""
    for name in ("trt", "ort-int8", "ort-fp32"):
        r = results.get(name)
        if r is not None and r.status == "ok":
            return r.model
    return None
