"""``calibrate``: FP32 ONNX + target-domain faces → INT8 Q/DQ ONNX (TensorRT and CPU), cache, gate, report.

The order is the point: the models are only written after their Q/DQ layouts passed the self-checks
(TensorRT: int8, zero-point 0, per-channel weights, float biases, TensorRT operators; CPU: uint8
activations, int8 per-channel weights) and after the gate (label-free agreement with FP32 on held-out
target faces, see :mod:`.gate`). A model that fails the gate raises :class:`GateFailed` after writing the
report, so a pipeline cannot ship it by accident.
"""
from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import numpy as np
import onnx

from fer_edge.export.metadata import set_metadata
from fer_edge.export.trt_ops import check_trt_ops
from fer_edge.runtime.artefacts import calib_cache_path, calib_report_path, cpu_artefact_path
from fer_edge.runtime.atomic import atomic_write
from fer_edge.runtime.backends.base import META_PRECISION
from fer_edge.runtime.errors import ConfigError, ModelError
from fer_edge.runtime.manifest import Manifest, sha256_file, write_manifest
from fer_edge.runtime.metrics import score

from . import qdq
from .cache import cache_header, write_cache
from .config import CalibrateConfig as _Defaults
from .cpu import check_fused, cpu_ranges, inspect_cpu, node_profile
from .gate import GateData, GateResult, agreement, run_gate
from .images import ImageSet, load_images
from .report import write_reports
from .sessions import predict, session
from .sets import load_sets

log = logging.getLogger(__name__)
PathLike = Union[str, Path]
CPU_LAYOUT = "QDQ, uint8 activations (asymmetric, per tensor), int8 weights (symmetric, per output channel), int32 bias"


class GateFailed(ModelError):
    """INT8 lost more accuracy than allowed even with float fallback; no model was written."""

    def __init__(self, message: str, result: CalibrationResult):
        super().__init__(message)
        self.result = result


