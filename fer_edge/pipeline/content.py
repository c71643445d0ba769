"""What the pipeline report says: built only from the stages' recorded results (their stamps and JSON).

Every number in the report is read from a stage's output JSON, never recomputed here, so the report
and the artefacts cannot disagree (a test checks this on the ci config).
"""
from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional

from fer_edge.runtime.contract import LABELS

from . import plots
from .report import Figure, Section, Table, write_report
from .runner import Context


def _f(v: Any) -> Optional[float]:
    return float(v) if isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v)) else None


def _num(v: Any) -> str:
    f = _f(v)
    return "—" if f is None else f"{f:.2f}"


def _pct(v: Any) -> str:
    f = _f(v)
    return "—" if f is None else f"{100 * f:.1f} %"


def adaptation_section(ctx: Context) -> Section:
    train = ctx.result("train")
    methods: Dict[str, Dict[str, Any]] = train.get("methods", {})
    selected = train.get("selected")
    base = _f(methods.get("source_only", {}).get("target_test_accuracy"))
    oracle = _f(methods.get("target_oracle", {}).get("target_test_accuracy"))
    rows: List[List[Any]] = []
    for m, s in methods.items():
        acc = _f(s.get("target_test_accuracy"))
        verdict = ""
        if m not in ("source_only", "target_oracle") and acc is not None and base is not None:
            verdict = "beats source-only" if acc > base else "does NOT beat source-only"
            if oracle is not None and oracle > base:
                verdict += f"; closes {100 * (acc - base) / (oracle - base):.0f} % of the gap"
        rows.append([m + (" ← selected" if m == selected else ""), s.get("selector"),
                     _f((s.get("selector_scores") or {}).get(s.get("selector", ""))), s.get("selected_epoch"),
                     _pct(s.get("target_test_accuracy")), _pct(s.get("target_test_macro_f1")),
                     _pct(s.get("source_test_accuracy")), _pct(s.get("oracle_selected_target_accuracy")), verdict])
    sec = Section("Source-only vs adapted vs oracle on the target", paragraphs=[
        "Each method's checkpoint was chosen without target labels by its label-free selector on the unlabelled "
        "target validation split; the model that goes to export is the one with the best label-free score among "
        f"everything trained except the oracle (here: {selected}). The 'oracle-selected' column is the best epoch "
        "in hindsight by target-test accuracy — shown to expose the cost of selecting without labels, never used.",
    ], tables=[Table(["method", "selector", "score", "epoch", "target acc", "target macro-F1", "source acc",
                      "oracle-selected target acc", "verdict"], rows)])
    for m in methods:
        sec.figures.append(Figure(ctx.out / "train" / m / "curves.png", f"training curves — {m}"))
    panels = [("source-only", ctx.out / "train" / "source_only" / "features.npz")]
    if selected and selected != "source_only":
        panels.append((selected, ctx.out / "train" / selected / "features.npz"))
    proj = plots.feature_projection(panels, LABELS, ctx.out / "report" / "features_pca.png")
    if proj:
        sec.figures.append(Figure(proj, "2-D PCA of test-face features: source (blue) vs target (orange), "
                                        "before (source-only) and after adaptation"))
    return sec


def _recall(m: Dict[str, Any]) -> Dict[str, float]:
    return {lab: float(v.get("recall", 0.0)) for lab, v in (m.get("per_class") or {}).items()}


