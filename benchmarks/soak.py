"""Soak run of the runtime: 10,000 frames with faults mixed in — no crash, faults counted, flat memory.

    OMP_NUM_THREADS=1 python benchmarks/soak.py [--model MODEL.onnx] [--frames 10000] [--json out.json]

Frames are 640x480 images of the synthetic studio clip (see runtime_fps.py), cycled, with every
fault kind the runtime must survive injected on a fixed schedule: ``None``, float frames, 2-channel
frames, empty and 4-pixel-high frames, garbage objects, decode errors, frames of another size, a
camera read that raises and a stream that drops and reconnects. The pipeline runs through a fake
live camera (the real :class:`CaptureSource` with its reconnect logic) and writes the JSONL as the
CLI does. RSS is read from /proc after a 1,000-frame warm-up and at the end.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import numpy as np


def rss_mb() -> float:
    with open("/proc/self/status", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


#: (every N frames, what is injected). Offsets keep faults from coinciding.
SCHEDULE = [(97, "none"), (101, "float"), (103, "two_channel"), (107, "empty"), (109, "thin"),
            (113, "garbage"), (127, "decode_error"), (131, "small_frame"), (251, "raise"), (2003, "drop")]


def _fault_at(i: int) -> Optional[str]:
    for every, kind in SCHEDULE:
        if i % every == every - 1:
            return kind
    return None


class FaultyCamera:
    """A VideoCapture look-alike over clip frames, injecting the scheduled faults."""

    def __init__(self, frames: List[np.ndarray], counter: Dict[str, int], state: Dict[str, int]):
        self.frames, self.counter, self.state = frames, counter, state
        self.opened = True

    def isOpened(self) -> bool:
        return self.opened

    def read(self):
        i = self.state["i"]
        self.state["i"] += 1
        kind = _fault_at(i)
        if kind:
            self.counter[kind] = self.counter.get(kind, 0) + 1
        base = self.frames[i % len(self.frames)]
        if kind == "none":
            return True, None
        if kind == "float":
            return True, base.astype(np.float32)
        if kind == "two_channel":
            return True, base[:, :, :2].copy()
        if kind == "empty":
            return True, base[:0]
        if kind == "thin":
            return True, base[:4]
        if kind == "garbage":
            return True, "not a frame"
        if kind == "decode_error":
            return False, None
        if kind == "small_frame":
            return True, base[::2, ::2].copy()
        if kind == "raise":
            raise RuntimeError("injected driver error")
        if kind == "drop":
            self.opened = False
            return False, None
        return True, base

    def release(self) -> None:
        self.opened = False


def clip_frames(video: Path, n: int = 60) -> List[np.ndarray]:
    import cv2

    cap = cv2.VideoCapture(str(video))
    out = []
    while len(out) < n:
        ok, f = cap.read()
        if not ok:
            break
        out.append(f)
    cap.release()
    return out


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="ONNX model (default: the untrained default-architecture model)")
    ap.add_argument("--frames", type=int, default=10_000)
    ap.add_argument("--detect-every", type=int, default=5)
    ap.add_argument("--work", default="runs/bench-runtime")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(message)s")
    sys.path.insert(0, str(Path(__file__).parent))
    from runtime_fps import make_default_models, synthetic_clip

    from fer_edge.runtime.pipeline import Pipeline
    from fer_edge.runtime.results import JsonlWriter
    from fer_edge.runtime.sources import CaptureSource

    work = Path(args.work)
    model = Path(args.model) if args.model else make_default_models(work)["int8"]
    frames = clip_frames(synthetic_clip(work, 300))
    injected: Dict[str, int] = {}
    state = {"i": 0}
    source = CaptureSource(lambda: FaultyCamera(frames, injected, state), "faulty camera", live=True,
                           retries=3, backoff_s=0.01)
    pipe = Pipeline.from_model(model, detect_every=args.detect_every, detect_mode="sync", threads=1,
                               drop_policy="block")
    rss: Dict[str, float] = {"start": rss_mb()}
    crashes, n = 0, 0
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        writer = JsonlWriter(Path(tmp) / "soak.jsonl")
        try:
            results: Iterator[Any] = pipe.run(source, max_frames=args.frames)
            for r in results:
                writer.write(r)
                n += 1
                if n == 1000:
                    rss["warm"] = rss_mb()
        except Exception as exc:  # noqa: BLE001 - the point of a soak is to count these
            crashes += 1
            print(f"CRASH after {n} frames: {type(exc).__name__}: {exc}", file=sys.stderr)
        finally:
            writer.close()
    rss["end"] = rss_mb()
    s = pipe.stats.summary()
    out = {"frames_requested": args.frames, "frames_processed": n, "crashes": crashes,
           "wall_s": round(time.perf_counter() - t0, 1), "fps": s["fps"], "faults_counted": s["faults"],
           "faults_injected": dict(sorted(injected.items())), "events": s["events"],
           "rss_mb": {k: round(v, 1) for k, v in rss.items()},
           "rss_growth_mb": round(rss["end"] - rss.get("warm", rss["start"]), 1),
           "latency_ms_total": s["latency_ms"]["total"], "model": str(model)}
    print(json.dumps(out, indent=2))
    if args.json:
        from fer_edge.runtime.atomic import atomic_write

        atomic_write(args.json, json.dumps(out, indent=2) + "\n")
    ok = crashes == 0 and out["rss_growth_mb"] < 20 and n == args.frames
    print("soak:", "PASS" if ok else "FAIL", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
