"""The pipeline's stages, in order. Each calls one stage's public API; none reaches into another's internals.

Stage functions import their stage lazily, so ``fer-edge pipeline --until synth`` never loads torch and
the heavy imports happen once, when the stage first runs.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from fer_edge.configfields import to_dict
from fer_edge.runtime.atomic import atomic_write
from fer_edge.train.config import DATA_ROLES

from .runner import Context, Stage, StageOutput, run_stages
from .stamps import hash_inputs

log = logging.getLogger("fer_edge.pipeline")

ROLES = DATA_ROLES


def _json(path: Path) -> Dict[str, Any]:
    return json.loads(Path(path).read_text()) if Path(path).is_file() else {}


# ---------------------------------------------------------------- 1. synth
def _fp_synth(ctx: Context) -> Any:
    return {"data": to_dict(ctx.cfg.data), "video_frames": ctx.cfg.pipeline.video_frames}


def _run_synth(ctx: Context, d: Path) -> StageOutput:
    from fer_edge.train.data.sources import load_split
    from fer_edge.train.data.synth import generate

    cfg = ctx.cfg
    result: Dict[str, Any] = {"splits": {}}
    outputs: List[Path] = []
    for role in ROLES:
        ds = load_split(cfg, role)
        if ds is None:
            continue
        result["splits"][role] = {"root": str(ds.root), "count": len(ds), "skipped": len(ds.skipped),
                                  "domain": ds.records[0].domain if len(ds) else None}
        csv = Path(ds.root) / "labels.csv"
        if csv.is_file():
            outputs.append(csv)
    target_domain = cfg.data.target.split(":", 1)[1] if cfg.data.target.startswith("synth:") else "cabin-nir"
    vid_dir = generate(target_domain, "video", d / "video", count=cfg.pipeline.video_frames,
                       identities=4, size=cfg.data.synth.size, seed=cfg.data.synth.seed + 99, workers=1)
    videos = sorted(p for p in Path(vid_dir).iterdir() if p.suffix in (".mp4", ".avi"))
    result["video"] = str(videos[0]) if videos else None
    result["video_truth"] = str(Path(vid_dir) / "frames.jsonl")
    outputs += videos + [Path(vid_dir) / "frames.jsonl"]
    result["headline"] = ", ".join(f"{r}={v['count']}" for r, v in result["splits"].items())
    return StageOutput(outputs, result)


# ---------------------------------------------------------------- 2. train
def _fp_train(ctx: Context) -> Any:
    c = ctx.cfg
    return {"train": to_dict(c.train), "model": to_dict(c.model), "preprocess": to_dict(c.preprocess),
            "crop": to_dict(c.crop)}


def _methods(cfg: Any) -> List[str]:
    methods = list(dict.fromkeys(cfg.train.methods))
    if "source_only" not in methods:
        methods.insert(0, "source_only")
    return methods


def _run_train(ctx: Context, d: Path) -> StageOutput:
    from fer_edge.train.config import method_config
    from fer_edge.train.data.sources import load_split
    from fer_edge.train.trainer import train

    cfg = ctx.cfg
    datasets = {role: load_split(cfg, role) for role in ROLES}
    summaries: Dict[str, Dict[str, Any]] = {}
    outputs: List[Path] = []
    for method in _methods(cfg):
        mcfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, method=method))
        mcfg = method_config(mcfg, method, str(d / "source_only" / "best.pt"))
        run_dir = d / method
        done = run_dir / "summary.json"
        # A method folder is reused (finished) or resumed (killed) only if it was made from these very
        # inputs; after a config change it is trained afresh.
        stamp = run_dir / "pipeline_inputs.json"
        digest = hash_inputs({"train": _fp_train(ctx), "data": _fp_synth(ctx), "method": method})
        same = stamp.is_file() and json.loads(stamp.read_text()).get("inputs") == digest
        if same and done.is_file() and (run_dir / "best.pt").is_file():
            log.info("train %s: finished earlier from the same inputs — reusing %s", method, done)
            summary = _json(done)
        else:
            atomic_write(stamp, json.dumps({"inputs": digest}))
            summary = train(mcfg, datasets, run_dir, resume=same and (run_dir / "last.state.pt").is_file())
            summary = summary if isinstance(summary, dict) else _json(done)
        summaries[method] = summary
        outputs += [run_dir / "best.pt", done]
    selected = select_across_methods(summaries, cfg.train.method_selector)
    result = {"methods": summaries, "selected": selected,
              "selected_checkpoint": str(d / selected / "best.pt"),
              "headline": f"selected {selected} (label-free); " + ", ".join(
                  f"{m} {s.get('target_test_accuracy', float('nan')):.3f}" for m, s in summaries.items())}
    return StageOutput(outputs, result)


def select_across_methods(summaries: Dict[str, Dict[str, Any]], selector: str = "im") -> str:
    """The label-free choice among everything trained (source-only included, the oracle never).

    Delegates to the trainer's :func:`select_run` (each method's selector score of its selected checkpoint
    on the unlabelled target validation split); target-test accuracy is never looked at. When no run has
    a usable score, source-only is the safe default.
    """
    from fer_edge.train.selection import select_run

    names = list(summaries)
    runs = [{"method": m, **s} for m, s in summaries.items()]
    i = select_run(runs, selector) if names else -1
    best = names[i] if i >= 0 else "source_only"
    score = (summaries.get(best, {}).get("selector_scores") or {}).get(selector)
    if best == "target_oracle" or not isinstance(score, (int, float)) or score != score:
        return "source_only"
    return best


# ---------------------------------------------------------------- 3. export
def _run_export(ctx: Context, d: Path) -> StageOutput:
    from fer_edge.export.onnx import export_onnx

    ckpt = ctx.result("train")["selected_checkpoint"]
    res = export_onnx(ckpt, d / "model.onnx", opset=ctx.cfg.export.opset, batch=ctx.cfg.export.batch)
    info = res.to_dict() if hasattr(res, "to_dict") else dict(res)
    info["headline"] = f"model.onnx from {Path(ckpt).parent.name}"
    return StageOutput([d / "model.onnx", d / "model.onnx.json"], info)


# ---------------------------------------------------------------- 4. calibrate
def gate_splits(splits: Dict[str, Any]) -> Dict[str, Any]:
    """Which images gate INT8 and which labelled split reports its accuracy drop: ``target_val``, never
    ``target_test`` — the eval stage scores every artefact on ``target_test``, and a split that chose
    something (here: the layers kept in float) is never the split a report quotes.

    When ``target_val`` is the very folder ``target_test`` reads, it is not used at all: the gate holds back
    a share of the calibration images instead, and no labels are read.
    """
    def root(role: str) -> Optional[str]:
        r = (splits.get(role) or {}).get("root")
        return str(Path(r).resolve()) if r else None

    test, val = root("target_test"), root("target_val")
    usable = val is not None and val != test
    labelled = usable and _labelled(val)
    return {"gate_images": splits["target_val"]["root"] if usable else None,
            "eval_data": splits["target_val"]["root"] if labelled else None,
            "names": {"calibration": "target", "gate": "target_val" if usable else "target (held back)",
                      "validation": "target_val" if labelled else "none", "scored": "target_test"}}


def _labelled(root: str) -> bool:
    from fer_edge.train.data.loaders import load_dataset

    try:
        return load_dataset(root).labelled
    except Exception:  # noqa: BLE001 - an unreadable folder is simply not a labelled validation set
        return False


def _run_calibrate(ctx: Context, d: Path) -> StageOutput:
    """INT8 on the unlabelled target images; a failed gate is recorded, not fatal to the road.

    When the gate fails no INT8 model exists, and the later stages use the FP32 ONNX: the report says so.
    """
    from fer_edge.calibration.quantize import GateFailed, calibrate

    c = ctx.cfg.calibrate
    splits = ctx.result("synth")["splits"]
    roles = gate_splits(splits)
    # A rerun (new config or model) must not leave an earlier INT8 model behind: if this gate fails,
    # later stages would deploy the stale one.
    for stale in ARTEFACTS:
        (d / stale).unlink(missing_ok=True)
    try:
        res = calibrate(ctx.out / "export" / "model.onnx", splits["target"]["root"], d / "model.int8.onnx",
                        method=c.method, num_images=c.num_images, min_images=c.min_images,
                        gate_images=roles["gate_images"], eval_data=roles["eval_data"], max_drop=c.max_drop,
                        min_agreement=c.min_agreement, gate_max_images=c.gate_images, trt_version=c.trt_version,
                        max_fallback_layers=c.max_fallback_layers, seed=c.seed, cpu=c.cpu,
                        cpu_reduce_range=c.cpu_reduce_range, splits=roles["names"])
    except GateFailed as exc:
        log.warning("calibrate: %s — later stages use the FP32 model", exc)
        info = exc.result.to_dict()
        info["splits"] = roles["names"]
        info["headline"] = f"INT8 gate FAILED ({exc}); FP32 deployed"
        return StageOutput([], info, status="gate failed")
    info = res.to_dict()
    info["splits"] = roles["names"]
    gate = res.gate
    drop = f", {roles['names']['validation']} accuracy drop {gate.drop:.2f} pt" if gate.drop is not None else ""
    info["headline"] = (f"INT8 Q/DQ + CPU on {info.get('num_images')} target images; gated on "
                        f"{roles['names']['gate']}: agreement {gate.agreement:.1f} %{drop}; "
                        f"{len(res.excluded)} layer(s) in float")
    return StageOutput([d / n for n in ARTEFACTS if (d / n).is_file()], info)


ARTEFACTS = ("model.int8.onnx", "model.int8.onnx.json", "model.int8-cpu.onnx", "model.int8-cpu.onnx.json")


# ---------------------------------------------------------------- 5. build
def _deployable_onnx(ctx: Context) -> Path:
    """The model the device gets: the INT8 Q/DQ ONNX when calibration passed its accuracy gate, else the
    FP32 export (a failed gate writes no INT8 model, and the road must go on with FP32)."""
    int8 = ctx.out / "calibrate" / "model.int8.onnx"
    return int8 if int8.is_file() else ctx.out / "export" / "model.onnx"


def _run_build(ctx: Context, d: Path) -> StageOutput:
    import importlib.util

    from fer_edge.runtime.tensorrt.build import build_engine, trtexec_command

    model = _deployable_onnx(ctx)
    b = ctx.cfg.build
    kwargs = dict(precision=b.precision, batch=b.batch, workspace_mb=b.workspace_mb)
    source = "INT8 Q/DQ" if model.name.endswith(".int8.onnx") else "FP32 (the INT8 gate failed)"
    if importlib.util.find_spec("tensorrt") is None:
        line = trtexec_command(model, d / "model.engine", **kwargs)
        return StageOutput([], {"headline": f"skipped: TensorRT not installed here (would build from {source})",
                                "trtexec": line, "model": str(model)}, status="skipped")
    res = build_engine(model, d / "model.engine", **kwargs)
    info = res.to_dict() if hasattr(res, "to_dict") else dict(res)
    info["headline"] = f"TensorRT engine built from {source}"
    return StageOutput([d / "model.engine", d / "model.engine.json"], info)


# ---------------------------------------------------------------- 6. eval
def _artefacts(ctx: Context) -> Dict[str, Path]:
    arts: Dict[str, Path] = {}
    train = ctx.result("train")
    for method in train.get("methods", {}):
        arts[f"{method} (checkpoint)"] = ctx.out / "train" / method / "best.pt"
    arts["ONNX FP32"] = ctx.out / "export" / "model.onnx"
    arts["ONNX INT8"] = ctx.out / "calibrate" / "model.int8.onnx"
    eng = ctx.out / "build" / "model.engine"
    if eng.is_file():
        arts["TensorRT engine"] = eng
    return {k: v for k, v in arts.items() if v.is_file()}


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name).strip("_").lower()


def _run_eval(ctx: Context, d: Path) -> StageOutput:
    from fer_edge.evaluation.evaluate import evaluate
    from fer_edge.train.data.loaders import load_dataset

    test_root = ctx.result("synth")["splits"]["target_test"]["root"]
    dataset = load_dataset(test_root)
    result: Dict[str, Any] = {"models": {}}
    outputs: List[Path] = []
    for name, path in _artefacts(ctx).items():
        sub = d / _slug(name)
        res = evaluate(path, dataset, out_dir=sub)
        result["models"][name] = res.to_dict() if hasattr(res, "to_dict") else dict(res)
        result["models"][name]["dir"] = str(sub)
        outputs.append(sub / "metrics.json")
    cal = ctx.result("calibrate") or {}
    result["splits"] = {"scored": "target_test", "gated": (cal.get("splits") or {}).get("gate")}
    acc = {k: v.get("accuracy") for k, v in result["models"].items()}
    result["headline"] = ", ".join(f"{k}: {v:.3f}" for k, v in acc.items() if isinstance(v, float))[:200]
    return StageOutput(outputs, result)


# ---------------------------------------------------------------- 7. bench
def _run_bench(ctx: Context, d: Path) -> StageOutput:
    from fer_edge.evaluation.bench import run_bench

    b = ctx.cfg.bench
    int8: Optional[Path] = ctx.out / "calibrate" / "model.int8.onnx"
    if not int8.is_file():  # its gate failed: nothing INT8 to measure
        int8 = None
    compare = [c for c in b.compare if c != "ort-int8" or int8 is not None]
    res = run_bench(model=ctx.out / "export" / "model.onnx", int8=int8,
                    checkpoint=ctx.result("train")["selected_checkpoint"], compare=compare, out_dir=d,
                    warmup=b.warmup, iters=b.iters, batches=b.batches, video_frames=b.video_frames)
    info = res.to_dict() if hasattr(res, "to_dict") else dict(res)
    info["headline"] = "latency/throughput by backend"
    return StageOutput([d / "bench.json"], info)


# ---------------------------------------------------------------- 8. run
def _run_runtime(ctx: Context, d: Path) -> StageOutput:
    """The deployable model (INT8, else FP32) through the lean runtime on the cabin video."""
    import cv2

    from fer_edge.runtime.pipeline import Pipeline
    from fer_edge.runtime.results import JsonlWriter, VideoSink, annotate, write_summary

    model = _deployable_onnx(ctx)
    video = ctx.result("synth")["video"]
    r = ctx.cfg.runtime
    pipe = Pipeline.from_model(model, backend=r.backend, config=r)
    writer = JsonlWriter(d / "results.jsonl")
    sink = VideoSink(d / "annotated.avi", fps=r.video_fps)
    strip: List[Path] = []
    try:
        for i, res in enumerate(pipe.run(video)):
            writer.write(res)
            sink.write(res.image, res.faces)
            if res.image is not None and res.faces and len(strip) < 4 and i % 15 == 0:
                shot = d / f"frame_{i:05d}.png"
                cv2.imwrite(str(shot), annotate(res.image.copy(), res.faces))
                strip.append(shot)
    finally:
        writer.close()
        sink.close()
        summary = pipe.summary()
        pipe.close()
    summary["model"] = str(model)
    summary["video"] = video
    summary["frames_png"] = [str(p) for p in strip]
    write_summary(d / "summary.json", summary)
    fps = summary.get("fps") or 0.0
    summary["headline"] = f"{summary.get('frames', '?')} frames, {fps:.0f} FPS, faults {summary.get('faults', {})}"
    return StageOutput([d / "results.jsonl", d / "summary.json"], summary)


# ---------------------------------------------------------------- 9. report
def _run_report(ctx: Context, d: Path) -> StageOutput:
    from .content import build_report

    paths = build_report(ctx, d)
    return StageOutput(paths, {"headline": str(ctx.out / "report.html")})


def _no_fp(ctx: Context) -> Any:
    return {}


def stages(cfg: Any) -> List[Stage]:
    return [
        Stage("synth", "synthetic studio source, cabin-NIR target and a cabin video", _fp_synth, _run_synth),
        Stage("train", "source-only and adapted methods, label-free selection", _fp_train, _run_train, ("synth",)),
        Stage("export", "ONNX with the contract inside, parity gate",
              lambda c: to_dict(c.cfg.export), _run_export, ("train",)),
        Stage("calibrate", "INT8 Q/DQ on target images, accuracy gate",
              lambda c: to_dict(c.cfg.calibrate), _run_calibrate, ("synth", "export")),
        Stage("build", "TensorRT engine (when TensorRT is present)",
              lambda c: to_dict(c.cfg.build), _run_build, ("calibrate",)),
        Stage("eval", "every artefact on the labelled target test split", _no_fp, _run_eval,
              ("synth", "train", "export", "calibrate", "build")),
        Stage("bench", "latency and throughput by backend", lambda c: to_dict(c.cfg.bench), _run_bench,
              ("train", "export", "calibrate")),
        Stage("run", "the runtime on the cabin video", lambda c: to_dict(c.cfg.runtime), _run_runtime,
              ("synth", "export", "calibrate")),
        Stage("report", "report.html and report.md", _no_fp, _run_report,
              ("synth", "train", "export", "calibrate", "build", "eval", "bench", "run")),
    ]


def run_pipeline(cfg: Any, out: Path, force: Sequence[str] = (), until: Optional[str] = None,
                 progress: bool = True):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ctx = Context(cfg=cfg, out=out)
    atomic_write(out / "config.yaml", cfg.to_yaml())
    return run_stages(stages(cfg), ctx, force=force, until=until, progress=progress)