def int8_section(ctx: Context) -> Section:
    ev = ctx.result("eval").get("models", {})
    cal = ctx.stamps.get("calibrate")
    rows = []
    for name, m in ev.items():
        rows.append([name, m.get("backend"), m.get("precision"), m.get("n"), _pct(m.get("accuracy")),
                     _pct(m.get("macro_f1"))])
    sec = Section("Every artefact on the labelled target test split (FP32 vs INT8)",
                  tables=[Table(["artefact", "backend", "precision", "faces", "accuracy", "macro-F1"], rows)])
    if cal is not None:
        c = cal.result
        gate = c.get("gate") or {}
        roles = c.get("splits") or {}
        sec.paragraphs.append(
            f"Calibration: {c.get('method')} on {c.get('num_images')} unlabelled target images "
            f"(image-list sha256 {str(c.get('image_list_sha256', ''))[:12]}…); status: {cal.status}. "
            f"Gated (label-free) on {roles.get('gate', '—')}: top-1 agreement with FP32 "
            f"{_num(gate.get('agreement'))} % (needs {_num(gate.get('min_agreement'))}); accuracy drop on "
            f"{roles.get('validation', '—')}: {_num(gate.get('drop'))} points; layers kept in float: "
            f"{', '.join(c.get('excluded') or []) or 'none'} (TensorRT model), "
            f"{', '.join(c.get('cpu_excluded') or []) or 'none'} (CPU model). "
            f"The accuracies above are on {roles.get('scored', 'target_test')}, which chose nothing. On the CPU, "
            "ONNX Runtime runs model.int8-cpu.onnx (same ranges, uint8 activations) in place of model.int8.onnx.")
    series = {k: _recall(v) for k, v in ev.items() if k in ("ONNX FP32", "ONNX INT8")}
    bars = plots.per_class_bars(series, LABELS, ctx.out / "report" / "fp32_vs_int8.png")
    if bars:
        sec.figures.append(Figure(bars, "per-class recall on the target test split, FP32 vs INT8"))
    for name, m in ev.items():
        if m.get("dir"):
            sec.figures.append(Figure(Path(m["dir"]) / "confusion.png", f"confusion matrix — {name}"))
    return sec


def speed_section(ctx: Context) -> Section:
    b = ctx.result("bench")
    rows = []
    for name, p in (b.get("paths") or {}).items():
        lat = p.get("latency") or {}
        thr = p.get("throughput") or {}
        rows.append([name, p.get("status"), lat.get("p50_ms"), lat.get("p95_ms"), lat.get("p99_ms"),
                     thr.get("1"), thr.get("8"), thr.get("32"), p.get("size_mb"), p.get("peak_rss_mb"),
                     p.get("reason", "")[:60]])
    sec = Section("Latency and throughput by backend", paragraphs=[
        f"Measured by `fer-edge bench` in this run on {b.get('machine', {}).get('cpu', {}).get('model', 'this CPU')}; "
        "ratios are the headline because absolute times vary by machine."],
        tables=[Table(["path", "status", "p50 ms", "p95 ms", "p99 ms", "img/s b1", "img/s b8", "img/s b32",
                       "size MB", "peak RSS MB", "note"], rows)])
    ratios = b.get("ratios") or {}
    if ratios:
        sec.tables.append(Table(["ratio", "value"], [[k, v] for k, v in ratios.items()], caption="speed ratios"))
    goals = b.get("goals") or []
    if goals:
        sec.tables.append(Table(list(goals[0].keys()), [list(g.values()) for g in goals], caption="goals"))
    for png in sorted((ctx.out / "bench").glob("*.png")):
        sec.figures.append(Figure(png, png.stem.replace("_", " ")))
    return sec


