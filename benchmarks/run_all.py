#!/usr/bin/env python3
"""Regenerate BENCHMARKS.md: run every benchmark of the project, then assemble their write-ups.

``make bench`` calls this. Each benchmark writes its own figures to a page of ``docs/results/`` together
with the exact command that produced them; this script

1. runs every ``benchmarks/<name>.py`` (except itself) and the side-by-side speed benchmark
   (``fer-edge bench`` on the main job's models, written into ``docs/results/backend-speed.md``),
2. assembles BENCHMARKS.md at the repository root: one section per page of ``docs/results/``, headed by
   the command that regenerates it and the status of this run, so every figure names its command.

A step that fails is reported in BENCHMARKS.md and the script goes on; the exit code is 1 when
any step failed. ``--dry-run`` prints the plan and touches nothing; ``--only`` runs some steps.

    python benchmarks/run_all.py                       # everything (long)
    python benchmarks/run_all.py --dry-run             # what would run
    python benchmarks/run_all.py --only eval           # one step, then re-assemble
    python benchmarks/run_all.py --assemble-only       # re-assemble from the existing docs
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from fer_edge.runtime.atomic import atomic_write

ROOT = Path(__file__).resolve().parents[1]
RESULTS = "docs/results"
#: Every page of ``docs/results/``, in the order BENCHMARKS.md shows them, with its section title (a page not
#: listed here follows alphabetically, titled by its file name). Pages are named by what they measure.
PAGES = (
    ("headlines", "Headlines on the synthetic world: every goal, measured"),
    ("main-job", "The main job (make demo)"),
    ("real-faces", "Real faces: FER2013 → BUAA-VisNir near-infrared"),
    ("real-nir-headroom", "Real near-infrared faces: post-hoc remedies and the head's ceiling"),
    ("buaa-labels", "BUAA-VisNir's labels: four class folders hold another class's faces"),
    ("synthetic-domain-gap", "Synthetic world and the domain gap"),
    ("domain-factors", "Where the domain gap comes from: camera factors, per class"),
    ("footage-faces", "Faces from camera footage: recall and speed"),
    ("adaptation-methods", "Adaptation methods (benchmark world, five seeds)"),
    ("pixel-da-ten-seeds", "pixel_da against source-only over ten seeds (benchmark world)"),
    ("pixel-da-kiosk", "pixel_da on the kiosk camera (studio → kiosk, three seeds)"),
    ("training-budget", "Adaptation methods at 3× the steps (benchmark world, three seeds)"),
    ("post-hoc-corrections", "Post-hoc label-free corrections: AdaBN and class-prior correction"),
    ("dev-adaptation-methods", "Dev world: adaptation methods (where settings are chosen)"),
    ("dev-pose-adv-and-mcc", "Dev world: the MCC companion loss and pitch-aware pose_adv"),
    ("dev-crop-contract", "Dev world: the crop contract (CLAHE, margin) and viewpoint augmentation"),
    ("dev-cabin-remedies", "Dev world: DANN, self-training, IWDAN and the budget under the CLAHE contract"),
    ("dev-pixel-da-settings", "Dev world: choosing pixel_da's settings (pixel-level adaptation)"),
    ("dev-default-backbone", "Dev world: the default network (resnet18 at half width on 48 px)"),
    ("int8-calibration", "INT8 calibration"),
    ("runtime-speed", "Runtime speed, accuracy on video and soak"),
    ("backend-speed", "Speed side by side: torch eager, ORT FP32, ORT INT8, TensorRT"),
)
TITLES = dict(PAGES)
#: Per script: extra arguments and the page it writes (default: no arguments, docs/results/<script>.md).
#: ``{model}``/``{int8}`` stand for the main job's FP32/INT8 ONNX; a step whose model is missing is skipped.
SCRIPTS = {
    "domain_gap": ([], "docs/results/synthetic-domain-gap.md"),
    "bench_real": ([], "docs/results/real-faces.md"),  # skips with one line unless DATA names the real datasets
    "domain_factors": ([], "docs/results/domain-factors.md"),
    "train_methods": (["--seeds", "0,1,2,3,4", "--jobs", "2"], "docs/results/adaptation-methods.md"),
    # the training benchmark's checkpoints (run before it: PAGES), every method and seed
    "posthoc_target": (["--checkpoints", "runs/bench-train/*-seed*/best.pt"], "docs/results/post-hoc-corrections.md"),
    "faces_fps": ([], "docs/results/footage-faces.md"),
    "runtime_accuracy": (["--model", "{int8}"], "docs/results/runtime-speed.md"),
}
DEFAULT_INT8 = "runs/default/calibrate/model.int8.onnx"
EVAL_DOC = f"{RESULTS}/backend-speed.md"
#: The main job's artefacts (``fer-edge pipeline`` / ``make demo`` layout).
DEFAULT_MODEL = "runs/default/export/model.onnx"


@dataclass
class Step:
    """One benchmark command; ``doc`` is the write-up it (re)generates."""

    name: str
    command: List[str]
    doc: str
    skip: str = ""
    display: str = ""
    status: str = "planned"
    seconds: float = 0.0
    log: str = ""

    def shown(self) -> str:
        """The command as a reader would type it (``python``, not this interpreter's full path)."""
        if self.display:
            return self.display
        cmd = ["python" if i == 0 and c == sys.executable else c for i, c in enumerate(self.command)]
        return " ".join(shlex.quote(c) for c in cmd)


@dataclass
class Plan:
    root: Path
    steps: List[Step] = field(default_factory=list)


def _page_key(stem: str):
    order = [name for name, _ in PAGES]
    return (order.index(stem) if stem in order else len(order), stem)


def _step_key(step: Step):
    return _page_key(Path(step.doc).stem)


def eval_step(root: Path, model: Optional[str], python: str) -> Step:
    model_path = Path(model) if model else root / DEFAULT_MODEL
    rel = os.path.relpath(model_path, root) if model_path.is_absolute() else str(model_path)
    cmd = [python, "-m", "fer_edge.cli", "bench", "--model", rel, "--out", "runs/bench", "--doc", EVAL_DOC]
    skip = "" if (root / rel).is_file() else \
        f"no model at {rel}: run `make demo` (or `fer-edge pipeline`) first, or pass --model"
    return Step("eval", cmd, EVAL_DOC, skip=skip, display="fer-edge " + " ".join(cmd[3:]))


def make_plan(root: Path, model: Optional[str] = None, python: str = sys.executable) -> Plan:
    """Every ``benchmarks/*.py`` script plus the eval step, in the preferred order."""
    plan = Plan(root)
    models = {"{model}": model or DEFAULT_MODEL, "{int8}": DEFAULT_INT8}
    for script in sorted((root / "benchmarks").glob("*.py")):
        if script.name == Path(__file__).name or script.name.startswith("_"):
            continue
        extra, doc = SCRIPTS.get(script.stem, ([], f"{RESULTS}/{script.stem}.md"))
        args = [models.get(a, a) for a in extra]
        missing = [a for a, t in zip(args, extra) if t in models and not (root / a).is_file()]
        skip = f"no model at {missing[0]}: run `make demo` (or `fer-edge pipeline`) first" if missing else ""
        plan.steps.append(Step(script.stem, [python, f"benchmarks/{script.name}", *args], doc, skip=skip))
    plan.steps.append(eval_step(root, model, python))
    plan.steps.sort(key=_step_key)
    return plan


def run_step(step: Step, root: Path, log_dir: Path, timeout_s: float) -> None:
    if step.skip:
        step.status = f"skipped: {step.skip}"
        return
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{step.name}.log"
    step.log = os.path.relpath(log_path, root)
    print(f"[run_all] {step.name}: {step.shown()}", flush=True)
    t0 = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        try:
            rc = subprocess.run(step.command, cwd=root, stdout=log, stderr=subprocess.STDOUT,
                                timeout=timeout_s, check=False).returncode
        except subprocess.TimeoutExpired:
            rc = None
    step.seconds = time.perf_counter() - t0
    step.status = "ok" if rc == 0 else (f"failed (exit {rc}, see {step.log})" if rc is not None else
                                        f"failed (timed out after {timeout_s:.0f} s, see {step.log})")
    print(f"[run_all] {step.name}: {step.status} in {step.seconds:.0f} s", flush=True)


def _body(doc: Path) -> str:
    """The page without its own top-level heading (BENCHMARKS.md gives each a ``##``)."""
    lines = doc.read_text(encoding="utf-8").splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    # demote headings one level so the sections nest under BENCHMARKS.md's own
    text = "\n".join("#" + ln if ln.startswith("#") else ln for ln in lines).strip() + "\n"

    # links are relative to the page's folder (docs/results/); BENCHMARKS.md sits at the repository root
    def rebase(m: re.Match[str]) -> str:
        return f"]({os.path.normpath(os.path.join(RESULTS, m.group(1)))}{m.group(2) or ''})"

    return re.sub(r"\]\((?!https?:|#|/)([^)#]+\.(?:md|png|svg|jpg))(#[^)]*)?\)", rebase, text)


def assemble(plan: Plan, out: Path) -> str:
    """BENCHMARKS.md text from every page of ``docs/results/``, each headed by its regenerate command and status."""
    by_doc: Dict[str, Step] = {s.doc: s for s in plan.steps}
    docs = sorted((plan.root / RESULTS).glob("*.md"), key=lambda p: _page_key(p.stem))
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    parts = ["# Benchmarks", "",
             f"Assembled by `python benchmarks/run_all.py` (`make bench`) on {now} from the pages of "
             f"`{RESULTS}/`. Every section names the command that produced its figures; rerun it to "
             "check them on your machine. Ratios travel between machines better than milliseconds.", ""]
    rows = ["| section | regenerate with | this run |", "|---|---|---|"]
    for doc in docs:
        rel = os.path.relpath(doc, plan.root)
        step = by_doc.get(rel)
        rows.append(f"| [{TITLES.get(doc.stem, doc.stem)}](#{doc.stem}) | "
                    f"`{step.shown() if step else 'see the section'}` | {step.status if step else 'no command'} |")
    missing = [s for s in plan.steps if not (plan.root / s.doc).is_file()]
    for s in missing:
        rows.append(f"| {TITLES.get(Path(s.doc).stem, s.name)} (no page yet) | `{s.shown()}` | {s.status} |")
    parts += rows + [""]
    for doc in docs:
        step = by_doc.get(os.path.relpath(doc, plan.root))
        parts += [f'<a id="{doc.stem}"></a>', f"## {TITLES.get(doc.stem, doc.stem)}", "",
                  f"_Source: `{os.path.relpath(doc, plan.root)}` — regenerate: "
                  f"`{step.shown() if step else 'see below'}` — this run: {step.status if step else '—'}_", "",
                  _body(doc)]
    text = "\n".join(parts).rstrip() + "\n"
    atomic_write(out, text)
    return text


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", default=str(ROOT), help="repository root (default: this checkout)")
    p.add_argument("--out", default=None, help="output file (default: ROOT/BENCHMARKS.md)")
    p.add_argument("--only", default=None, help="comma-separated step names to run (others keep their docs)")
    p.add_argument("--model", default=None, help=f"FP32 ONNX for the eval step (default: {DEFAULT_MODEL})")
    p.add_argument("--dry-run", action="store_true", help="print the plan; run and write nothing")
    p.add_argument("--assemble-only", action="store_true", help="run nothing; rebuild BENCHMARKS.md from docs/")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds per step (default 3600)")
    args = p.parse_args(argv)
    root = Path(args.root).resolve()
    out = Path(args.out) if args.out else root / "BENCHMARKS.md"
    plan = make_plan(root, args.model)
    only = {s.strip() for s in args.only.split(",")} if args.only else None
    if only:
        unknown = only - {s.name for s in plan.steps}
        if unknown:
            print(f"run_all: unknown step(s) {sorted(unknown)}; known: {[s.name for s in plan.steps]}",
                  file=sys.stderr)
            return 2
    for s in plan.steps:
        if args.assemble_only or (only is not None and s.name not in only):
            s.status = "not run (kept the existing write-up)"
    if args.dry_run:
        for s in plan.steps:
            will = s.status if s.status != "planned" else (f"skip: {s.skip}" if s.skip else "run")
            doc = "exists" if (root / s.doc).is_file() else "missing"
            print(f"{s.name:<14} {will:<40} {s.shown()}  → {s.doc} ({doc})")
        print(f"would write {out}")
        return 0
    for s in plan.steps:
        if s.status == "planned":
            run_step(s, root, root / "runs" / "benchmarks", args.timeout)
    assemble(plan, out)
    atomic_write(root / "runs" / "benchmarks" / "run_all.json",
                 json.dumps([asdict(s) for s in plan.steps], indent=2) + "\n")
    print(f"[run_all] wrote {out}")
    return 1 if any(s.status.startswith("failed") for s in plan.steps) else 0


if __name__ == "__main__":
    sys.exit(main())
