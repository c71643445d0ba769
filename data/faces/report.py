"""What an extraction tells the user: faces.csv, the frames with no face, a contact sheet, summary.json.

A face extractor that silently drops frames hides a detector problem until accuracy falls, so
every frame is accounted for: it gave faces (``faces.csv``), it gave none (``no_face.txt``) or it
could not be read (``skipped.txt``). With ground truth the summary carries recall over all poses
and over near-frontal ones (|yaw| ≤ 30°), the figure the issue's acceptance asks for.
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import fields
from pathlib import Path
from typing import Any, Dict, List, Sequence

import cv2
import numpy as np

from fer_edge import __version__
from fer_edge.runtime.atomic import atomic_write

from .detect_frame import FaceRow, FrameOutcome
from .extract import SUMMARY_NAME, Extraction

FACES_CSV = "faces.csv"
NO_FACE = "no_face.txt"
SKIPPED = "skipped.txt"
CONTACT_SHEET = "contact_sheet.png"
#: The synth-crop label columns, so ``faces/labels.csv`` loads with the ordinary synth loader.
LABEL_COLUMNS = ["path", "expression", "intensity", "identity", "yaw", "pitch", "roll", "domain"]
FRONTAL_YAW = 30.0


def recall(outcomes: Sequence[FrameOutcome], max_abs_yaw: float = math.inf) -> Dict[str, Any]:
    """Share of true faces (with |yaw| ≤ ``max_abs_yaw``) that a kept detection matched at IoU ≥ 0.5."""
    faces = [t for o in outcomes for t in o.truth if not (abs(t.yaw) > max_abs_yaw)]
    found = sum(t.matched for t in faces)
    return {"true_faces": len(faces), "found": found, "recall": round(found / len(faces), 4) if faces else None}


def _csv(columns: Sequence[str], rows: Sequence[Dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def make_contact_sheet(root: Path, rows: Sequence[FaceRow], domain: str, per_row: int = 10) -> np.ndarray:
    """The data preview's contact sheet (one row per class, faces spread evenly) of the crops just written."""
    from fer_edge.data.dataset import FaceDataset, FaceRecord
    from fer_edge.data.preview import contact_sheet
    from fer_edge.runtime.contract import LABELS, labels_with_contempt

    labels = tuple(labels_with_contempt(any(r.label and r.label not in LABELS for r in rows)))
    recs = [FaceRecord(path=r.crop, label=labels.index(r.label) if r.label in labels else -1, domain=domain)
            for r in rows]
    return contact_sheet(FaceDataset(root, recs, labels, domain), per_row=per_row)


def summary(ext: Extraction, input_sha256: str = "") -> Dict[str, Any]:
    outs = ext.outcomes
    no_face = [o for o in outs if o.error is None and not o.rows]
    unreadable = [o for o in outs if o.error is not None and not o.rows]
    frames = len(outs) - len(unreadable)
    out: Dict[str, Any] = {
        "producer": "fer-edge", "version": __version__, "kind": "faces",
        "source": str(ext.footage.path), "source_kind": ext.footage.kind, "input_sha256": input_sha256,
        "layout": ext.layout, "every": ext.every, "policy": ext.policy.to_dict(),
        "frames": frames, "frames_with_faces": sum(1 for o in outs if o.rows), "frames_no_face": len(no_face),
        "frames_unreadable": len(unreadable) + len(ext.footage.skipped), "faces": ext.faces,
        "labelled_faces": sum(1 for o in outs for r in o.rows if r.label),
        "counters": ext.counters(), "seconds": round(ext.seconds, 3), "workers": ext.workers,
        "frames_per_second": round(len(outs) / ext.seconds, 2) if ext.seconds > 0 else None,
        "dataset": "faces",
    }
    if ext.footage.has_truth:
        out["recall_all"] = recall(outs)
        out["recall_frontal"] = {**recall(outs, FRONTAL_YAW), "max_abs_yaw": FRONTAL_YAW}
    return out


def write_reports(ext: Extraction, root: Path, contact_sheet: bool = True, input_sha256: str = "") -> Dict[str, Any]:
    """Write every report file into ``root`` (summary.json last: it marks the folder finished)."""
    rows = [r for o in ext.outcomes for r in o.rows]
    cols = [f.name for f in fields(FaceRow)]
    atomic_write(root / FACES_CSV, _csv(cols, [r.as_dict() for r in rows]))
    if ext.layout == "truth":
        domain = ext.footage.path.name
        lab = [{"path": r.crop.split("/", 1)[1], "expression": r.label, "intensity": r.intensity,
                "identity": r.identity, "yaw": r.yaw, "pitch": r.pitch, "roll": r.roll, "domain": domain}
               for r in rows if r.label]
        if lab:  # none matched: leave faces/ an unlabelled folder rather than an empty labelled one
            atomic_write(root / "faces" / "labels.csv", _csv(LABEL_COLUMNS, lab))
    no_face = [o.name for o in ext.outcomes if o.error is None and not o.rows]
    atomic_write(root / NO_FACE, "".join(f"{n}\n" for n in no_face))
    skipped: List[str] = [f"{n} — {why}" for n, why in ext.footage.skipped]
    skipped += [f"{o.name} — {o.error}" for o in ext.outcomes if o.error is not None]
    atomic_write(root / SKIPPED, "".join(f"{s}\n" for s in skipped))
    if contact_sheet and rows:
        ok, buf = cv2.imencode(".png", make_contact_sheet(root, rows, ext.footage.path.name))
        if ok:
            atomic_write(root / CONTACT_SHEET, buf.tobytes())
    summ = summary(ext, input_sha256)
    atomic_write(root / SUMMARY_NAME, json.dumps(summ, indent=2, sort_keys=True) + "\n")
    return summ

