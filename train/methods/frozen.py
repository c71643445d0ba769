"""Reading an adversary without training it: its parameters detached for one call.

An adversary trained in its own step (disentangle's classifiers, pixel_da's discriminator) is also *read* in
the main loss, where only the encoder or generator in front of it may learn from the result.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call


def frozen_call(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``module(x)`` with its parameters detached: gradients reach ``x`` but never the module."""
    params = {k: v.detach() for k, v in module.named_parameters()}
    return functional_call(module, params, (x,))
