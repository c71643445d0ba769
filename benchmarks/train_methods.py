"""Train every method on the default synthetic task (studio → cabin-nir) and write docs/results/adaptation-methods.md.

    python benchmarks/train_methods.py                         # 3 seeds, all methods, default config
    python benchmarks/train_methods.py --seeds 0 --methods source_only,dann --epochs 2
    python benchmarks/train_methods.py --variant "dann_no_st=dann train.dann.self_training=0"

A ``--variant NAME=METHOD k=v ...`` is an extra row: METHOD trained with those overrides on top of
``--set`` (an ablation such as a method without one of its terms); it is run after the methods.

Each (method, seed) is a normal ``fer_edge.train.trainer.train`` run under ``--out``; the table
reports the target-test accuracy of the checkpoint the *label-free* selector chose (mean ± std over
seeds), the best-in-hindsight (oracle-selected) accuracy beside it, the source-test accuracy, the
share of the source-only → target-oracle gap closed, and whether the method beats source-only.
Nothing here selects or tunes on the target-test split: it is read from each run's summary.json.
"""
from __future__ import annotations

import argparse
import json
import logging
import re
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from fer_edge.config import load_config
from fer_edge.runtime.atomic import atomic_write
from fer_edge.runtime.errors import ConfigError
from fer_edge.runtime.metrics import paired_interval
from fer_edge.train.config import METHOD_NAMES

#: The experiment switches of the methods the shipped config does not train (pitch-aware pose_adv).
METHODS_OVERLAY = Path(__file__).resolve().parent / "overlays" / "methods.yaml"


def _ms(vals: List[float]) -> str:
    if not vals:
        return "—"
    sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return f"{100 * statistics.mean(vals):.1f} ± {100 * sd:.1f}"


def _num(v) -> str:
    """A score to 3 decimals; summary.json writes a missing/undefined value (NaN) as null."""
    return "nan" if v is None or v != v else f"{v:.3f}"


def _cpu(runs: List[dict]) -> str:
    vals = [r["train_cpu_seconds"] for r in runs if "train_cpu_seconds" in r]
    return f"{statistics.mean(vals) / 60:.1f}" if vals else "—"


def parse_variants(specs: List[str], config: str = "default", overrides: Sequence[str] = (),
                   overlays: Sequence[str] = ()) -> Dict[str, Tuple[str, List[str]]]:
    """``["NAME=METHOD k=v ..."]`` → ``{NAME: (METHOD, [k=v, ...])}``, checked before anything trains.

    Variants change training only (``train.*``, ``model.*``): every row of one table must be measured
    on the same data, which is loaded once. Each variant's full config is loaded here, so a typo in a
    key fails now rather than after an hour of other methods.
    """
    out: Dict[str, Tuple[str, List[str]]] = {}
    form = (f"expected 'NAME=METHOD k=v ...' with METHOD one of {', '.join(METHOD_NAMES)}, NAME a new row name "
            "of letters, digits, _ or -, and keys under train. or model.")
    for spec in specs:
        head, *extra = spec.split() or [""]
        name, sep, method = head.partition("=")
        if (not sep or method not in METHOD_NAMES or not re.fullmatch(r"[A-Za-z0-9_-]+", name)
                or name in METHOD_NAMES or name in out):
            raise SystemExit(f"--variant {spec!r}: {form}")
        bad = [kv for kv in extra if not kv.startswith(("train.", "model."))]
        if bad:
            raise SystemExit(f"--variant {spec!r}: {bad[0]!r} is not a training setting; {form}")
        try:
            load_config(config, list(overrides) + extra, overlays=overlays)
        except ConfigError as exc:
            raise SystemExit(f"--variant {spec!r}: {exc}") from None
        out[name] = (method, extra)
    return out


