"""Scoring the run stage on a folder of stills (real faces through the torch-free runtime)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict


class StillsScore:
    """The runtime on a folder of stills: in how many a face was found, and -- where a still sits in a folder named
    for its class (an ImageFolder test split) -- how often the runtime's label (the largest face's) is that class.
    This scores the whole deployed road on real faces: detector, crop, preprocessing and the INT8 model."""

    def __init__(self) -> None:
        self.images = self.found = self.labelled = self.correct = 0

    def add(self, res: Any) -> None:
        from fer_edge.runtime.contract import canonical_label

        self.images += 1
        if not res.faces:
            return
        self.found += 1
        truth = canonical_label(Path(res.path).parent.name) if res.path else None
        if truth is None:
            return
        face = max(res.faces, key=lambda f: (f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1]))
        self.labelled += 1
        self.correct += int(face.label == truth)

    def to_dict(self) -> Dict[str, Any]:
        return {"images": self.images, "faces_found": self.found, "labelled_with_face": self.labelled,
                "accuracy_on_found": self.correct / self.labelled if self.labelled else None}

    def headline(self) -> str:
        acc = self.to_dict()["accuracy_on_found"]
        return (f"a face in {self.found} of {self.images} stills"
                + (f", runtime label = folder label on {100 * acc:.1f} % of them" if acc is not None else ""))