@dataclass
class CalibrationResult:
    """What ``calibrate`` produced. ``path`` is None when the gate failed."""

    path: Optional[Path]
    passed: bool
    method: str
    num_images: int
    image_list_sha256: str
    excluded: List[str] = field(default_factory=list)  # the TensorRT Q/DQ model's float layers
    cpu_excluded: List[str] = field(default_factory=list)  # the CPU model's own (each flavour passes on its own)
    gate: Optional[GateResult] = None
    cache_path: Optional[Path] = None
    cpu_path: Optional[Path] = None  # model.int8-cpu.onnx, ONNX Runtime's CPU layout (None when not written)
    report_paths: Dict[str, Path] = field(default_factory=dict)
    report: Dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready (paths as strings); the full report is in ``report`` / the report files."""
        d = {k: v for k, v in asdict(self).items() if k != "report"}
        d["gate"] = self.gate.to_dict() if self.gate is not None else None
        return json.loads(json.dumps(d, default=str))


def _fp32_contract(model: Path):
    from fer_edge.runtime.model import describe_onnx

    info = describe_onnx(model)
    if info.precision == "int8" or (info.manifest is not None and info.manifest.kind == "int8_onnx"):
        raise ModelError(f"{model}: is already an INT8 model; calibrate the FP32 model from `fer-edge export`")
    return info


def _finalise(q_path: Path, fp32_meta: Dict[str, str]) -> onnx.ModelProto:
    """Self-check the Q/DQ layout and stamp the contract with precision int8."""
    model = onnx.load(str(q_path))
    info = qdq.inspect_qdq(model)
    problems = info.problems + [f"bias {b} quantized" for b in info.quantized_biases]
    if problems:
        raise ModelError(f"{q_path}: Q/DQ layout is not TensorRT-compatible: {problems[:5]}")
    check_trt_ops(model, where="INT8 model")
    keys = {k: v for k, v in fp32_meta.items() if k.startswith("fer_edge.")}
    keys[META_PRECISION] = "int8"
    set_metadata(model, keys)
    model.producer_name = "fer-edge"
    return model


def _finalise_cpu(q_path: Path, fp32_meta: Dict[str, str], excluded: List[str]):
    """Self-check the CPU layout, stamp the contract, and profile what ONNX Runtime fuses it into."""
    model = onnx.load(str(q_path))
    layout = inspect_cpu(model)
    if layout.problems:
        raise ModelError(f"{q_path}: CPU Q/DQ layout is not U8 activations + S8 per-channel weights: "
                         f"{layout.problems[:5]}")
    keys = {k: v for k, v in fp32_meta.items() if k.startswith("fer_edge.")}
    keys[META_PRECISION] = "int8"
    set_metadata(model, keys)
    model.producer_name = "fer-edge"
    try:
        profile = node_profile(q_path)
    except Exception as exc:  # noqa: BLE001 - a profile is information, never a reason to fail calibration
        profile = {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    notes = check_fused(profile, excluded, "CPU INT8") if "error" not in profile else []
    for note in notes:
        log.warning("calibrate: %s", note)
    return model.SerializeToString(), {"layout": CPU_LAYOUT, "check": layout.to_dict(), "ort_nodes": profile,
                                       "notes": notes}


def check_min_agreement(value: float) -> None:
    """Agreement is in percent; 0.99 is almost surely meant as 99 %."""
    if not 0.0 <= float(value) <= 100.0:
        raise ConfigError(f"calibrate.min_agreement {value}: a percentage between 0 and 100 (e.g. 99.0)")
    if 0.0 < float(value) <= 1.0:
        raise ConfigError(f"calibrate.min_agreement {value}: agreement is in percent — write 99.0 for 99 %")


def _write_artefact(path: Path, data: bytes, contract, fp32_sha: str, extra: Dict[str, Any],
                    inputs: Optional[Dict[str, str]] = None) -> None:
    atomic_write(path, data)
    write_manifest(path, Manifest(kind="int8_onnx", precision="int8", labels=list(contract.labels),
                                  preprocess=contract.preprocess.to_dict(), crop=contract.to_dict()["crop"],
                                  inputs={"fp32_onnx": fp32_sha, **(inputs or {})}, extra=extra))


def _source_comparison(quantize_for, data: GateData, source: ImageSet, excluded, target_ranges, workdir: Path):
    """The same model calibrated on source images: ranges vs the target's, and how it fares at the gate."""
    cache = workdir / "ranges_source.json"
    out = workdir / "int8_source.onnx"
    quantize_for(out, cache, x=source.x, nodes_to_exclude=excluded)
    ranges = qdq.inspect_qdq(onnx.load(str(out))).activation_scales
    common = [k for k in ranges if k in target_ranges and target_ranges[k] > 0]
    ratio = float(np.median([ranges[k] / target_ranges[k] for k in common])) if common else None
    sess = session(out)
    comp: Dict[str, Any] = {"images": source.summary(), "ranges": qdq.range_summary(ranges),
                            "amax_ratio_median": ratio,
                            "gate": asdict(agreement(data.fp32_probs, predict(sess, data.x)))}
    if data.has_validation:
        comp["metrics"] = score(predict(sess, data.val_x), data.val_y, data.val_fp32_probs).to_dict()
    return comp


