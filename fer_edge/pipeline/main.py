"""The pipeline's stages, in order. Each builds its call with the stage's ``from_config`` (``fer_edge.stages``),
the very call its ``fer-edge`` verb makes, and the stage's fingerprint is that call: a config key the stage
does not pass to its function cannot re-run it, and a key the verb honours cannot be forgotten here.

Stage functions import their stage lazily, so ``fer-edge pipeline --until synth`` never loads torch and
the heavy imports happen once, when the stage first runs. File names come from ``fer_edge.runtime.artefacts``.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from fer_edge.runtime.artefacts import (
    BENCH,
    CHECKPOINT,
    EVAL_METRICS,
    INT8,
    RESULTS,
    RUN_SUMMARY,
    TRAIN_SUMMARY,
    RunFolder,
    int8_artefacts,
    with_manifest,
)
from fer_edge.runtime.atomic import atomic_write
from fer_edge.stages import bench, build, calibrate, data, evaluate, export, run, train
from fer_edge.stages.call import StageCall

from .runner import Context, Stage, StageOutput, run_stages
from .stamps import hash_inputs
from .stills import StillsScore

log = logging.getLogger("fer_edge.pipeline")


def _json(path: Path) -> Dict[str, Any]:
    return json.loads(Path(path).read_text()) if Path(path).is_file() else {}


# ---------------------------------------------------------------- 1. synth
def _video_call(ctx: Context) -> StageCall:
    """The cabin video: ``data.synth``'s settings, with 4 identities of its own (seed + 99) in one process."""
    s = ctx.cfg.data.synth
    return data.synth_call(ctx.cfg, identities=4, seed=s.seed + 99, workers=1)


def _synthetic_video(cfg: Any) -> bool:
    """The run stage gets a synthetic video only when nothing real is there to run on: a synthetic target and no
    ``pipeline.footage``."""
    return cfg.pipeline.footage is None and str(cfg.data.target or "").startswith("synth:")


def _fp_synth(ctx: Context) -> Any:
    video = _video_call(ctx).fingerprint() if _synthetic_video(ctx.cfg) else None
    return {"splits": STAGE_CALLS["synth"](ctx.cfg).fingerprint(), "video": video,
            "video_frames": ctx.cfg.pipeline.video_frames, "footage": ctx.cfg.pipeline.footage}


def _run_synth(ctx: Context, d: Path) -> StageOutput:
    cfg = ctx.cfg
    result: Dict[str, Any] = {"splits": {}}
    outputs: List[Path] = []
    for role, ds in STAGE_CALLS["synth"](cfg)().items():
        if ds is None:
            continue
        result["splits"][role] = {"root": str(ds.root), "count": len(ds), "skipped": len(ds.skipped),
                                  "domain": ds.records[0].domain if len(ds) else None}
        csv = Path(ds.root) / "labels.csv"
        if csv.is_file():
            outputs.append(csv)
    if _synthetic_video(cfg):
        vid_dir = _video_call(ctx)(cfg.data.target.split(":", 1)[1], "video", d / "video", cfg.pipeline.video_frames)
        videos = sorted(p for p in Path(vid_dir).iterdir() if p.suffix in (".mp4", ".avi"))
        result["video"] = str(videos[0]) if videos else None
        result["video_truth"] = str(Path(vid_dir) / "frames.jsonl")
        outputs += videos + [Path(vid_dir) / "frames.jsonl"]
    # What the runtime runs on: the user's footage, the synthetic video, or the real target test faces as stills.
    test = result["splits"].get("target_test", {}).get("root")
    result["footage"] = cfg.pipeline.footage or result.get("video") or test
    result["headline"] = ", ".join(f"{r}={v['count']}" for r, v in result["splits"].items())
    return StageOutput(outputs, result)


