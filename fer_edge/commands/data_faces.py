"""``fer-edge data faces``: recorded frames or a video → face crops cut by the one crop policy.

A sub-verb of ``fer-edge data`` (registered there); this module can also be driven on its own
(``add_arguments`` / ``run``) the same way as a verb module.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

HELP = "detect and crop faces in a frames folder or video (the runtime's detector and crop policy)"
DESCRIPTION = """\
Cut face crops out of recorded footage with the runtime's detector and crop function, so the crops
are exactly what `fer-edge run` feeds the model for the same frames.

writes into --out:
  faces/            the crop dataset (flat = unlabelled; class sub-folders when the input has them,
                    the frame's label going to its largest face; images/ + labels.csv when the
                    input has a frames.jsonl ground truth)
  faces.csv         source frame, frame index, face number, bbox, detector score, crop path, label
  no_face.txt       frames in which no face was found (counted, never an error)
  skipped.txt       unreadable frames, each with the reason
  contact_sheet.png one row of crops per class (the data preview's sheet)
  summary.json      counts, the policy, frames/s, and recall when ground truth exists

The policy is the config's `crop:` section; --policy KEY=VALUE changes one key
(detector, yunet_model, min_face, margin, square, select, clahe, align, score_threshold).

examples:
  fer-edge data faces --in recordings/night/ --out runs/faces/night
  fer-edge data faces --in cabin.mp4 --out runs/faces/cabin --every 5 --all-faces
  fer-edge data faces --in frames/ --out out/ --policy min_face=24 clahe=true
"""

log = logging.getLogger("fer_edge.data")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from fer_edge.cli import add_config_arguments

    p.add_argument("--in", dest="source", required=True, metavar="FRAMES_DIR|VIDEO",
                   help="a folder of frames (class sub-folders kept) or a video file")
    p.add_argument("--out", required=True, help="output folder (new, empty, or an earlier data faces output)")
    p.add_argument("--every", type=int, default=1, help="use every N-th frame (default 1: all)")
    p.add_argument("--all-faces", action="store_true", help="keep every face, not only the largest (crop.select=all)")
    p.add_argument("--policy", nargs="+", default=[], metavar="KEY=VALUE",
                   help="crop-policy overrides, e.g. min_face=24 margin=0.25 detector=yunet yunet_model=y.onnx")
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--detect-width", type=int, default=None,
                   help="frames wider than this are downscaled for detection, boxes scaled back "
                        "(default: runtime.detect_width, as `fer-edge run` does)")
    p.add_argument("--no-contact-sheet", action="store_true", help="do not write contact_sheet.png")
    add_config_arguments(p)


def policy_from_args(args: argparse.Namespace):
    """The config's crop policy with ``--policy`` and ``--all-faces`` applied (validated by the config)."""
    return config_from_args(args).crop


def config_from_args(args: argparse.Namespace):
    """The config with ``--policy`` (as ``crop.KEY=VALUE``) and ``--all-faces`` applied."""
    from fer_edge.cli import load_args_config
    from fer_edge.runtime.errors import ConfigError

    extra = []
    for item in args.policy or []:
        if "=" not in item:
            raise ConfigError(f"--policy {item!r}: expected KEY=VALUE, e.g. min_face=24")
        key = item.split("=", 1)[0].strip()
        extra.append(item if key.startswith("crop.") else f"crop.{item.strip()}")
    if args.all_faces:
        extra.append("crop.select=all")
    args.overrides = list(getattr(args, "overrides", []) or []) + extra
    return load_args_config(args)


def run(args: argparse.Namespace) -> int:
    from fer_edge.data.faces import extract_faces

    cfg = config_from_args(args)
    width = args.detect_width if args.detect_width is not None else cfg.runtime.detect_width
    ext = extract_faces(args.source, args.out, cfg.crop, every=args.every, workers=args.workers, detect_width=width,
                        progress=not getattr(args, "quiet", False),
                        contact_sheet=not args.no_contact_sheet)
    s = json.loads((Path(args.out) / "summary.json").read_text(encoding="utf-8"))
    print(f"faces: {s['faces']} from {s['frames_with_faces']} of {s['frames']} frames "
          f"({s['frames_no_face']} with no face, {s['frames_unreadable']} unreadable) in {ext.seconds:.1f} s "
          f"({s['frames_per_second']} frames/s, {ext.workers} worker(s))")
    if "recall_all" in s:
        ra, rf = s["recall_all"], s["recall_frontal"]
        print(f"recall vs ground truth (IoU>=0.5): {ra['recall']} of {ra['true_faces']} faces, "
              f"{rf['recall']} of {rf['true_faces']} with |yaw|<={rf['max_abs_yaw']:g}")
    counters = {k: v for k, v in s.get("counters", {}).items() if v}
    if counters:
        print(f"counted: {counters}")
    print(f"wrote {args.out}/faces/, faces.csv, no_face.txt, skipped.txt, summary.json"
          + ("" if args.no_contact_sheet else ", contact_sheet.png"))
    return 0
