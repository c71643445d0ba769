"""Config section ``data:``: where faces come from. Owned by the data room; standard library only.

``DATA_ROLES`` lives here (not in the loaders) so the CLI and the pipeline can name the roles without
importing OpenCV.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Literal, Optional

from ..runtime.checks import at_least as _at_least
from ..runtime.errors import ConfigError

#: The dataset roles a config names under ``data:`` (the order is the synthetic world's identity blocks, so it is
#: fixed).
DATA_ROLES = ("source", "source_test", "target", "target_val", "target_test")
#: The synthetic world's camera domains (``synth:<domain>``).
Domain = Literal["studio", "cabin-nir", "kiosk"]


@dataclass
class SynthConfig:
    """How the embedded synthetic world is generated when a data path is ``synth:<domain>``."""

    size: int = 112
    identities: int = 60
    seed: int = 0
    workers: int = 2
    counts: Dict[str, int] = field(default_factory=lambda: {
        "source": 6000, "source_test": 1000, "target": 3000, "target_val": 1000, "target_test": 1500})

    def __post_init__(self) -> None:
        _at_least(self, "size", 16)
        _at_least(self, "identities", 1)
        _at_least(self, "seed", 0)  # numpy's SeedSequence refuses negative seeds deep inside generation
        _at_least(self, "workers", 0)
        for role, n in self.counts.items():
            if not isinstance(n, int) or n < 0:
                raise ConfigError(f"counts.{role}: {n!r} must be a whole number ≥ 0")


@dataclass
class DataConfig:
    """Where faces come from. A value ``synth:<domain>`` is generated (and cached) under ``root``."""

    root: str = "runs/data"
    source: Optional[str] = "synth:studio"
    source_test: Optional[str] = None
    target: Optional[str] = "synth:cabin-nir"
    target_val: Optional[str] = "synth:cabin-nir"
    target_test: Optional[str] = "synth:cabin-nir"
    format: Literal["auto", "synth", "imagefolder", "fer2013", "rafdb", "affectnet", "unlabelled"] = "auto"
    detect: bool = False
    contempt: bool = False
    synth: SynthConfig = field(default_factory=SynthConfig)