# ---------------------------------------------------------------- 2. train
def _run_train(ctx: Context, d: Path) -> StageOutput:
    call = STAGE_CALLS["train"](ctx.cfg)  # the runs of `fer-edge train --method all`
    splits = STAGE_CALLS["synth"](ctx.cfg)
    datasets = splits()
    folder = RunFolder(ctx.out)
    summaries: Dict[str, Dict[str, Any]] = {}
    outputs: List[Path] = []
    for method in call.methods:
        run_dir = folder.train_run(method)
        done = run_dir / TRAIN_SUMMARY
        # A method folder is reused (finished) or resumed (killed) only if it was made from these very
        # inputs; after a config change it is trained afresh.
        stamp = run_dir / "pipeline_inputs.json"
        digest = hash_inputs({"train": call.run_fingerprint(method), "data": splits.fingerprint()})
        same = stamp.is_file() and json.loads(stamp.read_text()).get("inputs") == digest
        if same and done.is_file() and (run_dir / CHECKPOINT).is_file():
            log.info("train %s: finished earlier from the same inputs — reusing %s", method, done)
            summary = _json(done)
        else:
            atomic_write(stamp, json.dumps({"inputs": digest}))
            summary = call(datasets, run_dir, method=method, source_checkpoint=str(folder.checkpoint("source_only")),
                           resume=same and (run_dir / "last.state.pt").is_file())
            summary = summary if isinstance(summary, dict) else _json(done)
        summaries[method] = summary
        outputs += [run_dir / CHECKPOINT, done]
    selected = select_across_methods(summaries, ctx.cfg.train.method_selector)
    result = {"methods": summaries, "selected": selected, "selected_checkpoint": str(folder.checkpoint(selected)),
              "headline": f"selected {selected} (label-free); " + ", ".join(
                  f"{m} {s.get('target_test_accuracy', float('nan')):.3f}" for m, s in summaries.items())}
    return StageOutput(outputs, result)


def select_across_methods(summaries: Dict[str, Dict[str, Any]], selector: str = "im") -> str:
    """The label-free choice among everything trained (source-only included, the oracle never): the trainer's
    :func:`~fer_edge.train.selection.select_method`, as ``fer-edge train --method all`` chooses; target-test
    accuracy is never looked at. Source-only when nothing else can be chosen."""
    from fer_edge.train.selection import select_method

    return select_method(summaries, selector) or "source_only"


# ---------------------------------------------------------------- 3. export
def _run_export(ctx: Context, d: Path) -> StageOutput:
    ckpt = ctx.result("train")["selected_checkpoint"]
    out = RunFolder(ctx.out).onnx
    res = STAGE_CALLS["export"](ctx.cfg)(ckpt, out)
    info = res.to_dict() if hasattr(res, "to_dict") else dict(res)
    info["headline"] = f"{out.name} from {Path(ckpt).parent.name}"
    return StageOutput(with_manifest(out), info)


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
    from fer_edge.data.loaders import load_dataset

    try:
        return load_dataset(root).labelled
    except Exception:  # noqa: BLE001 - an unreadable folder is simply not a labelled validation set
        return False


def _run_calibrate(ctx: Context, d: Path) -> StageOutput:
    """INT8 on the unlabelled target images; a failed gate is recorded, not fatal to the road.

    When the gate fails no INT8 model exists, and the later stages use the FP32 ONNX: the report says so.
    """
    from fer_edge.calibration.quantize import GateFailed

    call = STAGE_CALLS["calibrate"](ctx.cfg)
    splits = ctx.result("synth")["splits"]
    roles = gate_splits(splits)
    out = RunFolder(ctx.out).int8
    # A rerun (new config or model) must not leave an earlier INT8 model behind: if this gate fails,
    # later stages would deploy the stale one.
    for stale in int8_artefacts(out):
        stale.unlink(missing_ok=True)
    try:
        res = call(RunFolder(ctx.out).onnx, splits["target"]["root"], out, gate_images=roles["gate_images"],
                   eval_data=roles["eval_data"], splits=roles["names"])
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
                        f"layers in float: {len(res.excluded)} TensorRT, {len(res.cpu_excluded)} CPU")
    return StageOutput([f for f in int8_artefacts(out) if f.is_file()], info)


