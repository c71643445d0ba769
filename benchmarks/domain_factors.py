"""Which camera factor costs how much? A factor study of the domain gap, per class.

    python benchmarks/domain_factors.py                                   # trains 3 source-only models
    python benchmarks/domain_factors.py --checkpoints 'runs/bench-train/source_only-seed*/best.pt'
    python benchmarks/domain_factors.py --target kiosk --set data.synth.seed=1

A model trained on studio faces loses most of its accuracy on the in-cabin camera, but the camera differs
in many ways at once (data/synth/domains.py ``FACTORS``: pitch, yaw, spectrum, light, background,
sensor, occluders, expression intensity). This renders the same faces (test identities, every class
equally often) under hybrids of the two domains and evaluates the checkpoints on each:

* **studio + one factor**: what each factor costs on its own;
* **target − one factor** (the target with that factor set back to the studio's): what each factor
  costs in the company of all the others — the factors interact, so the two tables differ.

Knowing where the errors come from decides what to do about them: a factor an integrator controls
(camera placement, illumination, crop margin) is cheaper to fix in the installation or the crop policy
than by adaptation; one a method or an augmentation targets should show up here as the factor whose
cost it removes. Nothing here trains on or selects with target labels; the hybrids are test renders.
"""
from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import logging
import shlex
import sys
import time
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

from fer_edge.config import load_config
from fer_edge.runtime.atomic import atomic_write
from fer_edge.runtime.contract import LABELS, PreprocessSpec, preprocess_batch
from fer_edge.runtime.crop import CropPolicy
from fer_edge.runtime.errors import DataError

log = logging.getLogger("bench-factors")
#: The renders' seed: fixed and distinct from every training role's, so the study draws its own faces.
RENDER_SEED = 0xFAC7


def hybrids(base: str, target: str) -> List[Tuple[str, str, object]]:
    """(table, row name, DomainSpec) for every row of both tables; the first row of each is the pure domain."""
    from fer_edge.data.synth.domains import FACTORS, get_domain, swap_factors

    b, t = get_domain(base), get_domain(target)
    rows: List[Tuple[str, str, object]] = [("add", base, b)]
    rows += [("add", f"+ {f}", swap_factors(b, t, [f], f"{base}+{f}")) for f in FACTORS]
    rows += [("remove", target, t)]
    rows += [("remove", f"− {f}", swap_factors(t, b, [f], f"{target}-{f}")) for f in FACTORS]
    return [(tab, name, _balanced(spec)) for tab, name, spec in rows]


def _balanced(spec):
    return dataclasses.replace(spec, class_weights=(1,) * len(spec.class_weights))


def render(spec, count: int, idents: Sequence[int], size: int,
           policy: CropPolicy) -> Tuple[List[np.ndarray], np.ndarray]:
    from fer_edge.data.synth.sample import render_crop

    crops, labels = [], []
    for i in range(count):
        crop, truth = render_crop(spec, i, RENDER_SEED, idents, size, policy)
        crops.append(crop)
        labels.append(LABELS.index(truth.expression))
    return crops, np.asarray(labels)


def evaluate(nets: Sequence, x: np.ndarray, y: np.ndarray) -> Dict[str, object]:
    """Accuracy (mean and sd) and per-class recall (%, mean over the checkpoints).

    Every checkpoint sees the same faces, so the mean of their recalls is the recall of their summed
    confusion matrices; a class no face of this row showed (only with a tiny ``--count``) is NaN.
    """
    import torch

    from fer_edge.runtime.metrics import confusion_matrix, per_class_scores

    cms = []
    with torch.no_grad():
        t = torch.from_numpy(x)
        for net in nets:
            pred = torch.cat([net(t[i:i + 256]) for i in range(0, len(t), 256)]).argmax(1).numpy()
            cms.append(confusion_matrix(y, pred, len(LABELS)))
    accs = [100.0 * np.trace(cm) / cm.sum() for cm in cms]
    recall = [100.0 * s.recall if s.support else float("nan") for s in per_class_scores(sum(cms))]
    return {"accuracy": float(np.mean(accs)), "accuracy_sd": float(np.std(accs)), "recall": recall}


def table(rows: List[dict], tab: str) -> List[str]:
    ref = next(r for r in rows if r["table"] == tab)
    head = "| domain | accuracy (%) | Δ (pt) | " + " | ".join(LABELS) + " |"
    out = [head, "|" + "---|" * (3 + len(LABELS))]
    for r in rows:
        if r["table"] != tab:
            continue
        delta = "—" if r is ref else f"{r['accuracy'] - ref['accuracy']:+.1f}"
        out.append(f"| {r['name']} | {r['accuracy']:.1f} ± {r['accuracy_sd']:.1f} | {delta} | "
                   + " | ".join("—" if np.isnan(v) else f"{v:.0f}" for v in r["recall"]) + " |")
    return out


