"""``dann`` — Akhmetov (2021) after Ganin & Lempitsky (2015): source cross-entropy plus a domain
discriminator on the backbone features behind a gradient-reversal layer.

``L = CE(C(G(x_s)), y_s) + L_D(G(x_s), G(x_t); λ(p)) [+ w_IM · IM(C(G(x_t)))]``

Choices (see ``train.dann`` in the config): λ_max 0.3 with a 10 % warm-up at λ = 0 (the
"adaptation can hurt" advice: a large early λ wrecks the source classifier); source and target go
through the backbone in separate passes (per-domain BatchNorm statistics while training); lr
annealing ``η0/(1+10p)^0.75`` and the backbone lr multiplier are the trainer's. Logs the
discriminator accuracy ``disc_acc`` and the current ``lambda``. ``conditional: true`` turns the
discriminator into CDAN's (features ⊗ class predictions; ``entropy_weighting`` for CDAN+E), the
variant meant for a target whose class balance differs from the source's.
"""
from __future__ import annotations

from typing import Any, Sequence, Tuple

import torch
import torch.nn.functional as F

from ..models import FerNet
from .base import Batch, Logs, Method, _acc
from .domain_adversary import DomainAdversary


class DANN(Method):
    name = "dann"

    def __init__(self, cfg: Any, net: FerNet, labels: Sequence[str], num_identities: int = 0):
        super().__init__(cfg, net, labels, num_identities)
        c = cfg.dann
        self.mcfg = c
        self.adversary = DomainAdversary(net.spec.feature_dim, c.hidden, c.dropout, c.lambda_max, c.warmup,
                                         conditional=c.conditional, num_classes=len(self.labels),
                                         entropy_weighting=c.entropy_weighting)

    def loss(self, batch: Batch) -> Tuple[torch.Tensor, Logs]:
        fs, ls, ft, lt = self.source_and_target(batch)
        ce = F.cross_entropy(ls, batch.ys)
        adv, d_acc, lam = self.adversary(fs, ft, batch.p, ls, lt)
        logs: Logs = {"cls": float(ce.detach()), "domain": float(adv.detach()), "disc_acc": d_acc,
                      "lambda": lam, "src_acc": _acc(ls, batch.ys)}
        total = ce + adv + self.im_term(lt, self.mcfg.im_weight, logs)
        return total, logs
