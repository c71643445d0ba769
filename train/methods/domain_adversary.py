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

``conditional=True`` is CDAN (Long et al. 2018): ``D`` sees the multilinear map ``f ⊗ softmax(C(f))``
instead of ``f`` (the class predictions are detached, as in tllib), so it aligns the joint
distribution of features and predicted classes rather than the marginal alone — one
class's target features are not pulled onto another class's source features, which is what plain
DANN does when the two domains' class balances differ (neutral-heavy drivers vs balanced photos).
``entropy_weighting`` (CDAN+E) weighs each sample by ``1 + exp(-H(p))`` so confident predictions
steer the alignment more than uncertain ones.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..models.heads import MLPHead
from .gradient_reversal import GradientReversal
from .losses import binary_accuracy, entropy


class DomainAdversary(nn.Module):
    def __init__(self, in_dim: int, hidden: int = 256, dropout: float = 0.5, lambda_max: float = 1.0,
                 warmup: float = 0.0, conditional: bool = False, num_classes: int = 0,
                 entropy_weighting: bool = False):
        super().__init__()
        if conditional and num_classes < 2:
            raise ValueError("a conditional (CDAN) adversary needs num_classes >= 2")
        self.conditional, self.entropy_weighting = bool(conditional), bool(entropy_weighting and conditional)
        self.grl = GradientReversal(lambda_max, warmup)
        self.disc = MLPHead(in_dim * num_classes if conditional else in_dim, 1, hidden=hidden, dropout=dropout,
                            batch_norm=True)

    def forward(self, fs: torch.Tensor, ft: torch.Tensor, p: float, logits_s: Optional[torch.Tensor] = None,
                logits_t: Optional[torch.Tensor] = None,
                source_weight: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, float, float]:
        """Returns (loss, discriminator accuracy, current λ). The logits are needed when conditional;
        ``source_weight`` (one per source sample) re-weighs the source side, e.g. by class importance."""
        lam = self.grl.set_progress(p)
        f = self.grl(torch.cat([fs, ft], 0))
        weight: Optional[torch.Tensor] = None
        if self.conditional:
            if logits_s is None or logits_t is None:
                raise ValueError("a conditional (CDAN) adversary needs the source and target logits")
            g = F.softmax(torch.cat([logits_s, logits_t], 0).detach(), dim=1)
            f = torch.bmm(g.unsqueeze(2), f.unsqueeze(1)).flatten(1)
            if self.entropy_weighting:
                weight = 1.0 + torch.exp(-entropy(g))
        logits = self.disc(f).squeeze(1)
        target = torch.cat([fs.new_ones(fs.shape[0]), ft.new_zeros(ft.shape[0])])
        # mean of the two per-domain BCEs, so unequal batch sizes weigh the domains equally
        n = fs.shape[0]
        if source_weight is not None:  # target samples keep weight 1
            side = torch.cat([source_weight.detach().to(logits.dtype), logits.new_ones(logits.shape[0] - n)])
            weight = side if weight is None else weight * side
        loss = 0.5 * (_bce(logits[:n], target[:n], None if weight is None else weight[:n])
                      + _bce(logits[n:], target[n:], None if weight is None else weight[n:]))
        return loss, binary_accuracy(logits, target), lam


def _bce(logits: torch.Tensor, target: torch.Tensor, weight: Optional[torch.Tensor]) -> torch.Tensor:
    """BCE with logits; with ``weight``, a weighted mean (weights normalised to sum to one, as CDAN+E)."""
    if weight is None:
        return F.binary_cross_entropy_with_logits(logits, target)
    per = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    w = weight.detach()
    return (per * w).sum() / w.sum().clamp_min(1e-12)
