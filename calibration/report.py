"""The calibration report: ``model.int8.json`` (machine-readable) and ``model.int8.md`` (a table).

It says what a reviewer needs to trust (or distrust) an INT8 model: which images set the ranges
(count + sha256 of the list), the widest activation ranges, FP32 vs INT8 metrics, sizes, every
layer kept in float and why, and — with ``--compare-source`` — the same model calibrated on source
images side by side, which shows what target-domain calibration buys.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Union

from fer_edge.runtime.atomic import atomic_write


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _metric_rows(report: Mapping[str, Any]) -> List[str]:
    gate = report.get("gate") or {}
    cols = [("FP32", gate.get("fp32")), ("INT8 (target-calibrated)", gate.get("int8"))]
    comp = report.get("compare_source") or {}
    if comp.get("metrics"):
        cols.append(("INT8 (source-calibrated)", comp["metrics"]))
    if not gate:
        return ["No labelled evaluation set was given (`--eval`), so the accuracy gate did not run.", ""]
    rows = ["| model | accuracy % | macro-F1 % | argmax agreement with FP32 % | images |",
            "|---|---|---|---|---|"]
    for name, m in cols:
        if m:
            rows.append(f"| {name} | {_fmt(m['accuracy'])} | {_fmt(m['macro_f1'])} | "
                        f"{_fmt(m.get('agreement')) if m.get('agreement') is not None else '—'} | {m['n']} |")
    rows += ["", f"Accuracy drop: **{_fmt(gate['drop'])} pt** (gate {_fmt(gate['max_drop'])} pt) — "
             f"**{'PASSED' if gate['passed'] else 'FAILED'}**", ""]
    return rows


def markdown(report: Mapping[str, Any]) -> str:
    r = report
    lines = [f"# INT8 calibration report — {Path(r['out']).name}", "",
             f"- status: **{r['status']}**",
             f"- FP32 model: `{r['fp32_model']}` (sha256 `{r['fp32_sha256'][:16]}…`)",
             f"- method: {r['method']}, calibration images: {r['images']['count']} usable of {r['images']['found']} "
             f"found in `{r['images']['source']}` (list sha256 `{r['images']['list_sha256'][:16]}…`, "
             f"{r['images']['skipped']} skipped)",
             f"- sizes: FP32 {r['sizes']['fp32_bytes'] / 1024:.1f} KiB, INT8 "
             f"{_fmt((r['sizes'].get('int8_bytes') or 0) / 1024, 1)} KiB",
             ""]
    lines += ["## Accuracy", ""] + _metric_rows(r)
    ex = r.get("excluded") or []
    lines += ["## Layers kept in float", ""]
    if ex:
        sens = {s["node"]: s["score"] for s in (r.get("gate") or {}).get("sensitivity", [])}
        lines += ["| layer | sensitivity (mean TV distance to FP32) |", "|---|---|"]
        lines += [f"| `{n}` | {_fmt(sens.get(n), 4)} |" for n in ex]
    else:
        lines.append("None: every Conv/Gemm/Add is quantized.")
    rng = r.get("ranges", {})
    lines += ["", "## Activation ranges (amax = 127 × scale)", "",
              f"{rng.get('tensors', 0)} tensors; amax min {_fmt(rng.get('amax_min'), 3)}, median "
              f"{_fmt(rng.get('amax_median'), 3)}, max {_fmt(rng.get('amax_max'), 3)}.", ""]
    if rng.get("widest"):
        lines += ["| widest tensors | amax |", "|---|---|"]
        lines += [f"| `{w['tensor']}` | {_fmt(w['amax'], 3)} |" for w in rng["widest"]]
    comp = r.get("compare_source")
    if comp:
        cr = comp.get("ranges", {})
        lines += ["", "## Source-calibrated comparison", "",
                  f"Calibrated on {comp['images']['count']} source images from `{comp['images']['source']}` "
                  f"with the same method and float layers; amax median {_fmt(cr.get('amax_median'), 3)} "
                  f"(target {_fmt(rng.get('amax_median'), 3)}), median amax ratio source/target "
                  f"{_fmt(comp.get('amax_ratio_median'), 3)}.", ""]
    if r.get("trt_cache"):
        lines += ["", f"TensorRT calibration cache: `{Path(r['trt_cache']).name}` (header `{r['trt_cache_header']}`)."]
    return "\n".join(lines) + "\n"


def write_reports(report: Dict[str, Any], json_path: Union[str, os.PathLike]) -> Dict[str, Path]:
    """Write ``<name>.json`` and ``<name>.md`` atomically; returns both paths."""
    json_path = Path(json_path)
    md_path = json_path.with_suffix(".md")
    atomic_write(json_path, json.dumps(report, indent=2, sort_keys=True, default=str) + "\n")
    atomic_write(md_path, markdown(report))
    return {"json": json_path, "markdown": md_path}
