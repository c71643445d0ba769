"""Batched inference for evaluation and selection, and AdaBN re-estimation of BatchNorm statistics."""
from __future__ import annotations

import copy
from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .models import FerNet


@torch.no_grad()
def predict(net: FerNet, x: torch.Tensor, device: torch.device, batch_size: int = 256
            ) -> Tuple[np.ndarray, np.ndarray]:
    """(softmax probabilities N×K, backbone features N×D) in eval mode; ``x`` stays on the CPU."""
    was_training = net.training
    net.eval()
    probs, feats = [], []
    for i in range(0, x.shape[0], batch_size):
        f = net.features(x[i:i + batch_size].to(device))
        probs.append(F.softmax(net.classify(f), 1).cpu())
        feats.append(f.cpu())
    net.train(was_training)
    if not probs:
        return np.zeros((0, net.spec.num_classes), np.float32), np.zeros((0, net.spec.feature_dim), np.float32)
    return torch.cat(probs).numpy(), torch.cat(feats).numpy()


def per_sample_ce(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    return -np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, None))


@torch.no_grad()
def adabn(net: FerNet, x_target: torch.Tensor, device: torch.device, batch_size: int = 128) -> FerNet:
    """A copy of ``net`` whose BatchNorm running statistics are re-estimated on target inputs (AdaBN).

    Cumulative averages over the target (``momentum=None``) replace the source-trained statistics; weights
    unchanged. It fixes a gap that lives in the activations' first and second moments (a darker, lower-contrast
    camera). On the cabin camera under the CLAHE crop contract it does not: it cost source-only models 12 points
    on the dev world (``benchmarks/posthoc_target.py``, docs/results/post-hoc-corrections.md), which is why
    ``train.adabn`` stays off.
    """
    out = copy.deepcopy(net)
    bns = [m for m in out.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns or x_target.shape[0] == 0:
        return out
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    out.train()
    for i in range(0, x_target.shape[0], batch_size):
        chunk = x_target[i:i + batch_size]
        if chunk.shape[0] > 1:
            out.features(chunk.to(device))
    for m in bns:
        m.momentum = 0.1
    out.eval()
    return out