def paired_delta(runs: List[dict], base: List[dict]) -> str:
    """Mean per-seed difference to source-only with a 95 % t interval, in points.

    Runs of the same seed share the data order and augmentation draws, so the per-seed difference is
    the fairer comparison than two independent means; an interval that contains 0 is no evidence of a gain.
    """
    def key(r: dict) -> tuple:
        return r.get("draw", 0), r.get("seed")  # a pooled draw's seed 0 is not this draw's seed 0

    base_by_seed = {key(r): r["target_test_accuracy"] for r in base}
    pairs = [(r["target_test_accuracy"], base_by_seed[key(r)]) for r in runs if key(r) in base_by_seed]
    pr = paired_interval([100 * a for a, _ in pairs], [100 * b for _, b in pairs])
    return "—" if pr is None else f"{pr['mean']:+.1f} [{pr['low']:+.1f}, {pr['high']:+.1f}]"


def table(results: Dict[str, List[dict]], selector: str) -> List[str]:
    def mean(m: str, key: str) -> float:
        return statistics.mean(r[key] for r in results[m]) if results.get(m) else float("nan")

    src, orc = mean("source_only", "target_test_accuracy"), mean("target_oracle", "target_test_accuracy")
    rows = [f"| method | runs | target-test acc, {selector}-selected (%) | oracle-selected, hindsight (%) | "
            "target macro-F1 (%) | source-test acc (%) | gap closed | beats source-only? "
            "| Δ vs source-only, paired by seed [95 % CI] (pt) | wall min/run | CPU min/run |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for m, runs in results.items():
        acc = [r["target_test_accuracy"] for r in runs]
        gap = (statistics.mean(acc) - src) / (orc - src) if orc == orc and src == src and orc != src else float("nan")
        if m in ("source_only", "target_oracle"):
            verdict = "(floor)" if m == "source_only" else "(ceiling, uses target labels)"
        else:
            verdict = "yes" if statistics.mean(acc) > src else "**no**"
        delta = "—" if m in ("source_only", "target_oracle") else paired_delta(runs, results.get("source_only", []))
        rows.append(f"| {m} | {len(runs)} | {_ms(acc)} | {_ms([r['oracle_selected_target_accuracy'] for r in runs])} "
                    f"| {_ms([r['target_test_macro_f1'] for r in runs])} "
                    f"| {_ms([r['source_test_accuracy'] for r in runs])} "
                    f"| {'—' if gap != gap or m in ('source_only', 'target_oracle') else f'{100 * gap:.0f} %'} "
                    f"| {verdict} | {delta} "
                    f"| {statistics.mean(r['train_seconds'] for r in runs) / 60:.1f} "
                    f"| {_cpu(runs)} |")
    return rows


def recall_table(results: Dict[str, List[dict]], shares: Dict[str, float]) -> List[str]:
    """Target-test recall per class of the selected checkpoints (mean over seeds): where a method gains
    or loses. Runs older than the per-class summary key are left out of it."""
    have = {m: [r["target_test_per_class_recall"] for r in runs if r.get("target_test_per_class_recall")]
            for m, runs in results.items()}
    labels = next((list(v[0]) for v in have.values() if v), [])
    if not labels:
        return []
    rows = ["| method | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    if shares:
        rows.append("| *share of target-test* | " + " | ".join(f"*{100 * shares.get(k, 0):.0f} %*" for k in labels)
                    + " |")
    for m, recs in have.items():
        if recs:
            cells = []
            for k in labels:
                vals = [r[k] for r in recs if r.get(k) is not None]
                cells.append(f"{100 * statistics.mean(vals):.0f}" if vals else "—")
            rows.append(f"| {m} ({len(recs)} seed{'s' if len(recs) > 1 else ''}) | " + " | ".join(cells) + " |")
    return rows


def dominant_class_correlation(results: Dict[str, List[dict]], shares: Dict[str, float]) -> str:
    """One line: how much of a run's target accuracy its recall of the target's most frequent class
    explains (Pearson r over the non-oracle runs), or "" when it cannot be computed."""
    if not shares:
        return ""
    top = max(shares, key=shares.get)
    pairs = [(r["target_test_accuracy"], r["target_test_per_class_recall"].get(top))
             for m, runs in results.items() if m != "target_oracle" for r in runs
             if r.get("target_test_per_class_recall")]
    pairs = [(a, b) for a, b in pairs if b is not None]
    if len(pairs) < 3 or len({a for a, _ in pairs}) < 2 or len({b for _, b in pairs}) < 2:
        return ""
    r = statistics.correlation([a for a, _ in pairs], [b for _, b in pairs])
    return (f"Across the {len(pairs)} non-oracle runs, target-test accuracy vs recall of `{top}` (the most frequent "
            f"target class, {100 * shares[top]:.0f} %): Pearson r = {r:.2f}.")


def run_parallel(args: argparse.Namespace, methods: List[str]) -> Dict[str, List[dict]]:
    """Round-robin the methods over ``--jobs`` worker processes (OMP_NUM_THREADS=1 each), merge results."""
    import os
    import subprocess

    groups = [methods[i::args.jobs] for i in range(args.jobs)]
    procs = []
    for k, g in enumerate(x for x in groups if x):
        cmd = [sys.executable, __file__, "--config", args.config, "--methods", ",".join(g), "--seeds", args.seeds,
               "--out", args.out, "--part", str(k), "--overlay", *args.overlays, "--set", *args.overrides]
        for v in args.variant:
            cmd += ["--variant", v]
        if args.reuse:
            cmd.append("--reuse")
        if args.epochs:
            cmd += ["--epochs", str(args.epochs)]
        procs.append(subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}))
    if any(p.wait() != 0 for p in procs):
        raise SystemExit("a benchmark worker failed; see its log above")
    merged: Dict[str, List[dict]] = {m: [] for m in methods}
    for k in range(len(procs)):
        for m, runs in json.loads((Path(args.out) / f"results-{k}.json").read_text()).items():
            merged[m] = runs
    return merged