def calibrate(model: PathLike, images: PathLike, out: PathLike, method: str = _Defaults.method,
              num_images: int = _Defaults.num_images, min_images: int = _Defaults.min_images,
              eval_data: Optional[PathLike] = None, max_drop: Optional[float] = _Defaults.max_drop,
              detect: bool = False, compare_source: Optional[PathLike] = None,
              trt_version: str = _Defaults.trt_version, max_fallback_layers: int = _Defaults.max_fallback_layers,
              seed: int = _Defaults.seed, gate_images: Optional[PathLike] = None,
              min_agreement: float = _Defaults.min_agreement, gate_max_images: int = _Defaults.gate_images,
              cpu: bool = _Defaults.cpu, cpu_reduce_range: bool = _Defaults.cpu_reduce_range,
              splits: Optional[Dict[str, str]] = None) -> CalibrationResult:
    """Quantize ``model`` on ``images`` into ``out`` (TensorRT Q/DQ + sidecar, ``.cache``, ``.json``/``.md``
    report) and, with ``cpu``, ``<out stem>-cpu.onnx`` (ONNX Runtime's U8S8 layout) from the same ranges.

    Defaults are :class:`~fer_edge.calibration.config.CalibrateConfig`'s (the ``calibrate:`` section's).
    The gate (label-free, see :mod:`.gate`) compares each flavour with FP32 on ``gate_images`` — or on a
    share of ``images`` held back before calibration — and needs ``min_agreement`` % top-1 agreement.
    ``eval_data`` is a labelled *validation* set (never the split a report quotes): its accuracy drop is
    reported and, when ``max_drop`` is set, gated too. ``splits`` names the data roles for the report
    (e.g. ``{"calibration": "target", "gate": "target_val", "scored": "target_test"}``).

    Raises DataError for unusable or overlapping image sets, ModelError for an unusable model and
    :class:`GateFailed` when a flavour stays below the gate even with ``max_fallback_layers`` in float.
    """
    t0 = time.perf_counter()
    model, out = Path(model), Path(out)
    qdq.calibration_method(method)  # validate early
    check_min_agreement(min_agreement)
    fp32 = _fp32_contract(model)
    contract = fp32.contract
    fp32_sha = sha256_file(model)
    sets = load_sets(contract, images, num_images, min_images, gate_images=gate_images,
                     gate_max_images=gate_max_images, eval_data=eval_data, detect=detect, seed=seed)
    calib = sets.calibration
    source = (load_images(compare_source, contract, num_images, min_images, detect=detect, seed=seed,
                          role="source comparison") if compare_source else None)
    cpu_out = cpu_artefact_path(out) if cpu else None
    log.info("calibrate: %s → %s%s, method %s on %d target images; gate on %d held-out faces", model, out,
             f" + {cpu_out.name}" if cpu_out else "", method, len(calib), len(sets.gate))

    with tempfile.TemporaryDirectory(prefix="fer-edge-calib-") as tmp:
        work = Path(tmp)
        pre = qdq.pre_process(model, work / "pre.onnx")
        ranges_cache = work / "ranges_target.json"
        qdq.compute_ranges(pre, calib.x, method, ranges_cache)
        caches = {"tensorrt": ranges_cache}
        if cpu:
            caches["cpu"] = cpu_ranges(pre, ranges_cache, work / "ranges_target_cpu.json")

        def quantize_for(path, cache, x=None, nodes_to_exclude=(), nodes_to_quantize=None, flavour="tensorrt"):
            return qdq.quantize(pre, path, method, cache, x=x, nodes_to_exclude=nodes_to_exclude,
                                nodes_to_quantize=nodes_to_quantize, flavour=flavour, reduce_range=cpu_reduce_range)

        def quantize_target(path, flavour="tensorrt", nodes_to_exclude=(), nodes_to_quantize=None):
            return quantize_for(path, caches[flavour], nodes_to_exclude=nodes_to_exclude,
                                nodes_to_quantize=nodes_to_quantize, flavour=flavour)

        fp32_sess = session(model)
        data = GateData(sets.gate.x, predict(fp32_sess, sets.gate.x))
        if sets.validation is not None:
            data.val_x, data.val_y = sets.validation.x, sets.validation.labels
            data.val_fp32_probs = predict(fp32_sess, sets.validation.x)
        paths = {"tensorrt": work / "int8.onnx", **({"cpu": work / "int8-cpu.onnx"} if cpu else {})}
        gate = run_gate(quantize_target, paths, qdq.candidate_nodes(onnx.load(str(pre))), data, min_agreement,
                        max_drop if sets.validation is not None else None, max_fallback_layers, work)
        excluded, cpu_excluded = gate.excluded_for("tensorrt"), gate.excluded_for("cpu")
        final = _finalise(paths["tensorrt"], fp32.metadata)
        info = qdq.inspect_qdq(final)
        blob = final.SerializeToString()
        cpu_blob, cpu_report = (_finalise_cpu(paths["cpu"], fp32.metadata, cpu_excluded) if cpu else (None, None))
        comparison = (_source_comparison(quantize_for, data, source, excluded, info.activation_scales, work)
                      if source is not None else None)

    passed = gate.passed
    report_json = calib_report_path(out)
    report: Dict[str, Any] = {
        "status": "passed" if passed else "FAILED INT8 gate — no model written",
        "out": str(out), "cpu_out": str(cpu_out) if cpu_out else None, "fp32_model": str(model),
        "fp32_sha256": fp32_sha, "method": method,
        "images": {**calib.summary(), "detect": detect}, "sets": sets.summary(), "splits": dict(splits or {}),
        "ranges": qdq.range_summary(info.activation_scales),
        "sizes": {"fp32_bytes": model.stat().st_size, "int8_bytes": len(blob) if passed else None,
                  "int8_cpu_bytes": len(cpu_blob) if passed and cpu_blob else None},
        "excluded": excluded, "cpu_excluded": cpu_excluded if cpu else None, "float_nodes": info.float_nodes,
        "cpu": cpu_report,
        "gate": gate.to_dict(), "compare_source": comparison,
        "trt_cache": None, "trt_cache_header": cache_header(trt_version),
    }
    result = CalibrationResult(path=None, passed=passed, method=method, num_images=len(calib),
                               image_list_sha256=calib.list_hash, excluded=excluded, cpu_excluded=cpu_excluded,
                               gate=gate)
    if not passed:
        result.report_paths = write_reports(report, report_json)
        result.report, result.seconds = report, time.perf_counter() - t0
        kept = max(len(v) for v in gate.excluded.values()) if gate.excluded else 0
        raise GateFailed(f"INT8 {_gate_words(gate)} even with {kept} layer(s) in float; {out} NOT written. "
                         f"See {report_json} — calibrate on more/other target images, try another --method, or "
                         "lower --min-agreement knowingly", result)

    gate_extra = {"min_agreement": min_agreement, "agreement": gate.agreement, "max_drop": gate.max_drop,
                  "drop": gate.drop, "gate_images": sets.gate.summary(),
                  "checks": {f: asdict(c) for f, c in gate.checks.items()}, "splits": dict(splits or {})}
    extra = {"method": method, "flavour": "tensorrt", "images": report["images"], "excluded": excluded,
             "gate": gate_extra}
    _write_artefact(out, blob, contract, fp32_sha, extra)
    if cpu_out is not None:
        _write_artefact(cpu_out, cpu_blob, contract, fp32_sha,
                        {**extra, "flavour": "cpu", "excluded": cpu_excluded, "layout": CPU_LAYOUT,
                         "reduce_range": cpu_reduce_range},
                        inputs={"int8_onnx": sha256_file(out)})
    cache_path = calib_cache_path(out)
    write_cache(cache_path, info.activation_scales, trt_version)
    write_manifest(cache_path, Manifest(kind="calibration_cache", precision="int8", labels=list(contract.labels),
                                        preprocess=contract.preprocess.to_dict(), crop=contract.to_dict()["crop"],
                                        inputs={"fp32_onnx": fp32_sha},
                                        extra={"trt_version": trt_version, "header": cache_header(trt_version),
                                               "method": method, "excluded": excluded}))
    report["trt_cache"] = str(cache_path)
    result.path, result.cache_path, result.cpu_path = out, cache_path, cpu_out
    result.report_paths = write_reports(report, report_json)
    result.report, result.seconds = report, time.perf_counter() - t0
    log.info("calibrate: wrote %s (%.1f KiB)%s + %s and %s in %.1f s", out, len(blob) / 1024,
             f", {cpu_out.name}" if cpu_out else "", cache_path.name, report_json.name, result.seconds)
    return result


def _gate_words(gate: GateResult) -> str:
    parts = [f"top-1 agreement with FP32 {gate.agreement:.2f} % (needs {gate.min_agreement:.2f})"]
    if gate.drop is not None and gate.max_drop is not None:
        parts.append(f"validation accuracy drop {gate.drop:.2f} pt (limit {gate.max_drop:.2f})")
    return "fails the gate: " + ", ".join(parts)