def train_source_only(args, overrides: List[str]) -> List[str]:
    """Train (or reuse) source-only checkpoints, one per seed, under ``--out``."""
    from fer_edge.data.sources import ROLES, load_split
    from fer_edge.train.trainer import train

    cfg0 = load_config(args.config, overrides)
    paths = []
    datasets = None
    for seed in [int(s) for s in args.seeds.split(",")]:
        out = Path(args.out) / f"source_only-seed{seed}"
        if not (out / "best.pt").is_file():
            if datasets is None:
                datasets = {r: d for r in ROLES if (d := load_split(cfg0, r)) is not None}
            train(load_config(args.config, overrides + [f"train.seed={seed}"]), datasets, out, method="source_only")
        paths.append(str(out / "best.pt"))
    return paths


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoints", default=None,
                    help="checkpoint path or glob (default: train source-only models, one per --seeds)")
    ap.add_argument("--config", default="default")
    ap.add_argument("--set", dest="overrides", nargs="*", default=[])
    ap.add_argument("--base", default="studio", help="the labelled camera (default studio)")
    ap.add_argument("--target", default="cabin-nir", help="the deployment camera (default cabin-nir)")
    ap.add_argument("--count", type=int, default=700, help="faces per domain row (default 700: 100 per class)")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--out", default="runs/domain-factors")
    ap.add_argument("--report", default="docs/results/domain-factors.md")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[bench-factors] %(message)s")
    from tqdm import tqdm

    from fer_edge.data.sources import role_identities
    from fer_edge.train.checkpoint import load_checkpoint

    t0 = time.time()
    overrides = list(args.overrides)
    cfg = load_config(args.config, overrides)
    if args.checkpoints:
        paths = sorted(glob.glob(args.checkpoints)) or ([args.checkpoints] if Path(args.checkpoints).is_file() else [])
        if not paths:
            raise SystemExit(f"domain_factors: no checkpoint matches {args.checkpoints!r}")
    else:
        paths = train_source_only(args, overrides)
    loaded = [load_checkpoint(p) for p in paths]
    nets = [n for n, _ in loaded]
    manifests = {json.dumps({"preprocess": m.preprocess, "crop": m.crop}, sort_keys=True) for _, m in loaded}
    if len(manifests) != 1:
        raise DataError(f"domain_factors: the checkpoints disagree on preprocessing or crop ({sorted(manifests)}); "
                        "compare models trained with one contract")
    spec = PreprocessSpec.from_dict(dict(loaded[0][1].preprocess))
    policy = CropPolicy.from_dict(dict(loaded[0][1].crop)) if loaded[0][1].crop else cfg.crop
    idents = role_identities(cfg.data.synth.seed, "target_test", cfg.data.synth.identities)
    rows = []
    for tab, name, dspec in tqdm(hybrids(args.base, args.target), desc="factor rows"):
        crops, y = render(dspec, args.count, idents, cfg.data.synth.size, policy)
        rows.append({"table": tab, "name": name, **evaluate(nets, preprocess_batch(crops, spec), y)})
    cmd = "python benchmarks/domain_factors.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    add, rem = [r for r in rows if r["table"] == "add"], [r for r in rows if r["table"] == "remove"]
    worst_alone = min(add[1:], key=lambda r: r["accuracy"])
    best_back = max(rem[1:], key=lambda r: r["accuracy"])
    lines = [f"# Domain factors: what each {args.target} camera factor costs a {args.base}-trained model", "",
             f"Command: `{cmd.strip()}`  ",
             f"Checkpoints ({len(paths)}): {', '.join(f'`{p}`' for p in paths)}  ",
             f"World: `data.synth.seed={cfg.data.synth.seed}`, test identities; {args.count} faces per row, "
             f"every class equally often (so accuracy here is not the target-test split's, whose class mix "
             f"differs). Wall time {(time.time() - t0) / 60:.1f} min.", "",
             "Accuracy is the mean ± sd over the checkpoints; recall per class (%) is their mean. Δ is against "
             "the table's first row.", "",
             f"## {args.base} + one {args.target} factor (what a factor costs alone)", ""] + table(rows, "add")
    lines += ["", f"## {args.target} − one factor (set back to {args.base}'s: what it costs among the others)", ""]
    lines += table(rows, "remove")
    lines += ["", f"Alone, **{worst_alone['name'][2:]}** costs the most "
              f"({worst_alone['accuracy'] - add[0]['accuracy']:+.1f} pt); among the others, setting "
              f"**{best_back['name'][2:]}** back to {args.base}'s recovers the most "
              f"({best_back['accuracy'] - rem[0]['accuracy']:+.1f} pt). The factor groups are "
              "`FACTORS` in data/synth/domains.py.", ""]
    atomic_write(Path(args.report), "\n".join(lines))
    atomic_write(Path(args.out) / "factors.json", json.dumps({"checkpoints": paths, "rows": rows}, indent=1))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
