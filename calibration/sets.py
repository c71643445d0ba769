"""The three image sets of a calibration — ranges, gate, validation — and the proof they do not overlap.

* **calibration**: unlabelled target faces the activation ranges are measured on;
* **gate**: held-back unlabelled target faces INT8 is compared with FP32 on (a folder of its own, or a
  seeded share of the calibration folder held back before the calibration images are picked);
* **validation** (optional): labelled faces whose accuracy drop is reported — never the split a report
  quotes (the pipeline passes ``target_val``, never ``target_test``).

Calibration images are picked only among images whose bytes (sha256) are in neither of the other two
sets, and the final lists are checked again: an INT8 model is never judged on the faces it was
calibrated on. The report carries each list's count and sha256.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Union

from fer_edge.runtime.contract import Contract
from fer_edge.runtime.errors import ConfigError, DataError

from .images import ImageSet, load_images

PathLike = Union[str, Path]
#: below this many gate faces one disagreement moves agreement by more than 10 points: refuse
MIN_GATE_IMAGES = 10
#: a gate held back from the calibration folder takes at most this share of it
HOLDBACK_SHARE = 0.25
VALIDATION_MAX_IMAGES = 100_000


@dataclass
class ImageSets:
    calibration: ImageSet
    gate: ImageSet
    validation: Optional[ImageSet]
    gate_held_back: bool

    def overlap(self) -> Dict[str, int]:
        """Images (by content) the calibration list shares with the gate / validation lists: must be 0."""
        cal = set(self.calibration.digests)
        out = {"calibration_gate": len(cal & set(self.gate.digests))}
        if self.validation is not None:
            out["calibration_validation"] = len(cal & set(self.validation.digests))
        return out

    def summary(self) -> Dict[str, Any]:
        gate = self.gate.summary()
        gate["held_back_from_calibration_folder"] = self.gate_held_back
        return {"calibration": self.calibration.summary(), "gate": gate,
                "validation": self.validation.summary() if self.validation is not None else None,
                "overlap": self.overlap(), "disjoint_by": "sha256 of each image's bytes"}


def _count(folder: PathLike, contract: Contract) -> int:
    from fer_edge.export.images import load_folder

    folder = Path(folder)
    if not folder.exists():
        raise DataError(f"calibration images: {folder} does not exist")
    return len(load_folder(folder, contract.labels))


def load_sets(contract: Contract, images: PathLike, num_images: int, min_images: int,
              gate_images: Optional[PathLike] = None, gate_max_images: int = 200,
              eval_data: Optional[PathLike] = None, detect: bool = False, seed: int = 0) -> ImageSets:
    """Gate set first (its own folder, or held back from ``images``), the validation set, then the
    calibration images among what neither uses; refuse overlapping or too-small sets."""
    if num_images < 1 or min_images < 0 or min_images > num_images:
        raise ConfigError(f"calibration: need 1 <= num_images and 0 <= min_images <= num_images, got "
                          f"num_images {num_images}, min_images {min_images}; raise --num-images or lower "
                          "--min-images")
    if gate_max_images < MIN_GATE_IMAGES:
        raise ConfigError(f"calibrate.gate_images {gate_max_images}: the gate needs at least {MIN_GATE_IMAGES}")
    held_back = gate_images is None
    if held_back:
        found = _count(images, contract)
        n_gate = min(gate_max_images, int(found * HOLDBACK_SHARE))
        if n_gate < MIN_GATE_IMAGES:
            raise DataError(f"calibration images: {images} holds {found} image(s); holding back "
                            f"{HOLDBACK_SHARE:.0%} for the INT8 gate leaves fewer than {MIN_GATE_IMAGES} gate faces. "
                            "Give more target images, or a separate folder of unlabelled target faces with "
                            "--gate-images")
        gate = load_images(images, contract, n_gate, MIN_GATE_IMAGES, detect=detect, seed=seed + 1, role="gate")
    else:
        gate = load_images(gate_images, contract, gate_max_images, MIN_GATE_IMAGES, detect=detect, seed=seed,
                           role="gate")
    val = (load_images(eval_data, contract, VALIDATION_MAX_IMAGES, 1, labelled=True, role="validation")
           if eval_data else None)
    exclude = set(gate.digests) | (set(val.digests) if val is not None else set())
    calib = load_images(images, contract, num_images, min_images, detect=detect, seed=seed, exclude=exclude)
    sets = ImageSets(calib, gate, val, held_back)
    shared = {k: v for k, v in sets.overlap().items() if v}
    if shared:  # cannot happen after the exclusion above; the check is what the report's "disjoint" rests on
        raise DataError(f"calibration images overlap the held-out sets {shared}; refusing to judge INT8 on the "
                        "faces it was calibrated on")
    return sets
