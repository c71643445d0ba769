"""``calibrate``: FP32 ONNX + target-domain faces → INT8 Q/DQ ONNX, TensorRT cache, gate and report.

The order is the point: the model is only written after its Q/DQ layout passed the self-check
(int8, zero-point 0, per-channel weights, float biases, TensorRT operators) and, with an evaluation
set, after the accuracy gate. A model over the gate raises :class:`GateFailed` after writing the
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
from fer_edge.runtime.atomic import atomic_write
from fer_edge.runtime.backends.base import META_PRECISION
from fer_edge.runtime.errors import ModelError
from fer_edge.runtime.manifest import Manifest, sha256_file, write_manifest

from . import qdq
from .cache import cache_header, write_cache
from .gate import GateResult, run_gate
from .images import ImageSet, load_images
from .metrics import evaluate, predict, session
from .report import write_reports

log = logging.getLogger(__name__)
PathLike = Union[str, Path]
EVAL_MAX_IMAGES = 100_000


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
    excluded: List[str] = field(default_factory=list)
    gate: Optional[GateResult] = None
    cache_path: Optional[Path] = None
    report_paths: Dict[str, Path] = field(default_factory=dict)
    report: Dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready (paths as strings); the full report is in ``report`` / the report files."""
        d = {k: v for k, v in asdict(self).items() if k != "report"}
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


def _source_comparison(quantize_for, fp32_probs, eval_set, source: ImageSet, excluded, target_ranges, workdir: Path):
    cache = workdir / "ranges_source.json"
    out = workdir / "int8_source.onnx"
    quantize_for(out, cache, x=source.x, nodes_to_exclude=excluded)
    ranges = qdq.inspect_qdq(onnx.load(str(out))).activation_scales
    common = [k for k in ranges if k in target_ranges and target_ranges[k] > 0]
    ratio = float(np.median([ranges[k] / target_ranges[k] for k in common])) if common else None
    comp: Dict[str, Any] = {"images": {"count": len(source), "source": source.source, "list_sha256": source.list_hash},
                            "ranges": qdq.range_summary(ranges), "amax_ratio_median": ratio}
    if eval_set is not None:
        comp["metrics"] = evaluate(predict(session(out), eval_set.x), eval_set.labels, fp32_probs).to_dict()
    return comp