def runtime_section(ctx: Context) -> Section:
    r = ctx.result("run")
    lat = (r.get("latency_ms") or {}).get("total", {})
    stills = r.get("stills")
    what = f"the stills in {r.get('footage')}" if stills else f"`{Path(str(r.get('footage') or r.get('video'))).name}`"
    lines = [f"Model {Path(str(r.get('model', ''))).name} through `fer_edge.runtime` (no torch) on {what}: "
             f"{r.get('frames')} frames, {r.get('faces')} faces, {r.get('fps')} FPS end to end on this machine, "
             f"detection every {r.get('detect_every')} frames; faults counted: {r.get('faults') or 'none'}."]
    if stills:
        acc = stills.get("accuracy_on_found")
        lines.append(f"Every still is its own frame: the runtime's detector found a face in {stills['faces_found']} of "
                     f"{stills['images']}" + (f"; on those, the runtime's label is the folder's label for "
                                              f"{100 * acc:.1f} %" if acc is not None else "") +
                     " -- the whole deployed road (detector, crop, preprocessing, the deployed model) on these faces.")
    cabin = r.get("footage") and r.get("footage") == ctx.result("synth").get("video")
    title = "real faces (stills)" if stills else "the cabin video" if cabin else "the footage"
    sec = Section(f"The runtime on {title}", paragraphs=lines,
        tables=[Table(["stage", "p50 ms", "p95 ms", "p99 ms"],
                      [[k, v.get("p50"), v.get("p95"), v.get("p99")] for k, v in (r.get("latency_ms") or {}).items()],
                      caption=f"per-stage latency (total p99 {lat.get('p99', '—')} ms)")])
    hist = plots.latency_histogram(ctx.out / "run" / "results.jsonl", ctx.out / "report" / "latency_hist.png")
    if hist:
        sec.figures.append(Figure(hist, "frame latency histogram"))
    import cv2

    frames = [cv2.imread(p) for p in r.get("frames_png", [])]
    strip = plots.frame_strip(frames, ctx.out / "report" / "frames_strip.png")
    if strip:
        sec.figures.append(Figure(strip, "annotated frames from the runtime run (track id, label, score)"))
    return sec


def build_section(ctx: Context) -> Section:
    st = ctx.stamps.get("build")
    if st is None:
        return Section("TensorRT engine", ["not run"])
    if st.status == "skipped":
        model = Path(str(st.result.get("model") or "model.int8.onnx")).name
        note = ("" if model.endswith(".int8.onnx") else
                " The INT8 model failed its accuracy gate, so the FP32 ONNX is the one to deploy (FP16 on the device).")
        return Section("TensorRT engine", [
            "Skipped: TensorRT is not installed on this machine. On the device, build the engine with "
            f"`fer-edge build --model {model}` or the equivalent trtexec command:{note}",
            f"`{st.result.get('trtexec', '')}`"])
    return Section("TensorRT engine", [f"Built: {st.result}"])


def overview_section(ctx: Context) -> Section:
    rows = [[n, st.status, f"{st.seconds:.1f}", str(st.result.get("headline", ""))[:120]]
            for n, st in ctx.stamps.items() if n != "report"]
    splits = ctx.result("synth").get("splits", {})
    paragraphs = [
        f"Config `{ctx.cfg.name}`; generated {datetime.now(timezone.utc).isoformat(timespec='seconds')}. "
        "Source: " + ", ".join(f"{k} {v.get('count')} faces ({v.get('domain')})" for k, v in splits.items()) + "."]
    synthetic = synthetic_roles(ctx.cfg)
    if synthetic:
        paragraphs.insert(0, SYNTHETIC_NOTE.format(roles=", ".join(synthetic)))
    return Section("Overview", paragraphs=paragraphs, tables=[Table(["stage", "status", "seconds", "result"], rows)])


#: Said at the top of a report whose scores come from the synthetic world.
SYNTHETIC_NOTE = ("**Synthetic faces.** The accuracies in this report are measured on the embedded synthetic world "
                  "({roles}): rendered cartoon heads, not real faces. They show the road works; they say nothing "
                  "about a real camera. Real-face figures: docs/results/real-faces.md "
                  "(`fer-edge pipeline --config real --set data.source=… data.target=…` for your own faces).")


def synthetic_roles(cfg: Any) -> List[str]:
    """The data roles the report's scores read (target test, source test) that are synthetic."""
    from fer_edge.data.sources import is_synthetic

    return [r for r in ("target_test", "source_test") if is_synthetic(getattr(cfg.data, r, None))]


def build_report(ctx: Context, d: Path) -> List[Path]:
    (ctx.out / "report").mkdir(parents=True, exist_ok=True)
    sections = [overview_section(ctx), adaptation_section(ctx), int8_section(ctx), speed_section(ctx),
                runtime_section(ctx), build_section(ctx)]
    # At the top of the run folder, where people look for it; figure links in report.md are relative to it.
    return write_report(ctx.out, f"fer-edge report — {ctx.cfg.name}", sections)
