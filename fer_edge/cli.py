"""``fer-edge <verb>``: one verb per stage, sensible defaults, everything overridable.

Each verb lives in ``fer_edge/commands/<verb>.py`` and exposes ``HELP``, ``add_arguments(parser)``
and ``run(args) -> int``. Verb modules import their stage lazily inside ``run`` so that
``fer-edge run``/``info``/``build`` work on a device without torch. A :class:`FerEdgeError` (a
failure the user can fix) ends in one line on stderr and exit code 1; anything else is a bug and
keeps its traceback.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import re
import sys
from typing import List, Optional, Sequence

from fer_edge import __version__
from fer_edge.runtime.errors import FerEdgeError

#: verb → module under fer_edge.commands, in the order shown by --help.
VERBS = ("info", "data", "train", "export", "calibrate", "build", "run", "eval", "bench", "pipeline")


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config``, ``--overlay`` and ``--set``: every verb that reads the config takes these."""
    parser.add_argument("--config", default=None,
                        help="config YAML path or shipped name (default, ci); default: default")
    parser.add_argument("--overlay", dest="overlays", nargs="+", action="extend", default=[], metavar="YAML",
                        help="merge these YAML files onto the config, in order, before --set (an experiment's "
                             "switches, e.g. benchmarks/overlays/methods.yaml)")
    parser.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help="override config keys, e.g. --set train.epochs=3 data.synth.seed=1")


def load_args_config(args: argparse.Namespace):
    """The validated config for a verb's ``--config``/``--set`` (imports no stage)."""
    from fer_edge.config import load_config

    return load_config(getattr(args, "config", None), getattr(args, "overrides", []) or [],
                       overlays=getattr(args, "overlays", []) or [])


def plain_text(doc: str) -> str:
    """A module docstring as terminal help: reST markup (````code````, ``Examples::``, ``:func:`x```) removed."""
    text = re.sub(r":(?:func|class|meth|mod|attr|data):`~?([^`]+)`", r"\1", doc or "")
    text = text.replace("``", "")
    text = re.sub(r"(?m)^(\s*)(Examples?|Usage)::\s*$", lambda m: f"{m.group(1)}{m.group(2).lower()}:", text)
    text = re.sub(r"::\s*$", ":", text, flags=re.M)
    return text


def _global_flags(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """``-v``/``-q`` on the main parser and again on every verb, so ``fer-edge run -q …`` works too."""
    default = argparse.SUPPRESS if suppress else False
    parser.add_argument("-v", "--verbose", action="store_true", default=default, help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", default=default,
                        help="warnings and errors only, no progress bars")


def _available_verbs() -> List[str]:
    return [v for v in VERBS if importlib.util.find_spec(f"fer_edge.commands.{v}") is not None]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fer-edge",
        description="Facial-expression recognition from workstation to embedded GPU: "
                    "train with domain adaptation, export to ONNX, calibrate INT8, build TensorRT, run.",
    )
    parser.add_argument("--version", action="version", version=f"fer-edge {__version__}")
    _global_flags(parser, suppress=False)
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for verb in _available_verbs():
        mod = importlib.import_module(f"fer_edge.commands.{verb}")
        p = sub.add_parser(verb, help=plain_text(mod.HELP),
                           description=plain_text(getattr(mod, "DESCRIPTION", mod.HELP)),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        _global_flags(p, suppress=True)
        mod.add_arguments(p)
        p.set_defaults(_module=mod)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "verb", None):
        parser.print_help()
        return 0
    level = logging.DEBUG if args.verbose else (logging.WARNING if args.quiet else logging.INFO)
    logging.basicConfig(level=level, format="[fer-edge] %(levelname)s %(message)s")
    if args.quiet:  # every progress bar too, in this process and the workers it starts
        from fer_edge.runtime.bars import switch_bars_off

        switch_bars_off()
    try:
        return int(args._module.run(args) or 0)
    except FerEdgeError as exc:
        print(f"fer-edge {args.verb}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"fer-edge {args.verb}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
