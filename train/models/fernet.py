"""``FerNet``: backbone + expression head — exactly the graph that export ships.

Adaptation methods wrap a FerNet with their own discriminators, decoders and extra encoders; the
trainer hands ``method.inference_module()`` (a FerNet) to the checkpoint, so nothing training-only
can leak into the exported model.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, Mapping

import torch
from torch import nn

from .backbones import build_backbone


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild the network from a checkpoint's manifest."""

    backbone: str = "resnet18"
    in_channels: int = 1
    num_classes: int = 7
    feature_dim: int = 128
    width: float = 1.0
    dropout: float = 0.2
    #: eval-mode features are the mean of the face's and its mirror image's (``model.flip_average``)
    flip_average: bool = False

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelSpec:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


class FerNet(nn.Module):
    """``forward(x) -> logits``; ``features(x)`` gives the backbone embedding the methods align."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        self.backbone = build_backbone(spec.backbone, spec.in_channels, spec.feature_dim, spec.width)
        self.dropout = nn.Dropout(spec.dropout)
        self.head = nn.Linear(spec.feature_dim, spec.num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone embedding; with ``flip_average`` in eval mode, the mean over the face and its mirror image, from
        one pass over the doubled batch (the exported graph does the same, so ONNX/TensorRT match training's eval)."""
        if not (self.spec.flip_average and not self.training):
            return self.backbone(x)
        f = self.backbone(torch.cat([x, x.flip(-1)], 0))
        # A mean over a reshaped axis, not ``(a + b) * 0.5``: a float constant in the graph would be quantized as if
        # it were a weight by the INT8 calibration.
        return f.reshape(2, x.shape[0], f.shape[1]).mean(0)

    def classify(self, f: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(f))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(x))


class ExportWrapper(nn.Module):
    """What goes into ONNX: ``input`` → (``logits``, ``probs``)."""

    def __init__(self, net: FerNet):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor):
        logits = self.net(x)
        return logits, torch.softmax(logits, dim=1)
