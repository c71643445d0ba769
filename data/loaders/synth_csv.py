"""``labels.csv`` with ``path,expression[,intensity,identity,yaw,pitch,roll,domain]`` (the synth layout).

Any folder with such a csv loads this way, so a user can label their own crops with a spreadsheet.
"""
from __future__ import annotations

from pathlib import Path

from fer_edge.data.dataset import FaceRecord

from .common import LabelSpace, Loaded, read_csv, to_float

REQUIRED = ("path", "expression")


def load(csv_path: Path, space: LabelSpace) -> Loaded:
    out = Loaded(csv_path.parent)
    header, rows = read_csv(csv_path, REQUIRED)
    if "x" in header and "w" in header:
        from fer_edge.runtime.errors import DataError

        raise DataError(f"{csv_path}: this is a scenes folder (whole frames with face boxes); cut face crops "
                        "from it first (fer-edge data faces) or generate --kind crops")
    for line, row in rows:
        rel = (row.get("path") or "").strip()
        if not rel or row.get("expression") is None:
            out.skip(f"{csv_path.name}:{line}", "malformed row (no path or expression)")
            continue
        label, why = space.index(row["expression"])
        if label is None:
            out.skip(rel, why)
            continue
        out.add_file(rel, FaceRecord(
            path=rel, label=label, intensity=to_float(row.get("intensity")),
            identity=(row.get("identity") or "").strip() or None, yaw=to_float(row.get("yaw")),
            pitch=to_float(row.get("pitch")), roll=to_float(row.get("roll")),
            domain=(row.get("domain") or "").strip() or "unknown"))
    return out