# ---------------------------------------------------------------- 5. build
def _deployable_onnx(ctx: Context) -> Path:
    """The model the device gets: the INT8 Q/DQ ONNX when calibration passed its accuracy gate, else the
    FP32 export (a failed gate writes no INT8 model, and the road must go on with FP32)."""
    folder = RunFolder(ctx.out)
    return folder.int8 if folder.int8.is_file() else folder.onnx


def _run_build(ctx: Context, d: Path) -> StageOutput:
    import importlib.util

    call = STAGE_CALLS["build"](ctx.cfg)
    model, out = _deployable_onnx(ctx), RunFolder(ctx.out).engine
    source = "INT8 Q/DQ" if model.name == INT8 else "FP32 (the INT8 gate failed)"
    if importlib.util.find_spec("tensorrt") is None:
        line = build.trtexec_line(call, model, out)
        return StageOutput([], {"headline": f"skipped: TensorRT not installed here (would build from {source})",
                                "trtexec": line, "model": str(model)}, status="skipped")
    res = call(model, out)
    info = res.to_dict() if hasattr(res, "to_dict") else dict(res)
    info["headline"] = f"TensorRT engine built from {source}"
    return StageOutput(with_manifest(out), info)


# ---------------------------------------------------------------- 6. eval
def _artefacts(ctx: Context) -> Dict[str, Path]:
    folder = RunFolder(ctx.out)
    arts: Dict[str, Path] = {}
    for method in ctx.result("train").get("methods", {}):
        arts[f"{method} (checkpoint)"] = folder.checkpoint(method)
    arts["ONNX FP32"] = folder.onnx
    arts["ONNX INT8"] = folder.int8
    if folder.engine.is_file():
        arts["TensorRT engine"] = folder.engine
    return {k: v for k, v in arts.items() if v.is_file()}


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name).strip("_").lower()


def _run_eval(ctx: Context, d: Path) -> StageOutput:
    from fer_edge.data.loaders import load_dataset

    call = STAGE_CALLS["eval"](ctx.cfg)
    test_root = ctx.result("synth")["splits"]["target_test"]["root"]
    dataset = load_dataset(test_root)
    result: Dict[str, Any] = {"models": {}}
    outputs: List[Path] = []
    for name, path in _artefacts(ctx).items():
        sub = d / _slug(name)
        res = call(path, dataset, out_dir=sub)
        result["models"][name] = res.to_dict() if hasattr(res, "to_dict") else dict(res)
        result["models"][name]["dir"] = str(sub)
        outputs.append(sub / EVAL_METRICS)
    cal = ctx.result("calibrate") or {}
    result["splits"] = {"scored": "target_test", "gated": (cal.get("splits") or {}).get("gate")}
    acc = {k: v.get("accuracy") for k, v in result["models"].items()}
    result["headline"] = ", ".join(f"{k}: {v:.3f}" for k, v in acc.items() if isinstance(v, float))[:200]
    return StageOutput(outputs, result)


# ---------------------------------------------------------------- 7. bench
def _run_bench(ctx: Context, d: Path) -> StageOutput:
    call = STAGE_CALLS["bench"](ctx.cfg)
    folder = RunFolder(ctx.out)
    int8: Optional[Path] = folder.int8 if folder.int8.is_file() else None  # a failed gate: nothing INT8 to time
    compare = [c for c in call.settings["compare"] if c != "ort-int8" or int8 is not None]
    res = call.replace(compare=compare)(model=folder.onnx, int8=int8,
                                        checkpoint=ctx.result("train")["selected_checkpoint"], out_dir=d)
    info = res.to_dict() if hasattr(res, "to_dict") else dict(res)
    info["headline"] = "latency/throughput by backend"
    return StageOutput([d / BENCH], info)