def calibrate(model: PathLike, images: PathLike, out: PathLike, method: str = "entropy", num_images: int = 500,
              min_images: int = 100, eval_data: Optional[PathLike] = None, max_drop: float = 1.0,
              detect: bool = False, compare_source: Optional[PathLike] = None, trt_version: str = "10.3.0",
              max_fallback_layers: int = 16, seed: int = 0) -> CalibrationResult:
    """Quantize ``model`` on ``images`` into ``out`` (+ sidecar, ``.cache``, ``.json``/``.md`` report).

    Raises DataError for unusable image sets, ModelError for an unusable model and :class:`GateFailed`
    when the INT8 model stays over ``max_drop`` accuracy points on ``eval_data``.
    """
    t0 = time.perf_counter()
    model, out = Path(model), Path(out)
    qdq.calibration_method(method)  # validate early
    fp32 = _fp32_contract(model)
    contract = fp32.contract
    fp32_sha = sha256_file(model)
    calib = load_images(images, contract, num_images, min_images, detect=detect, seed=seed)
    eval_set = (load_images(eval_data, contract, EVAL_MAX_IMAGES, 1, labelled=True, role="evaluation")
                if eval_data else None)
    source = (load_images(compare_source, contract, num_images, min_images, detect=detect, seed=seed,
                          role="source comparison") if compare_source else None)
    log.info("calibrate: %s → %s, method %s on %d target images", model, out, method, len(calib))

    with tempfile.TemporaryDirectory(prefix="fer-edge-calib-") as tmp:
        work = Path(tmp)
        pre = qdq.pre_process(model, work / "pre.onnx")
        ranges_cache = work / "ranges_target.json"

        def quantize_for(path, cache, x=None, nodes_to_exclude=(), nodes_to_quantize=None):
            return qdq.quantize(pre, path, method, cache, x=x, nodes_to_exclude=nodes_to_exclude,
                                nodes_to_quantize=nodes_to_quantize)

        def quantize_target(path, nodes_to_exclude=(), nodes_to_quantize=None):
            return quantize_for(path, ranges_cache, nodes_to_exclude=nodes_to_exclude,
                                nodes_to_quantize=nodes_to_quantize)

        q_path = quantize_for(work / "int8.onnx", ranges_cache, x=calib.x)
        gate: Optional[GateResult] = None
        fp32_probs = None
        if eval_set is not None:
            fp32_probs = predict(session(model), eval_set.x)
            candidates = qdq.candidate_nodes(onnx.load(str(pre)))
            gate = run_gate(quantize_target, q_path, candidates, eval_set.x, eval_set.labels, fp32_probs,
                            max_drop, max_fallback_layers, work)
        excluded = list(gate.excluded) if gate else []
        final = _finalise(q_path, fp32.metadata)
        info = qdq.inspect_qdq(final)
        data = final.SerializeToString()
        comparison = (_source_comparison(quantize_for, fp32_probs, eval_set, source, excluded,
                                         info.activation_scales, work) if source is not None else None)

    passed = gate is None or gate.passed
    report_json = out.with_suffix(".json") if out.suffix == ".onnx" else out.with_name(out.name + ".report.json")
    report: Dict[str, Any] = {
        "status": "passed" if passed else "FAILED accuracy gate — no model written",
        "out": str(out), "fp32_model": str(model), "fp32_sha256": fp32_sha, "method": method,
        "images": {"count": len(calib), "found": calib.found, "source": calib.source, "skipped": len(calib.skipped),
                   "list_sha256": calib.list_hash, "detect": detect},
        "ranges": qdq.range_summary(info.activation_scales),
        "sizes": {"fp32_bytes": model.stat().st_size, "int8_bytes": len(data) if passed else None},
        "excluded": excluded, "float_nodes": info.float_nodes,
        "gate": gate.to_dict() if gate else None, "compare_source": comparison,
        "trt_cache": None, "trt_cache_header": cache_header(trt_version),
    }
    result = CalibrationResult(path=None, passed=passed, method=method, num_images=len(calib),
                               image_list_sha256=calib.list_hash, excluded=excluded, gate=gate)
    if not passed:
        result.report_paths = write_reports(report, report_json)
        result.report, result.seconds = report, time.perf_counter() - t0
        raise GateFailed(f"INT8 accuracy drop {gate.drop:.2f} pt is over the gate ({max_drop:.2f} pt) even with "
                         f"{len(excluded)} layer(s) in float; {out} NOT written. See {report_json} — calibrate on "
                         "more/other target images, try another --method, or raise --max-drop knowingly", result)

    atomic_write(out, data)
    extra = {"method": method, "images": report["images"], "excluded": excluded,
             "gate": {"fp32": gate.fp32.to_dict(), "int8": gate.int8.to_dict(), "drop": gate.drop,
                      "max_drop": max_drop} if gate else None}
    side = write_manifest(out, Manifest(kind="int8_onnx", precision="int8", labels=list(contract.labels),
                                        preprocess=contract.preprocess.to_dict(), crop=dict(contract.crop),
                                        inputs={"fp32_onnx": fp32_sha}, extra=extra))
    cache_path = out.with_suffix(".cache") if out.suffix == ".onnx" else out.with_name(out.name + ".cache")
    write_cache(cache_path, info.activation_scales, trt_version)
    write_manifest(cache_path, Manifest(kind="calibration_cache", precision="int8", labels=list(contract.labels),
                                        preprocess=contract.preprocess.to_dict(), crop=dict(contract.crop),
                                        inputs={"fp32_onnx": fp32_sha},
                                        extra={"trt_version": trt_version, "header": cache_header(trt_version),
                                               "method": method, "excluded": excluded}))
    report["trt_cache"] = str(cache_path)
    result.path, result.cache_path = out, cache_path
    result.report_paths = write_reports(report, report_json)
    result.report, result.seconds = report, time.perf_counter() - t0
    log.info("calibrate: wrote %s (%.1f KiB) + %s, %s and %s in %.1f s", out, len(data) / 1024, side.name,
             cache_path.name, report_json.name, result.seconds)
    return result
