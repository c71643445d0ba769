"""Face recall of OpenCV's Haar cascades on synthetic scene frames with ground truth (detector choice).

    python benchmarks/detector_recall.py [--domain studio] [--count 80] [--seed 2] [--json out.json]

Full-frame detection only (no tracking), IoU >= 0.5 against the generator's true boxes, greedy
matching; the runtime's HaarDetector with each shipped frontal cascade. This is the measurement
behind ``fer_edge.runtime.detect.HAAR_FACE``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import List, Optional

CASCADES = ("haarcascade_frontalface_default.xml", "haarcascade_frontalface_alt2.xml",
            "haarcascade_frontalface_alt.xml")


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--domain", default="studio")
    ap.add_argument("--count", type=int, default=80)
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--min-face", type=int, default=40)
    ap.add_argument("--work", default="runs/bench-runtime")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    import cv2

    sys.path.insert(0, str(Path(__file__).parent))
    from runtime_accuracy import match

    from fer_edge.runtime.detect import HaarDetector

    root = Path(args.work) / f"{args.domain}-scenes-{args.count}-s{args.seed}"
    if not (root / "frames.jsonl").is_file():
        from fer_edge.data.synth import generate

        generate(args.domain, "scenes", root, args.count, identities=20, seed=args.seed, workers=1)
    truth = [json.loads(x) for x in (root / "frames.jsonl").read_text().splitlines() if x.strip()]
    frames = [(cv2.imread(str(root / t["path"])), t["faces"]) for t in truth]
    rows = []
    for cascade in CASCADES:
        det = HaarDetector(min_face=args.min_face, cascade=cascade)
        n = hit = 0
        t0 = time.process_time()
        for img, faces in frames:
            m = match([d.bbox for d in det.detect(img)], [f["bbox"] for f in faces])
            n += len(faces)
            hit += len(m)
        rows.append({"cascade": cascade, "true_faces": n, "recall": round(hit / max(1, n), 4),
                     "cpu_ms_per_frame": round(1e3 * (time.process_time() - t0) / len(frames), 1)})
        print(f"{cascade}: recall {hit / max(1, n):.3f} ({hit}/{n}), {rows[-1]['cpu_ms_per_frame']} ms CPU/frame")
    if args.json:
        from fer_edge.runtime.atomic import atomic_write

        atomic_write(args.json, json.dumps({"scenes": str(root), "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
