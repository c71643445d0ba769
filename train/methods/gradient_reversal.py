"""Gradient reversal (Ganin & Lempitsky, 2015): identity forward, ``-λ·grad`` backward.

Placed between a feature extractor and an adversary, it lets one backward pass train the adversary
to *detect* something (domain, pose, identity) while the extractor learns to *hide* it. λ follows the
warm-started schedule ``λ(p) = λ_max · (2 / (1 + exp(-γ p')) - 1)`` with ``p' = (p - warmup)/(1 - warmup)``
clamped to [0, 1], so the adversarial signal is zero while the classifier first learns the source
and then grows smoothly (large early λ is the usual reason DANN collapses).
"""
from __future__ import annotations

import math
from typing import Any, Tuple

import torch
from torch import nn


class GradientReverseFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, coeff: float) -> torch.Tensor:
        ctx.coeff = float(coeff)
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Tuple[torch.Tensor, None]:
        return grad.neg() * ctx.coeff, None


def grad_reverse(x: torch.Tensor, coeff: float = 1.0) -> torch.Tensor:
    return GradientReverseFunction.apply(x, coeff)


def grl_lambda(p: float, lambda_max: float = 1.0, warmup: float = 0.0, gamma: float = 10.0) -> float:
    """The scheduled λ at training progress ``p`` in [0, 1]."""
    if warmup >= 1.0:
        return 0.0
    q = min(1.0, max(0.0, (float(p) - warmup) / (1.0 - warmup)))
    return float(lambda_max) * (2.0 / (1.0 + math.exp(-gamma * q)) - 1.0)


class GradientReversal(nn.Module):
    """GRL layer whose λ is set from training progress: call ``set_progress(p)`` each step."""

    def __init__(self, lambda_max: float = 1.0, warmup: float = 0.0, gamma: float = 10.0):
        super().__init__()
        self.lambda_max, self.warmup, self.gamma = lambda_max, warmup, gamma
        self.coeff = 0.0

    def set_progress(self, p: float) -> float:
        self.coeff = grl_lambda(p, self.lambda_max, self.warmup, self.gamma)
        return self.coeff

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grad_reverse(x, self.coeff)
