"""``dann`` — Akhmetov (2021) after Ganin & Lempitsky (2015): source cross-entropy plus a domain
discriminator on the backbone features behind a gradient-reversal layer.

``L = CE(C(G(x_s)), y_s) + L_D(G(x_s), G(x_t); λ(p)) [+ w_IM · IM(C(G(x_t)))]``

Choices (see ``train.dann`` in the config): the default config's λ_max is 1.0 (Ganin's schedule at full
strength; it beat 0.3 on a dev world, docs/results/adaptation-methods.md) after a 10 % warm-up at λ = 0 (the
"adaptation can hurt" advice: an early λ wrecks the untrained source classifier); source and target go
through the backbone in separate passes (per-domain BatchNorm statistics while training); lr
annealing ``η0/(1+10p)^0.75`` and the backbone lr multiplier are the trainer's. Logs the
discriminator accuracy ``disc_acc`` and the current ``lambda``. ``conditional: true`` turns the
discriminator into CDAN's (features ⊗ class predictions; ``entropy_weighting`` for CDAN+E), the
variant meant for a target whose class balance differs from the source's; ``importance_weighting``
re-weighs the source side by estimated class priors for the same reason (IWDAN).
"""
from __future__ import annotations

from typing import Any, Sequence, Tuple

import torch
import torch.nn.functional as F

from fer_edge.train.label_shift import shift_weights

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
        k = len(self.labels)
        # Running class priors for importance weighting (buffers: saved on resume, broadcast under DDP).
        self.register_buffer("prior_s", torch.full((k,), 1.0 / k))
        self.register_buffer("prior_t", torch.full((k,), 1.0 / k))
        # ``prior_estimate: confusion``: running source confusion C[pred, y] and target prediction histogram μ.
        self.register_buffer("confusion_s", torch.eye(k) / k)
        self.register_buffer("pred_t", torch.full((k,), 1.0 / k))

    def class_importance(self, ys: torch.Tensor, ls: torch.Tensor, logits_t: torch.Tensor) -> torch.Tensor:
        """IWDAN (Tachet des Combes et al. 2020): weight each source sample by ``w_y = p_t(y)/p_s(y)``.

        Plain DANN matches the feature marginals; when the target's class balance differs (drivers are
        mostly neutral, the photos are balanced) the only way to match them is to map some target faces
        of the over-represented class onto other classes' source features. Weighing the source side of
        the adversarial loss by the class-prior ratio makes the *weighted* source marginal the one to
        match. Two label-free estimates of ``w`` (``train.dann.prior_estimate``):

        * ``softmax``: ``p_t`` is a running mean of the classifier's target probabilities. Cheap, but it
          inherits the classifier's bias: a DANN that under-predicts neutral estimates fewer neutral faces,
          which weighs neutral down, which keeps it under-predicted;
        * ``confusion`` (the paper's): solve ``C w = μ`` (least squares) with ``C`` the running joint of
          (source prediction, source label) and ``μ`` the running target prediction frequencies -- black-box
          shift estimation (Lipton et al. 2018), consistent under label shift whatever the classifier's bias.

        ``p_s`` is a running mean of the source labels; weights are clipped to [0.2, 5] and normalised to mean 1.
        """
        m = float(self.mcfg.prior_momentum)
        k = self.prior_s.numel()
        with torch.no_grad():
            onehot = F.one_hot(ys, k).to(self.prior_s.dtype)
            self.prior_s.mul_(m).add_((1 - m) * onehot.mean(0))
            if self.mcfg.prior_estimate == "confusion":
                pred_s = F.one_hot(ls.detach().argmax(1), k).to(onehot.dtype)
                self.confusion_s.mul_(m).add_((1 - m) * (pred_s.t() @ onehot) / ys.numel())
                self.pred_t.mul_(m).add_((1 - m) * F.one_hot(logits_t.detach().argmax(1), k).to(onehot.dtype).mean(0))
                ratio = torch.from_numpy(shift_weights(self.confusion_s.cpu().numpy(), self.pred_t.cpu().numpy(),
                                                       floor=0.0)).to(self.prior_s)
                self.prior_t.copy_(ratio * self.prior_s / (ratio * self.prior_s).sum().clamp_min(1e-6))
            else:
                self.prior_t.mul_(m).add_((1 - m) * F.softmax(logits_t.detach(), 1).mean(0).to(self.prior_t.dtype))
            w = (self.prior_t / self.prior_s.clamp_min(1e-6)).clamp(0.2, 5.0)[ys]
            return w / w.mean().clamp_min(1e-6)

    def loss(self, batch: Batch) -> Tuple[torch.Tensor, Logs]:
        fs, ls, ft, lt = self.source_and_target(batch)
        ce = self.task_loss(ls, batch.ys)
        sw = self.class_importance(batch.ys, ls, lt) if self.mcfg.importance_weighting else None
        adv, d_acc, lam = self.adversary(fs, ft, batch.p, ls, lt, source_weight=sw)
        logs: Logs = {"cls": float(ce.detach()), "domain": float(adv.detach()), "disc_acc": d_acc,
                      "lambda": lam, "src_acc": _acc(ls, batch.ys)}
        if sw is not None:
            logs["iw_max"] = float(sw.max())
            logs["prior_t_neutral"] = float(self.prior_t[0])
        total = ce + adv + self.target_companion_terms(batch, lt, logs)
        return total, logs
