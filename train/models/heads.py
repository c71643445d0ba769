"""Training-only heads the adaptation methods attach to a FerNet: MLP discriminators and a decoder.

They never reach export: the trainer checkpoints ``method.inference_module()`` (the FerNet) only.
"""
from __future__ import annotations

from typing import List

import torch
from torch import nn


class MLPHead(nn.Module):
    """``in_dim → hidden → hidden → out`` with BatchNorm, ReLU and dropout (the tllib discriminator shape).

    BatchNorm is optional: a head applied to source and target features *separately* must not use it,
    or it would normalise each domain on its own and erase the difference it is meant to detect.
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 256, layers: int = 2, dropout: float = 0.5,
                 batch_norm: bool = True):
        super().__init__()
        mods: List[nn.Module] = []
        d = in_dim
        for _ in range(layers):
            mods.append(nn.Linear(d, hidden))
            if batch_norm:
                mods.append(nn.BatchNorm1d(hidden))
            mods += [nn.ReLU(inplace=True), nn.Dropout(dropout)]
            d = hidden
        mods.append(nn.Linear(d, out_dim))
        self.net = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class FaceDecoder(nn.Module):
    """Rebuilds a downsampled face (``channels x size x size``, in preprocessed units) from a code vector.

    Small on purpose: reconstruction is a regulariser for the encoders, not an image model.
    """

    def __init__(self, in_dim: int, channels: int, size: int = 16, hidden: int = 32):
        super().__init__()
        if size % 4:
            raise ValueError(f"decoder size {size} must be a multiple of 4")
        self.channels, self.size, self.hidden = channels, size, hidden
        self.fc = nn.Linear(in_dim, hidden * (size // 4) ** 2)
        self.up = nn.Sequential(
            nn.ReLU(inplace=True), nn.Upsample(scale_factor=2), nn.Conv2d(hidden, hidden, 3, padding=1),
            nn.ReLU(inplace=True), nn.Upsample(scale_factor=2), nn.Conv2d(hidden, channels, 3, padding=1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(z.shape[0], self.hidden, self.size // 4, self.size // 4)
        return self.up(h)
