"""``cal`` — contrastive adversarial learning (Kim & Song, AAAI 2021), adapted to 7-class
classification and to domain adaptation.

The original regresses valence–arousal: a batch is split into **strong** and **weak** samples by
the norm of the VA vector; a discriminator maps features to an embedding trained with contrastive
distances (strong and weak apart, each group compact — a Fisher-like criterion); the extractor is
then updated so weak samples look strong to the discriminator; the two alternate (Adam 1e-4,
betas (0.5, 0.9)).

Our adaptation (7 classes, unlabelled target):

* *strength* is the synthetic world's expression intensity on the source (strong: intensity ≥
  ``intensity_threshold``) and the classifier's confidence on the target (strong: max-softmax above
  the batch median, computed without gradient). Where source intensity is unknown (real datasets),
  the source is split by confidence too.
* the discriminator ``D`` (MLP → ``embed_dim``) is stepped first in ``discriminator_step`` on
  detached features with ``L_D = Σ_g mean‖z − μ_g‖² + relu(m − ‖μ_strong − μ_weak‖)²`` over the
  strong and weak groups of the *pooled* source + target batch, by its own Adam (``d_lr``,
  ``d_betas``) — D learns what separates weak from strong expressions.
* the extractor's generator term pulls every weak sample's embedding toward the strong centroid:
  ``L_G = mean_weak ‖D(G(x_w)) − sg(μ_strong)‖²``, weighted by ``cal_weight`` × the warm-up ramp.
  Weak target faces (the cabin's many near-neutral, low-confidence drivers) are thereby pushed
  toward the confident, strong source expressions — domain adaptation through the strong/weak
  geometry rather than a domain label.

``L = CE(source) + w·ramp(p)·L_G [+ w_IM·IM]``; ``disc_acc`` is the fraction of samples whose
embedding is nearer its own group's centroid (≈ 100 %: D separates groups, the extractor has not
caught up; ≈ 50 %: weak and strong overlap in D's eyes).
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F

from ..models import FerNet
from ..models.heads import MLPHead
from .base import Batch, Logs, Method, _acc
from .gradient_reversal import grl_lambda


def strong_mask(batch: Batch, logits_s: torch.Tensor, logits_t: torch.Tensor, threshold: float) -> torch.Tensor:
    """Boolean mask over the pooled [source; target] batch: True = strong expression."""
    conf_s = F.softmax(logits_s.detach(), 1).amax(1)
    conf_t = F.softmax(logits_t.detach(), 1).amax(1)
    if batch.intensity_s is not None and not bool(torch.isnan(batch.intensity_s).all()):
        inten = batch.intensity_s
        strong_s = torch.where(torch.isnan(inten), conf_s > conf_s.median(), inten >= threshold)
    else:
        strong_s = conf_s > conf_s.median()
    return torch.cat([strong_s, conf_t > conf_t.median()])


def contrastive_groups_loss(z: torch.Tensor, strong: torch.Tensor, margin: float) -> Tuple[torch.Tensor, float]:
    """Fisher-like loss: each group compact, the two centroids at least ``margin`` apart; + accuracy."""
    if bool(strong.all()) or not bool(strong.any()):
        return z.sum() * 0.0, float("nan")
    zs, zw = z[strong], z[~strong]
    mu_s, mu_w = zs.mean(0), zw.mean(0)
    within = ((zs - mu_s) ** 2).sum(1).mean() + ((zw - mu_w) ** 2).sum(1).mean()
    between = F.relu(margin - torch.linalg.vector_norm(mu_s - mu_w)) ** 2
    d_s = ((z - mu_s) ** 2).sum(1)
    d_w = ((z - mu_w) ** 2).sum(1)
    acc = float(((d_s < d_w) == strong).float().mean())
    return within + between, acc


class ContrastiveAdversarial(Method):
    name = "cal"

    def __init__(self, cfg: Any, net: FerNet, labels: Sequence[str], num_identities: int = 0):
        super().__init__(cfg, net, labels, num_identities)
        c = self.mcfg = cfg.cal
        self.disc = MLPHead(net.spec.feature_dim, c.embed_dim, hidden=c.hidden, dropout=c.dropout,
                            batch_norm=False)
        self.d_opt = torch.optim.Adam(self.disc.parameters(), lr=c.d_lr, betas=tuple(c.d_betas))

    def own_optimizer_parameters(self) -> List[torch.nn.Parameter]:
        return list(self.disc.parameters())

    def own_optimizers(self) -> Dict[str, torch.optim.Optimizer]:
        return {"discriminator": self.d_opt}

    def discriminator_step(self, batch: Batch) -> Logs:
        with torch.no_grad():
            fs, ft = self.features(batch.xs, "source"), self.features(batch.xt, "target")
            strong = strong_mask(batch, self.net.classify(fs), self.net.classify(ft), self.mcfg.intensity_threshold)
        z = self.disc(torch.cat([fs, ft]))
        loss, acc = contrastive_groups_loss(z, strong, self.mcfg.margin)
        self.d_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.grad_sync(self.disc.parameters())
        self.d_opt.step()
        return {"d_contrast": float(loss.detach()), "disc_acc": acc}

    def loss(self, batch: Batch) -> Tuple[torch.Tensor, Logs]:
        c = self.mcfg
        fs, ls, ft, lt = self.source_and_target(batch)
        ce = self.task_loss(ls, batch.ys)
        strong = strong_mask(batch, ls, lt, c.intensity_threshold)
        z = self.disc(torch.cat([fs, ft]))
        ramp = grl_lambda(batch.p, 1.0, c.warmup)
        logs: Logs = {"cls": float(ce.detach()), "src_acc": _acc(ls, batch.ys), "lambda": ramp * c.cal_weight,
                      "strong_frac": float(strong.float().mean())}
        total = ce
        if bool(strong.any()) and not bool(strong.all()):
            mu_strong = z[strong].mean(0).detach()
            gen = ((z[~strong] - mu_strong) ** 2).sum(1).mean()
            logs["gen"] = float(gen.detach())
            total = total + c.cal_weight * ramp * gen
        total = total + self.target_companion_terms(batch, lt, logs)
        return total, logs
