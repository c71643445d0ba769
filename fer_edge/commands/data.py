"""``fer-edge data <subverb>``: make and inspect face data.

Sub-verbs are listed in :data:`SUBVERBS` (name → ``module`` or ``module:object`` exposing ``HELP``,
``add_arguments`` and ``run``), so adding one (``faces``) is one line. Stages are imported inside
``run`` only, so ``fer-edge --help`` stays light.
"""
from __future__ import annotations

import argparse
import importlib
import logging
from typing import Any, Dict

HELP = "synthesise faces (studio / cabin-nir / kiosk), cut faces from footage, preview datasets as contact sheets"
DESCRIPTION = """Make and inspect face data: synth (synthetic faces, scenes, video), faces (camera footage → face crops
with the runtime's detector and crop policy), preview (contact sheet of a dataset).

  fer-edge data synth --domain cabin-nir --kind crops --out runs/cabin --count 2000
  fer-edge data synth --domain studio --kind scenes --out runs/studio-scenes --count 100
  fer-edge data synth --domain cabin-nir --kind video --out runs/cabin-video --count 300
  fer-edge data faces --in cabin_frames/ --out runs/cabin-faces
  fer-edge data preview runs/cabin --out runs/cabin-sheet.png
"""
log = logging.getLogger("fer_edge.data")


class Synth:
    HELP = "generate a deterministic synthetic dataset (crops, scenes or a video clip)"

    @staticmethod
    def add_arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument("--domain", required=True, choices=["studio", "cabin-nir", "kiosk"])
        p.add_argument("--kind", default="crops", choices=["crops", "scenes", "video"])
        p.add_argument("--out", required=True, help="output folder (created; replaced if it is a synth folder)")
        p.add_argument("--count", type=int, default=None,
                       help="crops or scene frames, or video frames (default 1000 / 100 / 300)")
        p.add_argument("--identities", type=int, default=None,
                       help="size of the identity pool (default: data.synth.identities, 60)")
        p.add_argument("--size", type=int, default=None,
                       help="crop side in pixels (crops only; default: data.synth.size, 112)")
        p.add_argument("--seed", type=int, default=None, help="default: data.synth.seed, 0")
        p.add_argument("--workers", type=int, default=None, help="processes (default: data.synth.workers, 2)")
        from fer_edge.cli import add_config_arguments

        add_config_arguments(p)

    @staticmethod
    def stage_call(args: argparse.Namespace):
        """``data.synth`` with this command line's flags on top (the pipeline's video uses the same call)."""
        from fer_edge.cli import load_args_config
        from fer_edge.stages import data

        return data.synth_call(load_args_config(args), identities=args.identities, size=args.size, seed=args.seed,
                               workers=args.workers)

    @staticmethod
    def run(args: argparse.Namespace) -> int:
        count = args.count if args.count is not None else {"crops": 1000, "scenes": 100, "video": 300}[args.kind]
        out = Synth.stage_call(args)(args.domain, args.kind, args.out, count)
        log.info("passed: %s %s written to %s", args.domain, args.kind, out)
        return 0


class Preview:
    HELP = "write a contact sheet (faces per domain and class) of a dataset folder"

    @staticmethod
    def add_arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument("path", help="dataset folder or file (any supported layout)")
        p.add_argument("--out", required=True, help="PNG to write")
        p.add_argument("--format", default="auto",
                       choices=["auto", "synth", "imagefolder", "fer2013", "rafdb", "affectnet", "unlabelled"])
        p.add_argument("--per-row", type=int, default=10, help="faces per (domain, class) row")
        p.add_argument("--tile", type=int, default=80, help="tile size in pixels")
        p.add_argument("--contempt", action="store_true", help="keep contempt as an eighth class")

    @staticmethod
    def run(args: argparse.Namespace) -> int:
        import cv2

        from fer_edge.data.loaders import load_dataset
        from fer_edge.data.preview import contact_sheet
        from fer_edge.runtime.atomic import atomic_write
        from fer_edge.runtime.errors import DataError

        ds = load_dataset(args.path, args.format, contempt=args.contempt)
        sheet = contact_sheet(ds, args.per_row, args.tile)
        ok, buf = cv2.imencode(".png", sheet)
        if not ok:  # pragma: no cover
            raise DataError(f"{args.out}: PNG encoding failed")
        atomic_write(args.out, buf.tobytes())
        log.info("passed: contact sheet of %d faces (%s) → %s", len(ds), ", ".join(
            f"{k}={v}" for k, v in ds.class_counts().items() if v), args.out)
        return 0


#: sub-verb → "module" or "module:object" with HELP, add_arguments(parser), run(args).
SUBVERBS: Dict[str, str] = {
    "synth": f"{__name__}:Synth",
    "preview": f"{__name__}:Preview",
    "faces": "fer_edge.commands.data_faces",
}


def _resolve(target: str) -> Any:
    mod_name, _, attr = target.partition(":")
    if importlib.util.find_spec(mod_name) is None:
        return None
    mod = importlib.import_module(mod_name)
    return getattr(mod, attr) if attr else mod


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="data_verb", metavar="SUBVERB")
    for name, target in SUBVERBS.items():
        impl = _resolve(target)
        if impl is None:
            continue
        from fer_edge.cli import plain_text

        sp = sub.add_parser(name, help=plain_text(impl.HELP),
                            description=plain_text(getattr(impl, "DESCRIPTION", impl.HELP)),
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        impl.add_arguments(sp)
        sp.set_defaults(_data_impl=impl)
    p.set_defaults(_data_parser=p)


def run(args: argparse.Namespace) -> int:
    impl = getattr(args, "_data_impl", None)
    if impl is None:
        args._data_parser.print_help()
        return 2
    return int(impl.run(args) or 0)
