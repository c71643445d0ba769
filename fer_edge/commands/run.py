"""``fer-edge run``: the lean runtime on a camera, video, image folder, RTSP URL or GStreamer pipeline.

Imports only the runtime (numpy, OpenCV, ONNX Runtime or TensorRT) — never torch — so it runs on a
device that has the ``runtime`` extra alone. Every output path is checked before the first frame;
Ctrl-C and SIGTERM stop the loop, flush the JSONL, the annotated video and the summary, and exit 0;
a late error flushes what was done, then ends in one line and exit 1.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import time
from typing import Any, Dict, Iterator, Optional

HELP = "run the model on a camera/video/folder/stream: detect, track, classify, smooth → JSONL"
DESCRIPTION = """Run capture → detect → track → classify → smooth → results.

examples:
  fer-edge run --model runs/default/calibrate/model.int8.onnx --source cabin.mp4 --out results.jsonl
  fer-edge run --model model.onnx --source photos/ --out photos.jsonl --save-dir annotated/   # stills
  fer-edge run --model model.onnx --source frames/ --sequence --out frames.jsonl   # frames of one video
  fer-edge run --model model.engine --source 0 --out live.jsonl --video-out live.mp4   # V4L2 camera 0
  fer-edge run --model model.onnx --source rtsp://10.0.0.5/stream --out cam.jsonl --max-frames 1000
  fer-edge run --model model.onnx --source "nvarguscamerasrc ! ... ! appsink" --out csi.jsonl  # Jetson CSI

A folder (searched recursively) or an image file is run as stills: every image is detected on its own and
nothing is tracked or smoothed from one image to the next; --sequence says the images are the frames of
one video. Every JSONL line names its source and, for images, its file.

