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
from fer_edge.runtime.artefacts import CHECKPOINT
from fer_edge.runtime.errors import ConfigError
from fer_edge.train.config import METHOD_NAMES

HELP = f"train an adaptation method ({', '.join(METHOD_NAMES)})"
DESCRIPTION = __doc__
log = logging.getLogger("fer_edge.train")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p)
    p.add_argument("--method", default=None,
                   help="method name, a comma list, or 'all': the pipeline's runs (source-only, train.methods and "
                        "train.method), then the label-free choice among them; default: train.method")
    p.add_argument("--out", default=None, help="run folder (default: runs/<config>-<method>)")
    p.add_argument("--resume", action="store_true", help="continue from <out>/last.state.pt")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None, help="overrides train.device")
    p.add_argument("--target-identity", default=None,
                   help="personalise: adapt to one target identity's unlabelled faces (train.target_identity)")


def stage_call(args: argparse.Namespace):
    """The training runs of ``--method`` (``train.method`` by default; ``all``: the pipeline's runs) with this
    command line's flags on top; the pipeline builds the same call."""
    from fer_edge.stages import train

    return train.from_config(load_args_config(args), method=args.method, device=args.device,
                             target_identity=args.target_identity)


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from fer_edge.runtime.atomic import atomic_write
    from fer_edge.stages import data
    from fer_edge.train.selection import select_method

    call = stage_call(args)  # an unknown method name is a ConfigError before any data is generated
    cfg, methods = call.settings["cfg"], list(call.methods)
    out = Path(args.out or f"runs/{cfg.name}-{'-'.join(methods) if len(methods) < 3 else 'methods'}")
    # under train.finetune the adaptation methods start from the source-only model trained beside them (run first)
    so = str(out / "source_only" / CHECKPOINT) if "source_only" in methods and len(methods) > 1 else None
    for m in methods:
        call.run_config(m, so)  # a fine-tune without a start fails before any data is generated
    datasets = {role: ds for role, ds in data.splits_call(cfg)().items() if ds is not None}
    for role in ("source", "target"):  # a recipe that names no data (configs/real.yaml) must not train on nothing
        if role not in datasets:
            raise ConfigError(f"data.{role} is not set: give the folder with --set data.{role}=PATH "
                              f"(config {cfg.name!r} names none)")
    summaries = {}
    for m in methods:
        s = call(datasets, out if len(methods) == 1 else out / m, method=m, source_checkpoint=so, resume=args.resume)
        if s is not None:
            summaries[m] = s
    if len(summaries) > 1:
        best = select_method(summaries, cfg.train.method_selector)
        if best is None:
            raise ConfigError("train --method: only the target oracle was trained; it is never selected for export")
        pick = {"selector": cfg.train.method_selector, "selected_method": best,
                "selected_checkpoint": str(out / best / CHECKPOINT),
                "runs": [{k: s.get(k) for k in ("method", "selector_scores", "target_test_accuracy",
                                                "oracle_selected_target_accuracy")} for s in summaries.values()]}
        atomic_write(out / "selection.json", json.dumps(pick, indent=2))
        log.info("label-free selection (%s) across methods: %s", cfg.train.method_selector, best)
    return 0
