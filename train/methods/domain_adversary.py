"""The domain-adversarial loss shared by DANN, pose_adv and disentangle (tllib's
``DomainAdversarialLoss`` in our words).

``L_D = ½·BCE(D(GRL_λ(f_s)), 1) + ½·BCE(D(GRL_λ(f_t)), 0)``

``D`` is an MLP (``hidden``–``hidden``, BatchNorm, ReLU, dropout) applied to the *concatenated*
source and target features — concatenated so its BatchNorm sees both domains in one batch (a
per-domain pass would normalise the domain difference away). Minimising ``L_D`` trains ``D`` to
tell the domains apart; the GRL turns the same gradient into ``-λ·∇`` for the feature extractor,
which learns to make them indistinguishable. The discriminator's accuracy is returned as the
diagnostic that reveals failure: ≈ 50 % from the first step means ``D`` learns nothing, ≈ 100 %
throughout means the extractor lost the game and the features are not aligned.
"""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..models.heads import MLPHead
from .gradient_reversal import GradientReversal
from .losses import binary_accuracy


class DomainAdversary(nn.Module):
    def __init__(self, in_dim: int, hidden: int = 256, dropout: float = 0.5, lambda_max: float = 1.0,
                 warmup: float = 0.0):
        super().__init__()
        self.grl = GradientReversal(lambda_max, warmup)
        self.disc = MLPHead(in_dim, 1, hidden=hidden, dropout=dropout, batch_norm=True)

    def forward(self, fs: torch.Tensor, ft: torch.Tensor, p: float) -> Tuple[torch.Tensor, float, float]:
        """Returns (loss, discriminator accuracy, current λ)."""
        lam = self.grl.set_progress(p)
        logits = self.disc(self.grl(torch.cat([fs, ft], 0))).squeeze(1)
        target = torch.cat([fs.new_ones(fs.shape[0]), ft.new_zeros(ft.shape[0])])
        # mean of the two per-domain BCEs, so unequal batch sizes weigh the domains equally
        n = fs.shape[0]
        loss = 0.5 * (F.binary_cross_entropy_with_logits(logits[:n], target[:n])
                      + F.binary_cross_entropy_with_logits(logits[n:], target[n:]))
        return loss, binary_accuracy(logits, target), lam
