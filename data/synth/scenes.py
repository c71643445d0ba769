"""Whole camera frames with ground truth: still scenes (0–3 faces) and a video clip with moving heads.

The runtime uses these to measure face recall (scenes) and smoothing accuracy (video), so every frame
comes with the true face boxes, expressions and intensities. Kiosk frames carry the burned-in
timestamp and vendor logo a real camera adds (a detector must ignore them).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np

from fer_edge.runtime.atomic import atomic_write
from fer_edge.runtime.errors import DataError

from .camera import compose
from .domains import DomainSpec, get_domain, sample_conditions
from .expressions import sample_intensity, sample_label
from .sample import KIND_CODES, make_head, scene_heads

W, H = 640, 480
FPS = 15.0


def overlay(img: np.ndarray, spec: DomainSpec, index: int) -> None:
    """Burned-in timestamp and logo of a consumer/kiosk camera."""
    if spec.background != "kiosk":
        return
    colour = (235, 235, 235) if img.ndim == 3 else 235
    secs = 8 * 3600 + index
    stamp = f"2026-11-25 {secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}"
    cv2.putText(img, stamp, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
    cv2.putText(img, "KIOSK-CAM", (W - 110, H - 10), cv2.FONT_HERSHEY_DUPLEX, 0.5, colour, 1, cv2.LINE_AA)


def _face_json(box: Sequence[float], truth) -> Dict:
    return {"bbox": [int(round(v)) for v in box], "expression": truth.expression,
            "intensity": round(truth.intensity, 4), "identity": truth.identity, "yaw": round(truth.yaw, 2),
            "pitch": round(truth.pitch, 2), "roll": round(truth.roll, 2)}


def _scene_chunk(job: Tuple[str, Sequence[int], int, List[int], str]) -> List[Tuple[str, List[Dict]]]:
    domain, indices, seed, idents, root = job
    from .writer import write_png

    cv2.setNumThreads(1)
    spec = get_domain(domain)
    out = []
    for i in indices:
        rng = np.random.default_rng([int(seed), KIND_CODES["scenes"], int(i)])
        cond = sample_conditions(rng, spec)
        n = int(rng.choice(4, p=[0.1, 0.4, 0.3, 0.2]))
        heads, truths = scene_heads(rng, spec, idents, W, H, n, cond)
        img, boxes = compose(W, H, heads, spec, cond, rng)
        overlay(img, spec, i)
        rel = f"images/frame_{i:06d}.png"
        write_png(Path(root) / rel, img)
        out.append((rel, [_face_json(b, t) for b, t in zip(boxes, truths)]))
    return out


def write_scenes(spec: DomainSpec, root: Path, count: int, idents: List[int], seed: int, workers: int) -> None:
    """``root/images/frame_*.png`` + ``labels.csv`` (one row per face) + ``frames.jsonl`` (one line per frame)."""
    from .writer import SCENE_COLUMNS, run_chunks, write_csv

    step = max(4, min(32, count // (workers * 4) or 4))
    jobs = [(spec.name, range(s, min(count, s + step)), seed, idents, str(root)) for s in range(0, count, step)]
    frames = [f for chunk in run_chunks(_scene_chunk, jobs, workers, f"scenes {spec.name}") for f in chunk]
    rows, lines = [], []
    for k, (rel, faces) in enumerate(frames):
        lines.append(json.dumps({"frame": k, "path": rel, "faces": faces}))
        for f in faces:
            x, y, w, h = f["bbox"]
            rows.append({"path": rel, "x": x, "y": y, "w": w, "h": h, "expression": f["expression"],
                         "intensity": f"{f['intensity']:.4f}", "identity": f["identity"], "yaw": f"{f['yaw']:.2f}",
                         "pitch": f"{f['pitch']:.2f}", "roll": f"{f['roll']:.2f}", "domain": spec.name})
    write_csv(root / "labels.csv", SCENE_COLUMNS, rows)
    atomic_write(root / "frames.jsonl", "\n".join(lines) + "\n")


def _timeline(rng: np.random.Generator, spec: DomainSpec, n: int) -> List[Tuple[str, float, int, int]]:
    """Expression segments (class, peak intensity, start, end) covering ``n`` frames, neutral between."""
    segs, t, k = [], 0, 0
    while t < n:
        length = int(rng.uniform(1.0, 3.0) * FPS)
        expressive = (0.0,) + tuple(spec.class_weights[1:])
        name = "neutral" if k % 2 == 0 else sample_label(rng, expressive)
        peak = 1.0 if name == "neutral" else max(0.35, sample_intensity(rng, name, *spec.intensity_beta))
        segs.append((name, peak, t, min(n, t + length)))
        t, k = t + length, k + 1
    return segs


def write_video(spec: DomainSpec, root: Path, n: int, idents: List[int], seed: int) -> str:
    """One clip of ``n`` frames: ``video.mp4`` (``video.avi`` if mp4 cannot be written) + ``frames.jsonl``."""
    rng = np.random.default_rng([int(seed), KIND_CODES["video"], 0])
    cond = sample_conditions(rng, spec)
    n_faces = 1 if spec.background == "cabin" else int(rng.integers(1, 3))
    side0 = {"cabin": 190.0, "studio": 150.0}.get(spec.background, 95.0)
    faces = []
    for f in range(n_faces):
        faces.append({
            "ident": int(idents[int(rng.integers(len(idents)))]),
            "cx": W * (0.5 if n_faces == 1 else 0.3 + 0.4 * f), "cy": H * 0.5, "side": side0 * rng.uniform(0.9, 1.1),
            "phase": rng.uniform(0, 2 * math.pi, 4), "period": rng.uniform(3.0, 7.0, 4) * FPS,
            "occ": tuple(k for k, p in sorted(spec.occluder_p.items()) if rng.random() < p * 0.5),
            "timeline": _timeline(rng, spec, n)})
    pitch_mid = 0.5 * (spec.pitch[0] + spec.pitch[1])
    pitch_amp = 0.5 * (spec.pitch[1] - spec.pitch[0])
    writer, name = None, None
    for ext, fourcc in (("mp4", "mp4v"), ("avi", "MJPG")):
        writer = cv2.VideoWriter(str(root / f"video.{ext}"), cv2.VideoWriter_fourcc(*fourcc), FPS, (W, H), True)
        if writer.isOpened():
            name = f"video.{ext}"
            break
        writer.release()
    if name is None:
        raise DataError("OpenCV cannot write mp4 or avi video here (no video encoder in this OpenCV build)")
    lines = []
    prev_yaw = [0.0] * n_faces
    for i in range(n):
        frng = np.random.default_rng([int(seed), KIND_CODES["video"], 1, i])
        heads, truths = [], []
        gain = cond.face_gain * (1.0 + 0.08 * math.sin(2 * math.pi * i / (2.5 * FPS)))  # auto-exposure pumping
        for k, f in enumerate(faces):
            ph, per = f["phase"], f["period"]
            yaw = float(np.clip(spec.yaw_max * 0.8 * math.sin(2 * math.pi * i / per[0] + ph[0]),
                                -spec.yaw_max, spec.yaw_max))
            pitch = pitch_mid + pitch_amp * math.sin(2 * math.pi * i / per[1] + ph[1])
            roll = spec.roll_sd * math.sin(2 * math.pi * i / per[2] + ph[2])
            cx = f["cx"] + 0.15 * f["side"] * math.sin(2 * math.pi * i / per[3] + ph[3])
            seg = next(s for s in f["timeline"] if s[2] <= i < s[3])
            ramp = max(1, int(0.3 * FPS))
            env = min(1.0, (i - seg[2] + 1) / ramp, (seg[3] - i) / ramp)
            intensity = 1.0 if seg[0] == "neutral" else max(0.02, seg[1] * env)
            srng = np.random.default_rng([int(seed), KIND_CODES["video"], 2, k, seg[2]])
            head, truth = make_head(srng, spec, f["ident"], (yaw, pitch, roll), cx, f["cy"], f["side"], f["occ"],
                                    seg[0], intensity)
            heads.append(head)
            truths.append(truth)
            speed = abs(yaw - prev_yaw[k]) if i else 0.0
            prev_yaw[k] = yaw
        fcond = cond.__class__(**{**cond.__dict__, "face_gain": gain,
                                  "blur_len": min(9.0, cond.blur_len + 1.5 * speed) if spec.blur_p else 0.0})
        img, boxes = compose(W, H, heads, spec, fcond, frng)
        overlay(img, spec, i // int(FPS))
        writer.write(img if img.ndim == 3 else cv2.cvtColor(img, cv2.COLOR_GRAY2BGR))
        lines.append(json.dumps({"frame": i, "faces": [_face_json(b, t) for b, t in zip(boxes, truths)]}))
    writer.release()
    if not (root / name).is_file() or (root / name).stat().st_size == 0:
        raise DataError(f"OpenCV wrote an empty {name}; this OpenCV build cannot encode video")
    atomic_write(root / "frames.jsonl", "\n".join(lines) + "\n")
    return name
