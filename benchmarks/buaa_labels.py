"""BUAA-VisNir's class folders, as realdata.sh lays them out, and the classes the faces in them show.

    python benchmarks/buaa_labels.py --data DATA [--annotations buaa_w_neutral-annotations.csv]

realdata.sh reads the NIR repository's annotation file (``expression`` codes 0-7) as AffectNet's codes (0 neutral,
1 happy, 2 sad, 3 surprise, 4 fear, 5 disgust, 6 anger, 7 contempt). The same file gives every face a valence and an
arousal, from the same annotator, and those contradict that reading: code 3 ("surprise") sits where sadness sits
(unpleasant, calm), code 5 ("disgust") where surprise does (aroused, slightly pleasant), code 2 ("sad") with anger and
code 6 ("anger") with disgust -- and the faces agree. The codes are in the order neutral, happy, anger, sad, fear,
surprise, disgust, contempt; :data:`CORRECTION` moves the four swapped folders when bench_real makes BUAA's dev and
test halves. A fix of the data, read from the annotations and the faces; no model's accuracy chose it. The evidence,
with the per-code table this script prints: docs/results/buaa-labels.md.

:func:`label_fix` recognises the layout by its class counts, so a corrected realdata.sh (whose folders would hold
57 anger, 106 sad, 49 surprise and 12 disgust faces) is used as it is, and any other layout is left alone with a
warning.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import logging
import statistics
import sys
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence

log = logging.getLogger("buaa_labels")

#: folder as realdata.sh names it → the class its faces show (the others are right)
CORRECTION: Dict[str, str] = {"sad": "angry", "surprise": "sad", "disgust": "surprise", "angry": "disgust"}
#: faces per folder as realdata.sh lays BUAA out (its AffectNet reading of the codes)
LAID_OUT = {"neutral": 112, "happy": 210, "sad": 57, "surprise": 106, "fear": 73, "disgust": 49, "angry": 12}
#: the same faces under the corrected reading
CORRECTED = {CORRECTION.get(k, k): v for k, v in LAID_OUT.items()}
#: realdata.sh's reading of the annotation codes
AFFECTNET_CODES = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "angry", "contempt")


def folder_counts(buaa: Path) -> Dict[str, int]:
    return {d.name: sum(1 for f in d.iterdir() if f.is_file()) for d in sorted(buaa.iterdir()) if d.is_dir()}


def label_fix(buaa: Path) -> Dict[str, str]:
    """The folder → class corrections this layout of BUAA needs: :data:`CORRECTION` for realdata.sh's layout, none
    for a layout that is already corrected or that this module does not know (with a warning)."""
    if not buaa.is_dir():
        return {}
    counts = folder_counts(buaa)
    if counts == LAID_OUT:
        return dict(CORRECTION)
    if counts != CORRECTED:
        log.warning("%s: class counts %s are neither realdata.sh's layout nor the corrected one; its folder "
                    "names are used as labels, unchecked (see benchmarks/buaa_labels.py)", buaa, counts)
    return {}


def true_class(folder: str, fix: Mapping[str, str]) -> str:
    return fix.get(folder, folder)


def set_fingerprint(folder: Path) -> str:
    """What a score set's labels are: a hash of its ``class/file`` names, so a cached score is redone when a face
    moves to another class folder (as BUAA's did when its labels were corrected)."""
    names = sorted(f"{f.parent.name}/{f.name}" for f in folder.glob("*/*") if f.is_file())
    return hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]


def still_valid(cached: Mapping[str, Mapping], prints: Mapping[str, str]) -> Dict[str, Mapping]:
    """The cached rows of score sets whose folders still hold the faces and classes they were scored on."""
    return {n: row for n, row in cached.items() if n in prints and row.get("fingerprint") == prints[n]}


def code_table(annotations: Path) -> str:
    """Mean valence and arousal per expression code of the annotation file, as a markdown table."""
    rows: Dict[int, list] = {}
    with open(annotations, newline="") as fh:
        for r in csv.DictReader(fh):
            rows.setdefault(int(float(r["expression"])), []).append((float(r["valence"]), float(r["arousal"])))
    lines = ["| code | realdata.sh reads | faces | valence | arousal |", "|---|---|---|---|---|"]
    for code in sorted(rows):
        va = rows[code]
        name = AFFECTNET_CODES[code] if code < len(AFFECTNET_CODES) else "?"
        lines.append(f"| {code} | {name} | {len(va)} | {statistics.mean(v for v, _ in va):+.2f} | "
                     f"{statistics.mean(a for _, a in va):+.2f} |")
    return "\n".join(lines)


def prediction_table(buaa: Path, models: Sequence[Path]) -> str:
    """What each model predicts for the faces of each folder as laid out (counts), as markdown."""
    from fer_edge.evaluation.evaluate import evaluate

    out = []
    for model in models:
        r = evaluate(model, buaa, backend="onnxruntime")
        labels = list(r.labels)
        out += [f"{model} (rows: folder as laid out; columns: predicted)", "",
                "| folder | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
        for i, row in enumerate(r.confusion):
            out.append(f"| {labels[i]} | " + " | ".join(str(int(v)) for v in row) + " |")
        out.append("")
    return "\n".join(out)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="folder laid out by realdata.sh")
    ap.add_argument("--annotations", type=Path, help="Custom_DB/buaa_w_neutral-annotations.csv of the NIR repository")
    ap.add_argument("--models", type=Path, nargs="*", default=[], help="ONNX models to tabulate per folder")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[buaa-labels] %(message)s")
    buaa = args.data / "buaa_nir"
    if not buaa.is_dir():
        print(f"buaa-labels: skipped — {buaa} not found (lay the real datasets out with realdata.sh)")
        return 0
    fix = label_fix(buaa)
    print(f"{buaa}: {folder_counts(buaa)}")
    print("corrections applied by bench_real:", fix or "none")
    if args.annotations:
        print(code_table(args.annotations))
    if args.models:
        print(prediction_table(buaa, args.models))
    return 0


if __name__ == "__main__":
    sys.exit(main())
