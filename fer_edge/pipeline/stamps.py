"""Make-like stage stamps: a stage is skipped when its inputs are unchanged and its outputs intact.

Each stage writes ``<out>/<stage>/stage.json`` (atomically, as the very last step) holding the hash of
everything it was computed from (its config sections and the stamps of the stages before it) and the
sha256 of each output file. A killed run leaves no stamp for the interrupted stage, so the rerun
redoes exactly that stage (which itself resumes from its last checkpoint where it can).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from fer_edge.runtime.atomic import atomic_write
from fer_edge.runtime.manifest import sha256_file
from fer_edge.runtime.results import finite

STAMP = "stage.json"


def hash_inputs(obj: Any) -> str:
    """Stable sha256 of a JSON-able object (dict keys sorted)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class Stamp:
    stage: str
    inputs_hash: str
    outputs: Dict[str, str] = field(default_factory=dict)   # relative path → sha256
    result: Dict[str, Any] = field(default_factory=dict)     # small JSON summary the report reads
    seconds: float = 0.0
    status: str = "done"                                     # done | skipped (e.g. no TensorRT)

    def to_json(self) -> str:
        return json.dumps(finite(self.__dict__), indent=2, sort_keys=True, default=str, allow_nan=False) + "\n"


def stamp_path(stage_dir: Path) -> Path:
    return stage_dir / STAMP


def read_stamp(stage_dir: Path) -> Optional[Stamp]:
    p = stamp_path(stage_dir)
    if not p.is_file():
        return None
    try:
        data = json.loads(p.read_text())
        st = Stamp(**data)
    except (ValueError, TypeError):
        return None
    if not (isinstance(st.inputs_hash, str) and isinstance(st.outputs, dict) and isinstance(st.result, dict)):
        return None  # a hand-edited or foreign stamp: rerun the stage rather than crash on it
    return st


def stamp_is_fresh(stage_dir: Path, inputs_hash: str) -> Optional[Stamp]:
    """The stamp if the stage is up to date (same inputs, every output present with its hash), else None."""
    st = read_stamp(stage_dir)
    if st is None or st.inputs_hash != inputs_hash:
        return None
    for rel, digest in st.outputs.items():
        f = Path(rel) if Path(rel).is_absolute() else stage_dir.parent / rel
        if not f.is_file() or sha256_file(f) != digest:
            return None
    return st


def _key(path: Path, root: Path) -> str:
    """Outputs inside the run folder are recorded relative to it (the folder can move); others absolutely."""
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path.resolve())


def write_stamp(stage_dir: Path, stage: str, inputs_hash: str, outputs: List[Path], result: Dict[str, Any],
                seconds: float, status: str = "done") -> Stamp:
    root = stage_dir.parent
    st = Stamp(stage=stage, inputs_hash=inputs_hash, outputs={_key(Path(o), root): sha256_file(o) for o in outputs},
               result=result, seconds=round(seconds, 2), status=status)
    atomic_write(stamp_path(stage_dir), st.to_json())
    return st