def with_prose_kept(path: Path, generated: str) -> str:
    """``generated`` followed by the hand-written part of the report already at ``path``: everything from its
    first ``## `` heading on (the generated part has none). A rerun refreshes the tables and keeps the reading."""
    try:
        old = path.read_text(encoding="utf-8")
    except OSError:
        return generated
    i = old.find("\n## ")
    return generated if i < 0 else generated.rstrip("\n") + "\n" + old[i:]


def report_title(source: str, target: str) -> str:
    """The report's heading names the task it measured (``synth:kiosk`` → ``kiosk``; a dataset path as given)."""
    def name(value: str) -> str:
        return value.split(":", 1)[1] if value.startswith("synth:") else value

    synthetic = source.startswith("synth:") and target.startswith("synth:")
    return f"# Training benchmark: {name(source)} → {name(target)}{' (synthetic world)' if synthetic else ''}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="default")
    ap.add_argument("--methods", default=",".join(METHOD_NAMES))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--overlay", dest="overlays", nargs="*", default=[str(METHODS_OVERLAY)],
                    help="YAML files merged onto --config before --set (default: the settings the methods the shipped "
                         "config does not train are measured with, benchmarks/overlays/methods.yaml)")
    ap.add_argument("--set", dest="overrides", nargs="*", default=[])
    ap.add_argument("--out", default="runs/bench-train")
    ap.add_argument("--report", default="docs/results/adaptation-methods.md")
    ap.add_argument("--jobs", type=int, default=1,
                    help="train the methods in this many parallel processes (1 thread each), then merge")
    ap.add_argument("--reuse", action="store_true",
                    help="keep finished runs (their summary.json) under --out instead of training them again")
    ap.add_argument("--variant", action="append", default=[], metavar='"NAME=METHOD k=v ..."',
                    help="an extra row: METHOD trained with these overrides (repeatable)")
    ap.add_argument("--pool", action="append", default=[], metavar="RESULTS_JSON",
                    help="add the runs of an earlier results.json as another draw of the same experiment "
                         "(e.g. other float rounding); rows then count runs, pairs match on (draw, seed)")
    ap.add_argument("--part", default=None, help=argparse.SUPPRESS)  # internal: a worker of --jobs
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[bench-train] %(message)s")
    from fer_edge.data.sources import ROLES, load_split
    from fer_edge.train.trainer import train

    overrides = list(args.overrides) + ([f"train.epochs={args.epochs}"] if args.epochs else [])
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    variants = parse_variants(args.variant, args.config, overrides, args.overlays)
    if args.part is None:
        methods += [v for v in variants if v not in methods]
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    results: Dict[str, List[dict]] = {m: [] for m in methods}
    cfg0 = load_config(args.config, overrides, overlays=args.overlays)
    datasets = {r: ds for r in ROLES if (ds := load_split(cfg0, r)) is not None}
    t0 = time.time()
    if args.jobs > 1 and args.part is None:
        results = run_parallel(args, methods)
    else:
        for seed in seeds:
            cfg = load_config(args.config, overrides + [f"train.seed={seed}"], overlays=args.overlays)
            for m in methods:
                out = Path(args.out) / f"{m}-seed{seed}"
                if args.reuse and (out / "summary.json").is_file():
                    results[m].append(json.loads((out / "summary.json").read_text()))
                    continue
                method, extra = variants.get(m, (m, []))
                run_cfg = load_config(args.config, overrides + extra + [f"train.seed={seed}"],
                                      overlays=args.overlays) if extra else cfg
                results[m].append(train(run_cfg, datasets, out, method=method))
    if args.part is not None:
        atomic_write(Path(args.out) / f"results-{args.part}.json", json.dumps(results))
        return 0
    for k, path in enumerate(args.pool, 1):
        pooled = json.loads(Path(path).read_text())
        for m in results:
            results[m] += [dict(r, draw=k) for r in pooled.get(m, [])]
    cmd = "python benchmarks/train_methods.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    t = cfg0.train
    root = Path(__file__).resolve().parents[1]
    overlaid = "".join(f" + `{Path(o).resolve().relative_to(root) if Path(o).resolve().is_relative_to(root) else o}`"
                       for o in args.overlays)
    lines = [report_title(cfg0.data.source, cfg0.data.target), "",
             f"Command: `{cmd.strip()}`  ",
             f"Config: `{args.config}`{overlaid} + `{' '.join(overrides) or 'no overrides'}`; "
             f"backbone {cfg0.model.backbone} (width {cfg0.model.width}), input {cfg0.preprocess.size} px "
             f"{cfg0.preprocess.colour}, crop margin {cfg0.crop.margin}"
             f"{' with CLAHE' if cfg0.crop.clahe else ' without CLAHE'}, "
             f"{t.epochs} epochs × {t.steps_per_epoch or 'full'} steps, "
             f"batch {t.batch_size}, selector `{t.selector}`, seeds {seeds}.  ",
             f"Data: {', '.join(f'{r}={len(d)}' for r, d in datasets.items())}. "
             f"Wall time {(time.time() - t0) / 60:.1f} min."
             + "".join(f"  \nPooled as draw {k}: the runs of `{p}`." for k, p in enumerate(args.pool, 1)),
             "", "Target-test accuracy is of the checkpoint the label-free selector picked; the oracle-selected "
             "column is best-in-hindsight (uses target labels, shown only to expose the selection gap). "
             "Gap closed = (method − source_only) / (target_oracle − source_only).", ""]
    lines += table(results, t.selector)
    counts = datasets["target_test"].class_counts() if "target_test" in datasets else {}
    shares = {k: v / sum(counts.values()) for k, v in counts.items()} if sum(counts.values()) else {}
    recall = recall_table(results, shares)
    if recall:
        lines += ["", "Target-test recall per class (%), selected checkpoints, mean over seeds:", ""] + recall
        corr = dominant_class_correlation(results, shares)
        if corr:
            lines += ["", corr]
    lines += ["", "Per run (label-free scores of the selected checkpoint):", "",
              "| run | selected epoch | target acc | im | snd | dev | source_val | final disc acc |",
              "|---|---|---|---|---|---|---|---|"]
    for m, runs in results.items():
        for r in runs:
            sc = r["selector_scores"]
            draw = f" (draw {r['draw']})" if r.get("draw") else ""
            lines.append(f"| {m} seed {r.get('seed')}{draw} | {r['selected_epoch']} | "
                         f"{100 * r['target_test_accuracy']:.1f} | "
                         f"{_num(sc.get('im'))} | {_num(sc.get('snd'))} | {_num(sc.get('dev'))} | "
                         f"{_num(sc.get('source_val'))} | "
                         f"{_num(r.get('final_disc_acc'))} |")
    atomic_write(Path(args.report), with_prose_kept(Path(args.report), "\n".join(lines) + "\n"))
    atomic_write(Path(args.out) / "results.json", json.dumps(results, indent=1))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
