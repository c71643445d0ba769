"""``disentangle`` — adversarial disentangled expression representations (Halawa et al., 2020), our reading.

Parts: expression encoder = the FerNet backbone (exported), an **identity branch** (a narrower
backbone, ``id_dim`` features) with an identity head supervised by the source identity labels, and
two adversaries, each a small MLP:

* ``A_id`` predicts identity from expression features;
* ``A_ex`` predicts expression from identity features.

Each adversary is trained with cross-entropy on *detached* features (so it really tries), while the
encoders are trained to make the adversary's prediction **uniform** (maximise its entropy: the
``uniform_confusion`` loss, computed through a frozen copy of the adversary's weights so this term
never teaches the adversary to give up). Both happen in one pass; this is more stable than flipping
labels or a GRL because the encoder's target (uniform) has a fixed optimum.

The product adapts to a new camera, so the DANN domain term on expression features is on by default
(``domain_weight`` 1, 0 turns it off); reconstruction from ``[expr, id]`` is optional and **off by
default** (``recon_weight`` 0) — the source paper's ablation found it did not help; set it > 0 to
measure that here.

``L = CE + w_id·CE_id + w_adv·(CE(A_id|sg) + CE(A_ex|sg) + U(A_id(e)) + U(A_ex(i))) + w_dom·L_D [+ w_rec·MSE]``
"""
from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..models import FerNet
from ..models.backbones import build_backbone
from ..models.heads import FaceDecoder, MLPHead
from .base import Batch, Logs, Method, _acc
from .domain_adversary import DomainAdversary
from .frozen import frozen_call
from .losses import uniform_confusion


class Disentangle(Method):
    name = "disentangle"
    needs_identities = True

    def __init__(self, cfg: Any, net: FerNet, labels: Sequence[str], num_identities: int = 0):
        super().__init__(cfg, net, labels, num_identities)
        c = self.mcfg = cfg.disentangle
        spec = net.spec
        n_id = max(1, num_identities)
        self.id_encoder = build_backbone(spec.backbone, spec.in_channels, c.id_dim, c.id_width)
        self.id_head = nn.Linear(c.id_dim, n_id)
        self.id_from_expr = MLPHead(spec.feature_dim, n_id, hidden=64, layers=1, dropout=0.0, batch_norm=False)
        self.expr_from_id = MLPHead(c.id_dim, spec.num_classes, hidden=64, layers=1, dropout=0.0,
                                    batch_norm=False)
        self.domain: Optional[DomainAdversary] = None
        if c.domain_weight > 0:
            self.domain = DomainAdversary(spec.feature_dim, c.hidden, c.dropout, c.lambda_max, c.warmup)
        self.decoder: Optional[FaceDecoder] = None
        if c.recon_weight > 0:
            self.decoder = FaceDecoder(spec.feature_dim + c.id_dim, spec.in_channels, c.recon_size)

    def loss(self, batch: Batch) -> Tuple[torch.Tensor, Logs]:
        c = self.mcfg
        es, ls, et, lt = self.source_and_target(batch)
        ce = self.task_loss(ls, batch.ys)
        total = ce
        logs: Logs = {"cls": float(ce.detach()), "src_acc": _acc(ls, batch.ys)}
        ids = batch.identity_s if batch.identity_s is not None else torch.full_like(batch.ys, -1)
        known = ids >= 0
        i_s = self.id_encoder(batch.xs)
        if bool(known.any()):
            id_ce = F.cross_entropy(self.id_head(i_s[known]), ids[known])
            adv_id = F.cross_entropy(self.id_from_expr(es.detach()[known]), ids[known])
            logs.update(id=float(id_ce.detach()), adv_id_acc=_acc(self.id_from_expr(es.detach()[known]), ids[known]))
            total = total + c.id_weight * id_ce + c.adv_weight * adv_id
        adv_ex = F.cross_entropy(self.expr_from_id(i_s.detach()), batch.ys)
        confuse = uniform_confusion(frozen_call(self.id_from_expr, es)) \
            + uniform_confusion(frozen_call(self.expr_from_id, i_s))
        logs.update(adv_ex_acc=_acc(self.expr_from_id(i_s.detach()), batch.ys), confusion=float(confuse.detach()))
        total = total + c.adv_weight * (adv_ex + confuse)
        if self.domain is not None:
            d, d_acc, lam = self.domain(es, et, batch.p)
            logs.update(domain=float(d.detach()), disc_acc=d_acc, **{"lambda": lam})
            total = total + c.domain_weight * d
        if self.decoder is not None:
            target = F.adaptive_avg_pool2d(batch.xs, c.recon_size)
            rec = F.mse_loss(self.decoder(torch.cat([es, i_s], 1)), target)
            logs["recon"] = float(rec.detach())
            total = total + c.recon_weight * rec
        total = total + self.target_companion_terms(batch, lt, logs)
        return total, logs
