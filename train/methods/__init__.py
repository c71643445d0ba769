"""Adaptation methods: one small class each, all driven by the one trainer through ``Method``."""
from __future__ import annotations

from typing import Any, Dict, Sequence, Type

from fer_edge.runtime.errors import ConfigError

from ..models import FerNet
from .base import Batch, Method
from .cal import ContrastiveAdversarial
from .dann import DANN
from .disentangle import Disentangle
from .gradient_reversal import GradientReversal, grad_reverse, grl_lambda
from .pixel_da import PixelDA
from .pose_adv import PoseAdversarial
from .self_train import SelfTraining
from .source_only import SourceOnly
from .target_oracle import TargetOracle

METHODS: Dict[str, Type[Method]] = {cls.name: cls for cls in (
    SourceOnly, TargetOracle, DANN, PoseAdversarial, Disentangle, ContrastiveAdversarial, PixelDA, SelfTraining)}


def method_class(name: str) -> Type[Method]:
    if name not in METHODS:
        raise ConfigError(f"train.method: {name!r} is not one of {sorted(METHODS)}")
    return METHODS[name]


def build_method(name: str, train_cfg: Any, net: FerNet, labels: Sequence[str], num_identities: int = 0) -> Method:
    """The method ``name`` wrapped around ``net`` (``train_cfg`` is the ``train:`` section)."""
    return method_class(name)(train_cfg, net, labels, num_identities)


__all__ = ["Batch", "Method", "METHODS", "build_method", "method_class", "GradientReversal", "grad_reverse",
           "grl_lambda"]
