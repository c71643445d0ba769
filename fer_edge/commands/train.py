"""``fer-edge train``: train one adaptation method (or several) on the configured data.

Examples::

    fer-edge train --method dann --out runs/dann
    fer-edge train --config ci --method all --out runs/ci-train --set train.epochs=1
    torchrun --nproc_per_node 2 -m fer_edge.cli train --method dann --out runs/dann-ddp
    fer-edge train --method dann --out runs/dann --resume

Writes into ``--out``: ``best.pt`` (+ manifest; the checkpoint the label-free selector picked),
``checkpoints/epoch_NNN.pt``, ``last.state.pt`` (resume), ``metrics.csv``, ``curves.png``,
``features.npz`` and ``summary.json``. With several methods each gets ``--out/<method>`` and
``--out/selection.json`` names the run the selector ranks best (the target oracle is never eligible).
"""
from __future__ import annotations

import argparse
import logging

from fer_edge.cli import add_config_arguments, load_args_config
from fer_edge.runtime.errors import ConfigError
from fer_edge.train.config import DATA_ROLES, METHOD_NAMES

HELP = f"train an adaptation method ({', '.join(METHOD_NAMES)})"
DESCRIPTION = __doc__
ROLES = DATA_ROLES
log = logging.getLogger("fer_edge.train")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p)
    p.add_argument("--method", default=None,
                   help="method name, 'all' (train.methods from the config) or a comma list; "
                        "default: train.method")
    p.add_argument("--out", default=None, help="run folder (default: runs/<config>-<method>)")
    p.add_argument("--resume", action="store_true", help="continue from <out>/last.state.pt")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None, help="overrides train.device")
    p.add_argument("--target-identity", default=None,
                   help="personalise: adapt to one target identity's unlabelled faces (train.target_identity)")


def _methods(arg, cfg):
    if arg is None:
        return [cfg.train.method]
    if arg == "all":
        return list(cfg.train.methods)
    return [m.strip() for m in arg.split(",") if m.strip()]


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from fer_edge.runtime.atomic import atomic_write
    from fer_edge.train.config import method_config
    from fer_edge.train.data.sources import load_split
    from fer_edge.train.methods import method_class
    from fer_edge.train.selection import select_run
    from fer_edge.train.trainer import train

    cfg = load_args_config(args)
    if args.device:
        cfg.train.device = args.device
    if args.target_identity is not None:
        cfg.train.target_identity = args.target_identity
    methods = _methods(args.method, cfg)
    for m in methods:
        method_class(m)  # unknown name → ConfigError before any data is generated
    out = Path(args.out or f"runs/{cfg.name}-{'-'.join(methods) if len(methods) < 3 else 'methods'}")
    if cfg.train.finetune.enabled and "source_only" in methods:  # the others start from it: train it first
        methods = ["source_only"] + [m for m in methods if m != "source_only"]
    so = str(out / "source_only" / "best.pt") if "source_only" in methods and len(methods) > 1 else None
    run_cfgs = {m: method_config(cfg, m, so) for m in methods}  # a fine-tune without a start fails before any data
    datasets = {}
    for role in ROLES:
        ds = load_split(cfg, role)
        if ds is not None:
            datasets[role] = ds
    for role in ("source", "target"):  # a recipe that names no data (configs/real.yaml) must not train on nothing
        if role not in datasets:
            raise ConfigError(f"data.{role} is not set: give the folder with --set data.{role}=PATH "
                              f"(config {cfg.name!r} names none)")
    summaries = []
    for m in methods:
        run_dir = out if len(methods) == 1 else out / m
        s = train(run_cfgs[m], datasets, run_dir, resume=args.resume, method=m)
        if s is not None:
            summaries.append(s)
    if len(summaries) > 1:
        i = select_run(summaries, cfg.train.method_selector)
        if i < 0:
            raise ConfigError("train --method: only the target oracle was trained; it is never selected for export")
        pick = {"selector": cfg.train.method_selector, "selected_method": summaries[i]["method"],
                "selected_checkpoint": str(out / summaries[i]["method"] / "best.pt"),
                "runs": [{k: s.get(k) for k in ("method", "selector_scores", "target_test_accuracy",
                                                "oracle_selected_target_accuracy")} for s in summaries]}
        atomic_write(out / "selection.json", json.dumps(pick, indent=2))
        log.info("label-free selection (%s) across methods: %s", cfg.train.method_selector, pick["selected_method"])
    return 0
