"""Config sections owned by the training stage: ``data:``, ``model:`` and ``train:``.

Standard library only, so that loading a config never imports torch.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Literal, Optional

METHOD_NAMES = ("source_only", "target_oracle", "dann", "pose_adv", "disentangle", "cal")
Method = Literal["source_only", "target_oracle", "dann", "pose_adv", "disentangle", "cal"]
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


@dataclass
class DataConfig:
    """Where faces come from. A value ``synth:<domain>`` is generated (and cached) under ``root``."""

    root: str = "runs/data"
    source: str = "synth:studio"
    source_test: Optional[str] = None
    target: str = "synth:cabin-nir"
    target_val: Optional[str] = "synth:cabin-nir"
    target_test: Optional[str] = "synth:cabin-nir"
    format: Literal["auto", "synth", "imagefolder", "fer2013", "rafdb", "affectnet", "unlabelled"] = "auto"
    detect: bool = False
    contempt: bool = False
    synth: SynthConfig = field(default_factory=SynthConfig)


@dataclass
class ModelConfig:
    """The network: a plain ``torch.nn`` backbone plus an expression head."""

    backbone: Literal["tiny", "mobilenet", "resnet18"] = "mobilenet"
    width: float = 1.0
    feature_dim: int = 128
    dropout: float = 0.2


@dataclass
class TrainConfig:
    """The one trainer loop; method-specific settings live under ``train.<method>``."""

    method: Method = "dann"
    methods: List[Method] = field(default_factory=lambda: ["source_only", "dann"])
    epochs: int = 10
    steps_per_epoch: Optional[int] = None
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 5e-4
    backbone_lr_mult: float = 1.0
    lr_anneal: bool = True
    seed: int = 0
    selector: Literal["im", "snd", "dev", "source_val", "last"] = "im"
    balanced: bool = False
    device: Literal["auto", "cpu", "cuda"] = "auto"
    workers: int = 0
    target_identity: Optional[str] = None
    params: Dict[str, Dict[str, float]] = field(default_factory=dict)
