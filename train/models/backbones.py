"""Small CNN backbones in plain ``torch.nn`` (no torchvision): tiny, mobilenet, resnet18.

Each maps ``N x C x H x W`` to a feature vector ``N x feature_dim``. Only ops that ONNX exports
cleanly and TensorRT runs (Conv, BatchNorm folded into Conv on export, ReLU/ReLU6, Add,
GlobalAveragePool, Gemm) are used, so every backbone passes the export allow-list.
"""
from __future__ import annotations

from typing import List

import torch
from torch import nn


def _make_divisible(v: float, divisor: int = 8) -> int:
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers: List[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class TinyNet(nn.Module):
    """Three conv blocks; for tests and CI, a few thousand parameters."""

    def __init__(self, in_channels: int, feature_dim: int, width: float = 1.0):
        super().__init__()
        c = [_make_divisible(16 * width), _make_divisible(32 * width), _make_divisible(64 * width)]
        self.body = nn.Sequential(conv_bn(in_channels, c[0], stride=2), conv_bn(c[0], c[1], stride=2),
                                  conv_bn(c[1], c[2], stride=2), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.proj = nn.Linear(c[2], feature_dim)
        self.out_dim = feature_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.proj(self.body(x)))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand → 3x3 depthwise → 1x1 project (+ residual when shapes allow)."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        self.use_res = stride == 1 and cin == cout
        layers: List[nn.Module] = []
        if expand != 1:
            layers.append(conv_bn(cin, hidden, k=1))
        layers += [conv_bn(hidden, hidden, stride=stride, groups=hidden), conv_bn(hidden, cout, k=1, act=False)]
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.use_res else y


class MobileNet(nn.Module):
    """A MobileNetV2-style network sized for 64-112 px faces on an edge GPU or a 2-core CPU."""

    # expand, channels, repeats, stride
    SETTINGS = ((1, 16, 1, 1), (4, 24, 2, 2), (4, 32, 2, 2), (4, 64, 2, 2), (4, 96, 1, 1))

    def __init__(self, in_channels: int, feature_dim: int, width: float = 1.0):
        super().__init__()
        stem = _make_divisible(16 * width)
        layers: List[nn.Module] = [conv_bn(in_channels, stem, stride=2)]
        cin = stem
        for t, c, n, s in self.SETTINGS:
            cout = _make_divisible(c * width)
            for i in range(n):
                layers.append(InvertedResidual(cin, cout, s if i == 0 else 1, t))
                cin = cout
        last = _make_divisible(256 * max(1.0, width))
        layers += [conv_bn(cin, last, k=1), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.body = nn.Sequential(*layers)
        self.proj = nn.Linear(last, feature_dim)
        self.out_dim = feature_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.proj(self.body(x)))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idt = x if self.down is None else self.down(x)
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + idt)


class ResNet18(nn.Module):
    """ResNet-18 (2-2-2-2 basic blocks) with a 3x3 stride-1 stem suited to small face crops."""

    def __init__(self, in_channels: int, feature_dim: int, width: float = 1.0):
        super().__init__()
        c = [_make_divisible(64 * width), _make_divisible(128 * width),
             _make_divisible(256 * width), _make_divisible(512 * width)]
        layers: List[nn.Module] = [nn.Conv2d(in_channels, c[0], 3, 2, 1, bias=False), nn.BatchNorm2d(c[0]),
                                   nn.ReLU(inplace=True)]
        cin = c[0]
        for i, cout in enumerate(c):
            stride = 1 if i == 0 else 2
            layers += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.body = nn.Sequential(*layers)
        self.proj = nn.Linear(cin, feature_dim)
        self.out_dim = feature_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.proj(self.body(x)))


BACKBONES = {"tiny": TinyNet, "mobilenet": MobileNet, "resnet18": ResNet18}


def build_backbone(name: str, in_channels: int, feature_dim: int, width: float = 1.0) -> nn.Module:
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; one of {sorted(BACKBONES)}")
    return BACKBONES[name](in_channels, feature_dim, width)
