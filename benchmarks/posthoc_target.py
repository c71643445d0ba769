"""Is the cabin's gap a class-balance shift or a BatchNorm-statistics shift? Post-hoc, label-free checks.

    python benchmarks/posthoc_target.py --checkpoints 'runs/bench-train/*-seed*/best.pt'
    python benchmarks/posthoc_target.py --checkpoints 'runs/dev/*/best.pt' --set data.root=/tmp/ferdev data.synth.seed=1

Two classic fixes need no retraining and no target labels, so they are worth ruling in or out before
reaching for an adversary:

* **AdaBN** (Li et al. 2016): re-estimate the BatchNorm running statistics on unlabelled target faces
  (``train.evaluation.adabn``, the same code ``train.adabn`` runs). It fixes a gap that lives in the first
  and second moments of the activations (a darker, lower-contrast camera). A half-and-half mix of source
  and target statistics is scored too.
* **Prior correction** (``train/label_shift.py``): a driver camera sees mostly neutral faces;
  if only the class balance changed, adding ``log(π_t/π_s)`` to the logits is the Bayes fix. π_t is
  estimated by EM (Saerens 2002) on the unlabelled ``target_val`` posteriors, and by BBSE (Lipton 2018)
  from the held-out source confusion matrix. The row with the **true** target prior uses target labels:
  it is the bound on what any prior correction can give, not a method.

Every number is target-test accuracy (%) of the given checkpoints, mean ± sd per method (the run folder's
name before ``-seed``). Nothing here selects or tunes with target-test labels.
"""
from __future__ import annotations

import argparse
import copy
import glob
import json
import logging
import shlex
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Dict, List

import numpy as np

from fer_edge.config import load_config
from fer_edge.runtime.atomic import atomic_write
from fer_edge.runtime.contract import LABELS
from fer_edge.runtime.errors import DataError

ROWS = ("raw", "adabn", "adabn_half", "em_prior", "bbse_prior", "true_prior")
TITLES = {"raw": "as trained", "adabn": "AdaBN (target BN statistics)", "adabn_half": "AdaBN, ½ source + ½ target",
          "em_prior": "prior correction, EM estimate", "bbse_prior": "prior correction, BBSE estimate",
          "true_prior": "prior correction, *true* target prior (bound, uses labels)"}


def group_of(path: str) -> str:
    """``runs/x/dann-seed2/best.pt`` → ``dann``."""
    return Path(path).parent.name.split("-seed")[0]


def score_checkpoint(net, data: Dict[str, np.ndarray], device) -> Dict[str, object]:
    """Target-test accuracy of one checkpoint under each post-hoc correction, and the estimated neutral share."""
    import torch

    from fer_edge.train.evaluation import adabn, predict
    from fer_edge.train.label_shift import bbse_prior, em_prior, prior_adjustment

    x = {k: torch.from_numpy(v) for k, v in data.items() if k.startswith("x_")}
    y_test, y_src = data["y_test"], data["y_src"]
    k = len(LABELS)
    pi_s = np.bincount(y_src, minlength=k) / len(y_src)
    p_test, _ = predict(net, x["x_test"], device)
    p_val, _ = predict(net, x["x_val"], device)
    p_src, _ = predict(net, x["x_src"], device)

    def acc(probs: np.ndarray, offset: np.ndarray = 0.0) -> float:
        return 100.0 * float(np.mean((np.log(np.clip(probs, 1e-12, None)) + offset).argmax(1) == y_test))

    out: Dict[str, object] = {"raw": acc(p_test)}
    ada = adabn(net, x["x_target"], device)
    out["adabn"] = acc(predict(ada, x["x_test"], device)[0])
    half = copy.deepcopy(ada)
    with torch.no_grad():
        for a, b in zip(net.modules(), half.modules()):
            if isinstance(a, torch.nn.modules.batchnorm._BatchNorm):
                b.running_mean.mul_(0.5).add_(0.5 * a.running_mean)
                b.running_var.mul_(0.5).add_(0.5 * a.running_var)
    out["adabn_half"] = acc(predict(half, x["x_test"], device)[0])
    pi_em = em_prior(p_val, pi_s)
    pi_bbse = bbse_prior(p_src.argmax(1), y_src, p_val.argmax(1), k)
    pi_true = np.bincount(y_test, minlength=k) / len(y_test)
    for name, pi in (("em_prior", pi_em), ("bbse_prior", pi_bbse), ("true_prior", pi_true)):
        out[name] = acc(p_test, prior_adjustment(pi, pi_s))
        out[f"{name}_neutral"] = 100.0 * float(pi[0])
    return out


