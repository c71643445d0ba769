"""The calibration report: ``model.int8.json`` (machine-readable) and ``model.int8.md`` (a table).

It says what a reviewer needs to trust (or distrust) an INT8 model: which images set the ranges and
which judged them (counts + sha256 of each list, their overlap: none), the data roles (which split
gated, which one a report scores), each INT8 flavour's agreement with FP32, the validation accuracy
drop when labels were given, what ONNX Runtime runs the CPU model as, every layer kept in float and
why, the widest activation ranges, sizes, and — with ``--compare-source`` — the same model calibrated
on source images side by side, which shows what target-domain calibration buys.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Union

from fer_edge.runtime.atomic import atomic_write
from fer_edge.runtime.metrics import percent


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _gate_rows(report: Mapping[str, Any]) -> List[str]:
    gate = report.get("gate") or {}
    if not gate:
        return ["The gate did not run.", ""]
    sets = report.get("sets") or {}
    g = sets.get("gate") or {}
    where = ("held back from the calibration folder" if g.get("held_back_from_calibration_folder")
             else f"`{g.get('source')}`")
    rows = [f"Label-free: each INT8 flavour against FP32 on {g.get('count', '?')} unlabelled target faces "
            f"({where}; none of them calibrated anything).", "",
            "| flavour | top-1 agreement % | mean KL | max prob shift | mean TV | validation accuracy % | drop pt "
            "| verdict |", "|---|---|---|---|---|---|---|---|"]
    for name, c in (gate.get("checks") or {}).items():
        a, v = c["gate"], c.get("validation") or {}
        rows.append(f"| {name} | {_fmt(a['agreement'])} | {_fmt(a['mean_kl'], 5)} | {_fmt(a['max_prob_shift'], 3)} | "
                    f"{_fmt(a['mean_tv'], 4)} | {_fmt(percent(v.get('accuracy')))} | {_fmt(c.get('drop'))} | "
                    f"{'ok' if c['passed'] else 'fails'} |")
    limit = f"top-1 agreement ≥ {_fmt(gate['min_agreement'])} %"
    if gate.get("max_drop") is not None:
        limit += f" and validation drop ≤ {_fmt(gate['max_drop'])} pt"
    rows += ["", f"Gate: {limit} — **{'PASSED' if gate['passed'] else 'FAILED'}**", ""]
    val = gate.get("fp32_validation")
    if val:
        vs = sets.get("validation") or {}
        rows += [f"Labelled validation set `{vs.get('source')}` ({val['n']} faces): FP32 accuracy "
                 f"{_fmt(percent(val['accuracy']))} %, macro-F1 {_fmt(percent(val['macro_f1']))} %. It is a "
                 "validation split: the "
                 "accuracy a report quotes comes from another one.", ""]
    else:
        rows += ["No labelled validation set was given (`--eval`): no accuracy was measured here.", ""]
    return rows


def _sets_rows(report: Mapping[str, Any]) -> List[str]:
    sets = report.get("sets") or {}
    rows = ["| set | source | images | list sha256 |", "|---|---|---|---|"]
    for name in ("calibration", "gate", "validation"):
        s = sets.get(name)
        if s:
            rows.append(f"| {name} | `{s['source']}` | {s['count']} | `{s['list_sha256'][:16]}…` |")
    overlap = sets.get("overlap") or {}
    rows += ["", "Overlap with the calibration images ("
             f"{sets.get('disjoint_by', 'by content')}): " + ", ".join(f"{k} {v}" for k, v in overlap.items()), ""]
    splits = report.get("splits") or {}
    if splits:
        rows += ["Data roles: " + ", ".join(f"{k}: `{v}`" for k, v in splits.items()) + ".", ""]
    return rows


def _cpu_rows(report: Mapping[str, Any]) -> List[str]:
    cpu = report.get("cpu")
    if not cpu:
        return ["Not written (`--no-cpu` / `calibrate.cpu: false`).", ""]
    prof = cpu.get("ort_nodes") or {}
    rows = [f"`{Path(str(report.get('cpu_out'))).name}`: {cpu['layout']}.", ""]
    if "int8" in prof:
        rows.append(f"ONNX Runtime's CPU provider runs it as {prof['nodes']} nodes: **{prof['int8']} in int8**, "
                    f"{prof['float_compute']} Conv/Gemm in float, {prof['qdq']} Quantize/DequantizeLinear left "
                    "unfused (" + ", ".join(f"{k} ×{v}" for k, v in prof["ops"].items()) + ").")
    rows += [f"- {n}" for n in cpu.get("notes") or []]
    return rows + [""]


def markdown(report: Mapping[str, Any]) -> str:
    r = report
    lines = [f"# INT8 calibration report — {Path(r['out']).name}", "",
             f"- status: **{r['status']}**",
             f"- FP32 model: `{r['fp32_model']}` (sha256 `{r['fp32_sha256'][:16]}…`)",
             f"- method: {r['method']}, calibration images: {r['images']['count']} usable of {r['images']['found']} "
             f"found in `{r['images']['source']}` (list sha256 `{r['images']['list_sha256'][:16]}…`, "
             f"{r['images']['skipped']} skipped)",
             f"- sizes: FP32 {r['sizes']['fp32_bytes'] / 1024:.1f} KiB, INT8 (TensorRT Q/DQ) "
             f"{_fmt((r['sizes'].get('int8_bytes') or 0) / 1024, 1)} KiB, INT8 (CPU) "
             f"{_fmt((r['sizes'].get('int8_cpu_bytes') or 0) / 1024, 1)} KiB",
             ""]
    lines += ["## Image sets", ""] + _sets_rows(r)
    lines += ["## Gate", ""] + _gate_rows(r)
    lines += ["## CPU INT8 model (ONNX Runtime)", ""] + _cpu_rows(r)
    sens = (r.get("gate") or {}).get("sensitivity") or {}
    for title, ex, flavour in (("TensorRT Q/DQ model", r.get("excluded") or [], "tensorrt"),
                               ("CPU model", r.get("cpu_excluded"), "cpu")):
        if ex is None:  # no CPU model was asked for
            continue
        lines += [f"## Layers kept in float: {title}", ""]
        if ex:
            score = {s["node"]: s["score"] for s in sens.get(flavour, [])}
            lines += ["| layer | sensitivity (mean TV distance to FP32) |", "|---|---|"]
            lines += [f"| `{n}` | {_fmt(score.get(n), 4)} |" for n in ex]
        else:
            lines.append("None: every Conv/Gemm/Add is quantized.")
        lines.append("")
    rng = r.get("ranges", {})
    lines += ["## Activation ranges (amax = 127 × scale)", "",
              f"{rng.get('tensors', 0)} tensors; amax min {_fmt(rng.get('amax_min'), 3)}, median "
              f"{_fmt(rng.get('amax_median'), 3)}, max {_fmt(rng.get('amax_max'), 3)}.", ""]
    if rng.get("widest"):
        lines += ["| widest tensors | amax |", "|---|---|"]
        lines += [f"| `{w['tensor']}` | {_fmt(w['amax'], 3)} |" for w in rng["widest"]]
    comp = r.get("compare_source")
    if comp:
        cr = comp.get("ranges", {})
        m = comp.get("metrics") or {}
        lines += ["", "## Source-calibrated comparison", "",
                  f"INT8 source-calibrated on {comp['images']['count']} source images from "
                  f"`{comp['images']['source']}` "
                  f"with the same method and float layers (TensorRT flavour); amax median "
                  f"{_fmt(cr.get('amax_median'), 3)} (target {_fmt(rng.get('amax_median'), 3)}), median amax ratio "
                  f"source/target {_fmt(comp.get('amax_ratio_median'), 3)}; top-1 agreement with FP32 on the gate "
                  f"faces {_fmt(comp['gate']['agreement'])} %"
                  + (f", validation accuracy {_fmt(percent(m.get('accuracy')))} %." if m else "."), ""]
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