The crop policy and preprocessing come from the model's own contract; only the detector side
(--detector, --yunet-model, --min-face, --all-faces, --set crop.min_face=...) may be changed here.
Asking for another crop.margin/square/clahe/align is refused: retrain with it instead."""

log = logging.getLogger("fer_edge.run")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from fer_edge.cli import add_config_arguments

    p.add_argument("--model", required=True, help="ONNX model (FP32 or INT8) or TensorRT engine with its sidecar")
    p.add_argument("--source", required=True,
                   help="camera index (0), video file, image folder, rtsp://… URL or GStreamer pipeline string")
    p.add_argument("--out", required=True, help="JSONL results, one line per frame (written atomically)")
    p.add_argument("--video-out", default=None, help="optional annotated video (.mp4 or .avi)")
    p.add_argument("--save-dir", default=None, metavar="DIR",
                   help="optional folder for one annotated JPEG per frame (stills: named after their file)")
    p.add_argument("--sequence", action="store_true",
                   help="the folder's images (in name order) are the frames of one video: track and smooth "
                        "across them (default: unrelated stills, each detected on its own)")
    p.add_argument("--backend", choices=("auto", "tensorrt", "onnxruntime"), default=None,
                   help="inference backend (default: runtime.backend, auto = TensorRT for engines)")
    p.add_argument("--detect-every", type=int, default=None, help="run the face detector every N frames")
    p.add_argument("--detect-mode", choices=("auto", "sync", "async"), default=None,
                   help="async: detect in a background thread (auto = async on live sources)")
    p.add_argument("--max-frames", type=int, default=None, help="stop after N frames (N >= 1)")
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads (0 = its default)")
    p.add_argument("--drop-policy", choices=("auto", "drop_oldest", "block"), default=None,
                   help="when inference falls behind: drop the oldest frame (live) or block (files)")
    p.add_argument("--detector", choices=("haar", "yunet"), default=None, help="face detector")
    p.add_argument("--yunet-model", default=None, help="YuNet ONNX path (with --detector yunet)")
    p.add_argument("--min-face", type=int, default=None, help="smallest face side in pixels")
    p.add_argument("--all-faces", action="store_true", help="classify every face, not only the largest")
    p.add_argument("--summary", default=None, help="summary JSON path (default: <out>.summary.json)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (-q also silences it)")
    add_config_arguments(p)


class _Progress:
    """tqdm when installed (it is not a runtime dependency), else a log line every 5 s."""

    def __init__(self, total: Optional[int], enabled: bool):
        from fer_edge.runtime.bars import bars_off

        self.bar: Any = None
        self.n, self._last = 0, time.monotonic()
        self.enabled = enabled and not bars_off()
        if enabled:
            with contextlib.suppress(ImportError):
                from tqdm import tqdm

                self.bar = tqdm(total=total, unit="frame", desc="run", dynamic_ncols=True, file=sys.stderr)

    def update(self, faces: int) -> None:
        self.n += 1
        if self.bar is not None:
            self.bar.update(1)
        elif self.enabled and time.monotonic() - self._last > 5.0:
            self._last = time.monotonic()
            log.info("%d frames", self.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (systemd, docker stop) ends the run like Ctrl-C: outputs are flushed, exit code 0."""
    def handler(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _crop_overrides(args: argparse.Namespace, cfg: Any) -> Dict[str, Any]:
    """``--set crop.KEY=…`` values: the detector side is honoured, a pixel-changing one is refused by the pipeline."""
    from fer_edge.configfields import split_override

    keys = {split_override(o)[0] for o in getattr(args, "overrides", []) or []}
    return {k[5:]: getattr(cfg.crop, k[5:]) for k in sorted(keys) if k.startswith("crop.") and "." not in k[5:]}


def _options(args: argparse.Namespace) -> Dict[str, Any]:
    opts = {"detect_every": args.detect_every, "max_frames": args.max_frames, "threads": args.threads,
            "drop_policy": args.drop_policy, "detect_mode": args.detect_mode, "detector": args.detector,
            "yunet_model": args.yunet_model, "min_face": args.min_face,
            "select": "all" if args.all_faces else None}
    if args.yunet_model and not args.detector:
        opts["detector"] = "yunet"
    return {k: v for k, v in opts.items() if v is not None}


def _total_frames(source: str, max_frames: Optional[int]) -> Optional[int]:
    from fer_edge.runtime.sources import describe_source, list_images

    total = None
    kind = describe_source(source)
    if kind == "folder":
        total = len(list_images(source)) or None
    elif kind == "image":
        total = 1
    elif kind == "video":
        import cv2

        cap = cv2.VideoCapture(source)
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        cap.release()
        total = n if n > 0 else None
    if max_frames is not None:
        total = min(total, max_frames) if total else max_frames
    return total


def check_outputs(args: argparse.Namespace) -> None:
    """Every path this run will write, tried before the model is opened or a frame is read."""
    from fer_edge.runtime.outputs import check_output_dir, check_output_file, check_video_out
    from fer_edge.runtime.results import summary_path

    check_output_file(args.out, "--out")
    check_output_file(args.summary or summary_path(args.out), "--summary")
    if args.video_out:
        check_video_out(args.video_out)
    if args.save_dir:
        check_output_dir(args.save_dir, "--save-dir")


def stage_call(args: argparse.Namespace, cfg: Any = None):
    """The ``runtime:`` section with ``--backend`` on top (the pipeline builds the same call)."""
    from fer_edge.cli import load_args_config
    from fer_edge.stages import run

    return run.from_config(cfg if cfg is not None else load_args_config(args), backend=args.backend)


def run(args: argparse.Namespace) -> int:
    from fer_edge.cli import load_args_config
    from fer_edge.runtime.outputs import ImageSink
    from fer_edge.runtime.results import JsonlWriter, VideoSink, summary_path, write_summary
    from fer_edge.runtime.stats import format_summary

    cfg = load_args_config(args)
    call = stage_call(args, cfg)
    runtime = call.settings["config"]
    options = {**_crop_overrides(args, cfg), **_options(args)}
    check_outputs(args)
    pipe = call(args.model, **options)
    log.info("run: %s → %s%s", args.source, args.out, f" + {args.video_out}" if args.video_out else "")
    writer = JsonlWriter(args.out)
    video = VideoSink(args.video_out, fps=runtime.video_fps) if args.video_out else None
    stills = ImageSink(args.save_dir) if args.save_dir else None
    progress = _Progress(_total_frames(args.source, pipe.config.max_frames),
                         enabled=not args.no_progress and not getattr(args, "quiet", False))
    interrupted, error = False, None
    try:
        with _sigterm_as_interrupt():
            try:
                for result in pipe.run(args.source, sequence=args.sequence):
                    writer.write(result)
                    if video is not None:
                        video.write(result.image, result.faces)
                    if stills is not None:
                        stills.write(result.image, result.faces, result.frame, result.path)
                    progress.update(len(result.faces))
            except KeyboardInterrupt:
                interrupted = True
                log.warning("interrupted: flushing results")
            except Exception as exc:  # noqa: BLE001 - flush what we have, then report it
                error = exc
    finally:
        progress.close()
        writer.close()
        if video is not None:
            video.close()
        summary = pipe.summary()
        summary.update(source=str(args.source), out=str(args.out), video_out=args.video_out,
                       save_dir=args.save_dir, interrupted=interrupted)
        write_summary(args.summary or summary_path(args.out), summary)
    # The error (if any) is said once, by the CLI's error line; the summary keeps it in its JSON.
    print(format_summary({**summary, "error": None} if error is not None else summary))
    print(f"results: {args.out} ({writer.lines} lines)" + (f", video: {args.video_out}" if video else "")
          + (f", {stills.written} annotated image(s) in {args.save_dir}" if stills else ""))
    if error is not None:
        if isinstance(error, OSError):  # a disk or device refusing a write late in the run: name it
            from fer_edge.runtime.errors import OutputError

            raise OutputError(f"{error} (results up to the error were written to {args.out})") from error
        raise error
    return 0