# ---------------------------------------------------------------- 8. run
def _run_runtime(ctx: Context, d: Path) -> StageOutput:
    """The deployable model (INT8, else FP32) through the lean runtime on the cabin video."""
    import cv2

    from fer_edge.runtime.results import JsonlWriter, VideoSink, annotate, write_summary

    call = STAGE_CALLS["run"](ctx.cfg)
    model = _deployable_onnx(ctx)
    footage = ctx.result("synth").get("footage") or ctx.result("synth").get("video")
    stills = footage is not None and Path(footage).is_dir()
    pipe = call(model)
    writer = JsonlWriter(d / RESULTS)
    sink = None if stills else VideoSink(d / "annotated.avi", fps=call.settings["config"].video_fps)
    strip: List[Path] = []
    score = StillsScore()
    try:
        for i, res in enumerate(pipe.run(footage)):
            writer.write(res)
            if sink is not None:
                sink.write(res.image, res.faces)
            if stills:
                score.add(res)
            if res.image is not None and res.faces and len(strip) < 4 and i % 15 == 0:
                shot = d / f"frame_{i:05d}.png"
                cv2.imwrite(str(shot), annotate(res.image.copy(), res.faces))
                strip.append(shot)
    finally:
        writer.close()
        if sink is not None:
            sink.close()
        summary = pipe.summary()
        pipe.close()
    summary["model"] = str(model)
    summary["video"] = footage
    summary["footage"] = footage
    summary["frames_png"] = [str(p) for p in strip]
    if stills:
        summary["stills"] = score.to_dict()
    write_summary(d / RUN_SUMMARY, summary)
    fps = summary.get("fps") or 0.0
    summary["headline"] = f"{summary.get('frames', '?')} frames, {fps:.0f} FPS, faults {summary.get('faults', {})}"
    if stills:
        summary["headline"] += "; " + score.headline()
    return StageOutput([d / RESULTS, d / RUN_SUMMARY], summary)


# ---------------------------------------------------------------- 9. report
def _run_report(ctx: Context, d: Path) -> StageOutput:
    from .content import build_report

    paths = build_report(ctx, d)
    return StageOutput(paths, {"headline": str(ctx.out / "report.html")})


def _no_fp(ctx: Context) -> Any:
    return {}


#: stage → the call the pipeline makes from a config (the same ``from_config`` as the stage's verb).
STAGE_CALLS = {
    "synth": data.splits_call,
    "train": lambda cfg: train.from_config(cfg, method="all"),
    "export": export.from_config,
    "calibrate": lambda cfg: calibrate.from_config(cfg, for_pipeline=True),
    "build": build.from_config,
    "eval": evaluate.from_config,
    "bench": bench.from_config,
    "run": run.from_config,
}


def _fp(name: str) -> Any:
    """A stage's fingerprint: the call it makes (its function and every setting), nothing else of the config."""
    return lambda ctx: STAGE_CALLS[name](ctx.cfg).fingerprint()


def stages(cfg: Any) -> List[Stage]:
    return [
        Stage("synth", "synthetic studio source, cabin-NIR target and a cabin video", _fp_synth, _run_synth),
        Stage("train", "source-only and adapted methods, label-free selection", _fp("train"), _run_train,
              ("synth",)),
        Stage("export", "ONNX with the contract inside, parity gate", _fp("export"), _run_export, ("train",)),
        Stage("calibrate", "INT8 Q/DQ on target images, accuracy gate", _fp("calibrate"), _run_calibrate,
              ("synth", "export")),
        Stage("build", "TensorRT engine (when TensorRT is present)", _fp("build"), _run_build, ("calibrate",)),
        Stage("eval", "every artefact on the labelled target test split", _fp("eval"), _run_eval,
              ("synth", "train", "export", "calibrate", "build")),
        Stage("bench", "latency and throughput by backend", _fp("bench"), _run_bench,
              ("train", "export", "calibrate")),
        Stage("run", "the runtime on the footage (the cabin video, or real faces as stills)", _fp("run"),
              _run_runtime, ("synth", "export", "calibrate")),
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