def load_data(cfg, spec, target_n: int) -> Dict[str, np.ndarray]:
    from fer_edge.data.sources import load_split

    data: Dict[str, np.ndarray] = {}
    for role, key, labelled in (("target", "x_target", False), ("target_val", "x_val", False),
                                ("target_test", "x_test", True), ("source_test", "x_src", True)):
        ds = load_split(cfg, role)
        if ds is None:
            raise DataError(f"posthoc_target: the config has no {role} split (data.{role})")
        x, keep = ds.arrays(spec, progress=True)
        if role == "target":
            x = x[:target_n]
        data[key] = x
        if labelled:
            data["y_test" if role == "target_test" else "y_src"] = ds.label_array(keep)
    return data


def table(results: Dict[str, List[Dict[str, object]]]) -> List[str]:
    groups = list(results)
    lines = ["| correction | " + " | ".join(f"{g} ({len(results[g])})" for g in groups) + " |",
             "|---|" + "---|" * len(groups)]
    for row in ROWS:
        cells = []
        for g in groups:
            v = np.array([r[row] for r in results[g]], dtype=float)
            base = np.array([r["raw"] for r in results[g]], dtype=float)
            delta = "" if row == "raw" else f" ({np.mean(v - base):+.1f})"
            cells.append(f"{v.mean():.1f} ± {v.std():.1f}{delta}")
        lines.append(f"| {TITLES[row]} | " + " | ".join(cells) + " |")
    lines += ["", "Estimated neutral share of the target (%; the target-test split's true share is in the last row):",
              "", "| estimate | " + " | ".join(groups) + " |", "|---|" + "---|" * len(groups)]
    for row in ("em_prior", "bbse_prior", "true_prior"):
        lines.append(f"| {row.split('_')[0]} | " + " | ".join(
            f"{np.mean([r[f'{row}_neutral'] for r in results[g]]):.0f}" for g in groups) + " |")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoints", required=True, help="checkpoint path or glob (quote it)")
    ap.add_argument("--config", default="default")
    ap.add_argument("--set", dest="overrides", nargs="*", default=[])
    ap.add_argument("--target-n", type=int, default=1000, help="unlabelled target faces for AdaBN (default 1000)")
    ap.add_argument("--out", default="runs/posthoc-target")
    ap.add_argument("--report", default="docs/results/post-hoc-corrections.md")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[bench-posthoc] %(message)s")
    import torch
    from tqdm import tqdm

    from fer_edge.runtime.contract import PreprocessSpec
    from fer_edge.train.checkpoint import load_checkpoint

    t0 = time.time()
    cfg = load_config(args.config, list(args.overrides))
    paths = sorted(glob.glob(args.checkpoints)) or ([args.checkpoints] if Path(args.checkpoints).is_file() else [])
    if not paths:
        raise SystemExit(f"posthoc_target: no checkpoint matches {args.checkpoints!r}")
    loaded = [(p, *load_checkpoint(p)) for p in paths]
    want = {"preprocess": cfg.preprocess.to_dict(), "crop": cfg.crop.to_dict()}
    for p, _, m in loaded:
        got = {"preprocess": dict(m.preprocess), "crop": dict(m.crop)}
        if json.dumps(got, sort_keys=True) != json.dumps(want, sort_keys=True):
            raise DataError(f"posthoc_target: {p} was trained with preprocess/crop {got}, the config cuts faces as "
                            f"{want}; pass the config overrides it was trained with (--set crop.margin=… …)")
    spec = PreprocessSpec.from_dict(want["preprocess"])
    data = load_data(cfg, spec, args.target_n)
    device = torch.device("cpu")
    results: Dict[str, List[Dict[str, object]]] = defaultdict(list)
    for p, net, _ in tqdm(loaded, desc="checkpoints"):
        results[group_of(p)].append({"path": p, **score_checkpoint(net, data, device)})
    cmd = "python benchmarks/posthoc_target.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    lines = ["# Post-hoc, label-free corrections on the target camera: AdaBN and class-prior correction", "",
             f"Command: `{cmd.strip()}`  ",
             f"World: `data.synth.seed={cfg.data.synth.seed}`; {len(paths)} checkpoints; target-test faces "
             f"{len(data['y_test'])}, AdaBN on {len(data['x_target'])} unlabelled target faces, priors estimated "
             f"on {len(data['x_val'])} unlabelled target_val faces. Wall time {(time.time() - t0) / 60:.1f} min.", "",
             "Target-test accuracy (%), mean ± sd over each method's checkpoints (count in brackets); in brackets "
             "after a value, the mean paired change against the same checkpoints as trained.", ""]
    lines += table(results) + [""]
    if "target_oracle" in results:
        lines += ["The oracle was trained on the target's own class balance, so its prior rows re-balance a model that "
                  "needs none (its π_s is the source's); they are shown only to keep the columns alike.", ""]
    atomic_write(Path(args.report), "\n".join(lines))
    atomic_write(Path(args.out) / "posthoc.json", json.dumps(results, indent=1))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
