"""Face recall and smoothed-label accuracy of ``fer-edge run`` on a synthetic scene video with truth.

    python benchmarks/runtime_accuracy.py --model MODEL.onnx [--video DIR] [--domain studio] [--frames 300]

Without ``--video`` a clip of the synthetic world is generated into ``--work`` (needs the train extra
for the generator only; the runtime itself stays torch-free). A predicted face matches a true face
when IoU >= 0.5 (greedy, best first). Recall = matched true faces / all true faces, over every frame.
Accuracy compares the label of each matched face with the frame's true expression (raw and smoothed).
Results go to stdout and ``--json``.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Dict, List, Sequence


def match(pred: Sequence[Sequence[float]], truth: Sequence[Sequence[float]], thr: float = 0.5) -> Dict[int, int]:
    """Greedy IoU matching; returns {truth index: pred index} for pairs with IoU >= ``thr``."""
    from fer_edge.runtime.track import greedy_iou_match

    return {ti: pi for pi, ti, _ in greedy_iou_match(pred, truth, thr)}


def score_run(results: List[dict], truth_lines: List[dict]) -> Dict[str, float]:
    truth = {int(t["frame"]): t["faces"] for t in truth_lines}
    n_true = n_hit = raw_ok = smooth_ok = 0
    for r in results:
        faces = truth.get(int(r["frame"]), [])
        pred = r["faces"]
        m = match([p["bbox"] for p in pred], [f["bbox"] for f in faces])
        n_true += len(faces)
        n_hit += len(m)
        for ti, pi in m.items():
            raw_ok += pred[pi]["label"] == faces[ti]["expression"]
            smooth_ok += pred[pi]["label_smoothed"] == faces[ti]["expression"]
    return {"true_faces": n_true, "matched": n_hit, "recall": n_hit / max(1, n_true),
            "raw_accuracy": raw_ok / max(1, n_hit), "smoothed_accuracy": smooth_ok / max(1, n_hit)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--video", default=None, help="folder from `generate(domain, 'video', …)` (video + frames.jsonl)")
    ap.add_argument("--domain", default="studio")
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default="runs/bench-runtime")
    ap.add_argument("--detect-every", type=int, default=5)
    ap.add_argument("--detect-mode", default="sync", choices=("sync", "async"))
    ap.add_argument("--min-face", type=int, default=None)
    ap.add_argument("--select", default="all", choices=("all", "largest"),
                    help="faces classified per frame (recall counts every true face, so default all)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")

    video_dir = Path(args.video) if args.video else Path(args.work) / f"{args.domain}-video-{args.frames}-s{args.seed}"
    if not (video_dir / "frames.jsonl").is_file():
        from fer_edge.data.synth import generate

        generate(args.domain, "video", video_dir, args.frames, identities=20, seed=args.seed, workers=1)
    meta = json.loads((video_dir / "synth.json").read_text()) if (video_dir / "synth.json").is_file() else {}
    video = video_dir / meta.get("video", "video.mp4")
    truth = [json.loads(line) for line in (video_dir / "frames.jsonl").read_text().splitlines() if line.strip()]

    from fer_edge.runtime.pipeline import Pipeline

    opts = {"detect_every": args.detect_every, "detect_mode": args.detect_mode, "threads": 1, "select": args.select}
    if args.min_face:
        opts["min_face"] = args.min_face
    pipe = Pipeline.from_model(args.model, **opts)
    t0 = time.perf_counter()
    results = [r.to_dict() for r in pipe.run(str(video))]
    wall = time.perf_counter() - t0
    scores = score_run(results, truth)
    summary = pipe.stats.summary()
    out = {"video": str(video), "domain": meta.get("domain", args.domain), "frames": len(results),
           "detect_every": args.detect_every, "detect_mode": args.detect_mode, "select": args.select,
           "model": str(args.model),
           "model_sha256": pipe.model_sha256, "wall_s": round(wall, 2), "fps": summary["fps"],
           "faults": summary["faults"], **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in scores.items()}}
    print(json.dumps(out, indent=2))
    if args.json:
        from fer_edge.runtime.atomic import atomic_write

        atomic_write(args.json, json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
