"""``fer-edge pipeline``: the whole road on one config — synth → train → export → calibrate → build →
eval → bench → run → report — resumable like make."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from fer_edge.cli import add_config_arguments, load_args_config

HELP = "run every stage on one config and write report.html (resumable: unchanged stages are skipped)"
DESCRIPTION = __doc__


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p)
    p.add_argument("--out", default=None, help="run folder (default: pipeline.out from the config)")
    p.add_argument("--force", nargs="+", default=[], metavar="STAGE",
                   help="redo these stages (and everything after them); 'all' redoes everything")
    p.add_argument("--until", default=None, metavar="STAGE", help="stop after this stage")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (for logs)")


def run(args: argparse.Namespace) -> int:
    from fer_edge.pipeline.main import run_pipeline

    cfg = load_args_config(args)
    if args.no_progress:  # every stage's bars, in this process and the synthesis workers
        from fer_edge.runtime.bars import switch_bars_off

        switch_bars_off()
    out = Path(args.out or cfg.pipeline.out)
    stamps = run_pipeline(cfg, out, force=args.force, until=args.until or cfg.pipeline.until,
                          progress=not args.no_progress)
    from fer_edge.pipeline.runner import summary_table

    print(summary_table(stamps))
    report = out / "report.html"
    if report.is_file():
        print(f"\nreport: {report}")
    logging.getLogger("fer_edge.pipeline").info("done")
    return 0
