"""Write a :class:`~fer_edge.evaluation.bench.BenchResult`: ``bench.json``, ``bench.md`` and PNG charts.

The Markdown table is what BENCHMARKS.md embeds, so it carries the command that produced it and
the machine it ran on; the ratios and goals come first because they travel between machines, the
milliseconds do not.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional

from fer_edge.runtime.atomic import atomic_write

from . import plots


def _f(v: Optional[float], fmt: str = "{:.3g}") -> str:
    return "—" if v is None else fmt.format(v)


def markdown(result: Any) -> str:
    """The benchmark as Markdown: headline ratios, goals, the per-path table, peak and video rows."""
    batches = result.settings.get("batches", [1, 8, 32])
    m = result.machine
    lines: List[str] = [
        f"Command: `{result.command}`  ",
        f"Machine: {m['cpu']['model']} ({m['cpu']['cores']} cores, {m['threads']} thread(s) per path), "
        f"onnxruntime {m['onnxruntime']}, torch {m['torch'] or '—'}, TensorRT {m['tensorrt'] or '—'}; "
        f"load average at start {', '.join(f'{x:.2f}' for x in (m.get('load_avg') or []))}  ",
        f"Run: {result.created_at}, {result.settings.get('iters')} timed calls at batch 1 after "
        f"{result.settings.get('warmup')} warm-up, paths interleaved over {result.settings.get('rounds', 1)} "
        f"rounds; peak RSS "
        f"{'per path (own subprocess, VmHWM)' if result.settings.get('isolate') else 'of the whole process'}",
        "",
        "| headline ratio (same run) | value |",
        "|---|---|",
    ]
    for key, value in result.ratios.items():
        lines.append(f"| {key.replace('_', ' ')} | {_f(value, '{:.2f}')} |")
    lines += ["", "| goal | target | measured | verdict |", "|---|---|---|---|"]
    for g in result.goals:
        verdict = "—" if g["met"] is None else ("**met**" if g["met"] else f"**missed**: {g['note']}")
        lines.append(f"| {g['goal']} | {'≤' if g.get('direction') == '<=' else '≥'} {g['target']:g} | "
                     f"{_f(g['value'], '{:.2f}')} | {verdict} |")
    lines += _accuracy_lines(getattr(result, "accuracy", None) or {})
    diagnosis = getattr(result, "diagnosis", None) or {}
    lines += _profile_lines(diagnosis)
    for name, d in diagnosis.items():
        if "ops" not in d:
            continue
        ops = ", ".join(f"{k} ×{v}" for k, v in d["ops"].items())
        lines += ["", f"{name} (`{Path(str(d.get('file', ''))).name}`): ONNX Runtime's optimised graph runs {ops}; "
                      f"activations {d['activation_type']}."]
        lines += [f"- {note}" for note in d.get("notes", [])]
    head = ["path", "size MB", "MMAC/img", "p50 ms", "p95 ms", "p99 ms"] + \
        [f"img/s b{b}" for b in batches] + ["GMAC/s", "% of peak", "peak RSS MB", "status"]
    lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in result.paths.items():
        if r.status != "ok":
            lines.append(f"| {name} | " + " | ".join(["—"] * (len(head) - 2)) + f" | {r.status}: {r.reason} |")
            continue
        lat = r.latency or {}
        ran = Path(str((r.backend_info or {}).get("path") or r.model)).name
        label = name if ran == Path(r.model).name else f"{name} (runs `{ran}`)"
        row = [label, f"{r.size_mb:.2f}", _f(r.macs_per_image / 1e6 if r.macs_per_image else None, "{:.2f}"),
               _f(lat.get("p50_ms"), "{:.3f}"), _f(lat.get("p95_ms"), "{:.3f}"), _f(lat.get("p99_ms"), "{:.3f}")]
        row += [_f(r.throughput.get(str(b)), "{:.0f}") if str(b) in r.throughput else
                f"error: {r.batch_errors.get(str(b), '—')[:40]}" for b in batches]
        row += [_f(r.gmacs_per_s, "{:.2f}"), _f(100 * r.peak_fraction if r.peak_fraction is not None else None,
                                                "{:.1f} %"),
                f"{r.peak_rss_mb:.0f}", "ok"]
        lines.append("| " + " | ".join(row) + " |")
    p = result.peak
    runs = ", ".join(f"{v['engine']} {v['dtype']} {v['gmacs_per_s']:.1f}" for v in p["runs"].values())
    lines += ["", f"GEMM peak (same run, {next(iter(p['runs'].values()))['m']}³, fastest repetition, measured before "
                  f"and after the paths): "
                  f"fp32 **{p['fp32_gmacs_per_s']:.1f} GMAC/s**, int8 **{p['int8_gmacs_per_s']:.1f} GMAC/s** "
                  f"({runs}). GMAC/s of a path = MACs per image (counted from the ONNX graph) × images/s at "
                  f"the largest batch."]
    v = result.video or {}
    if v.get("status") == "ok":
        lines.append(f"End-to-end runtime on a synthetic video ({v.get('frames')} frames, {v.get('model')}): "
                     f"**{v.get('fps', 0):.1f} FPS** ({v.get('detail', '')})")
    else:
        lines.append(f"End-to-end runtime FPS: not measured — {v.get('reason', 'unknown')}")
    return "\n".join(lines) + "\n"


def _accuracy_lines(acc: Dict[str, Any]) -> List[str]:
    if not acc:
        return []
    rows = ["", f"Accuracy on `{acc.get('data')}` (the files the paths ran, opened by the runtime):", "",
            "| path | file | faces | accuracy % | macro-F1 % |", "|---|---|---|---|---|"]
    for name in ("ort-fp32", "ort-int8"):
        a = acc.get(name)
        if a:
            rows.append(f"| {name} | `{Path(str(a['file'])).name}` | {a['n']} | {a['accuracy']:.2f} | "
                        f"{a['macro_f1']:.2f} |")
    if acc.get("int8_drop_pt") is not None:
        rows += ["", f"INT8 accuracy drop: **{acc['int8_drop_pt']:.2f} pt**."]
    return rows


def _profile_row(name: str, file: str, prof: Dict[str, Any]) -> str:
    if "error" in prof:
        return f"| {name} | `{Path(file).name}` | profile failed: {prof['error'][:60]} | | | | | |"
    top = ", ".join(f"{k} ×{v['count']} {v['ms']:.2f} ms" for k, v in list(prof["by_op"].items())[:4])
    return (f"| {name} | `{Path(file).name}` | {prof['nodes']} | **{prof['int8']}** | {prof['float_compute']} | "
            f"{prof['qdq']} | {100 * prof['int8_time_share']:.0f} % | {top} |")


def _profile_lines(diagnosis: Dict[str, Any]) -> List[str]:
    """The node profile (ONNX Runtime's profiler): how many nodes ran int8 kernels, per ORT path."""
    rows = []
    for name, d in diagnosis.items():
        if d.get("profile"):
            rows.append(_profile_row(name, str(d.get("file", "")), d["profile"]))
        given = d.get("as_given")
        if given and given.get("profile"):
            rows.append(_profile_row(f"{name}, model as given", str(given["file"]), given["profile"]))
    if not rows:
        return []
    batch = next((d["profile"].get("batch") for d in diagnosis.values() if d.get("profile", {}).get("batch")), "?")
    return ["", f"Node profile (ONNX Runtime's profiler, batch {batch}, all optimisations on — what ran, not what "
                "the file holds):", "",
            "| path | file | nodes run | int8 kernels | float Conv/Gemm | unfused Q/DQ | int8 share of kernel time "
            "| most time |", "|---|---|---|---|---|---|---|---|"] + rows


def charts(result: Any, out_dir: Path) -> Dict[str, Path]:
    """``latency_p50.png``, ``throughput.png``, ``latency_hist.png``, ``peak_fraction.png``."""
    ok = {n: r for n, r in result.paths.items() if r.status == "ok"}
    written: Dict[str, Path] = {}
    made = {
        "latency_p50": plots.bar_chart({n: r.latency["p50_ms"] for n, r in ok.items()},
                                       out_dir / "latency_p50.png", "ms (batch 1, p50)", "batch-1 latency"),
        "throughput": plots.grouped_bars({n: {f"b{k}": v for k, v in r.throughput.items()} for n, r in ok.items()},
                                         out_dir / "throughput.png", "images / s", "throughput by batch",
                                         log_scale=True),
        "latency_hist": plots.latency_histogram({n: r.latency_samples_ms for n, r in ok.items()},
                                                out_dir / "latency_hist.png"),
        "peak_fraction": plots.bar_chart({n: 100 * r.peak_fraction for n, r in ok.items()
                                          if r.peak_fraction is not None},
                                         out_dir / "peak_fraction.png", "% of GEMM peak (own precision)",
                                         "achieved share of the machine's peak", annotate="{:.1f}"),
    }
    for key, path in made.items():
        if path is not None:
            written[key] = path
    return written


DOC_BEGIN = "<!-- fer-edge bench: begin (generated by `fer-edge bench --doc`; edits inside are replaced) -->"
DOC_END = "<!-- fer-edge bench: end -->"


def update_doc(path: Any, text: str) -> Path:
    """Put ``text`` between the bench markers of ``path`` (appended when absent); the rest is kept.

    The write-up around the table (why a goal is missed, what to try) is prose a person wrote, and a
    rerun of the benchmark must not erase it.
    """
    path = Path(path)
    old = path.read_text(encoding="utf-8") if path.is_file() else "# Benchmark\n\n"
    block = f"{DOC_BEGIN}\n{text.rstrip()}\n{DOC_END}"
    if DOC_BEGIN in old and DOC_END in old.split(DOC_BEGIN, 1)[1]:
        head, rest = old.split(DOC_BEGIN, 1)
        new = head + block + rest.split(DOC_END, 1)[1]
    else:
        new = old.rstrip() + "\n\n" + block + "\n"
    return atomic_write(path, new)


def write_bench_outputs(result: Any, out_dir: Path) -> Dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {"json": atomic_write(out_dir / "bench.json", json.dumps(result.to_dict(), indent=2) + "\n"),
               "md": atomic_write(out_dir / "bench.md", markdown(result))}
    written.update(charts(result, out_dir))
    return written
