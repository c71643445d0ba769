"""The ``Method`` interface the one trainer calls, and the ``Batch`` it hands over.

A method owns everything training-only (discriminators, extra encoders, decoders, its own
optimisers for alternating min-max) and exposes just four things to the trainer:

* ``loss(batch) -> (total, logs)`` — one scalar to back-propagate, and float diagnostics;
* ``discriminator_step(batch) -> logs`` — optional inner update of an adversary (CAL);
* ``parameter_groups(lr)`` — what the trainer's optimiser updates, with the backbone lr multiplier;
* ``inference_module() -> FerNet`` — the only thing that is checkpointed and exported.

Methods are ``nn.Module`` so ``.to(device)``, ``state_dict()`` (for resume) and ``train()/eval()``
cover all their parts at once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..config import TargetTermsConfig, TrainConfig
from ..models import FerNet
from .bn_stats import running_stats_frozen
from .gradient_reversal import grl_lambda
from .losses import information_maximization, minimum_class_confusion, pseudo_label_loss, pseudo_label_mask

Logs = Dict[str, float]


@dataclass
class Batch:
    """One training step's inputs. Source and target are separate tensors: they are forwarded in
    separate passes so BatchNorm never mixes the two domains' statistics by accident.

    Unknown values are NaN (intensity, pose) or -1 (identity). ``p`` is training progress in [0, 1].
    ``pose`` columns are (yaw, pitch, roll) in degrees.
    """

    xs: torch.Tensor
    ys: torch.Tensor
    xt: torch.Tensor
    p: float = 0.0
    intensity_s: Optional[torch.Tensor] = None
    identity_s: Optional[torch.Tensor] = None
    pose_s: Optional[torch.Tensor] = None
    intensity_t: Optional[torch.Tensor] = None
    pose_t: Optional[torch.Tensor] = None
    #: the target batch before ``train.augment`` (None: not augmented, ``xt`` is the clean view).
    xt_clean: Optional[torch.Tensor] = None

    def to(self, device: torch.device) -> Batch:
        kw = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in self.__dict__.items()}
        return Batch(**kw)


class Method(nn.Module):
    """Base class: plain supervised cross-entropy on the source; subclasses add adaptation terms.

    ``supervised_domain`` tells the trainer which labelled split feeds ``xs/ys``: ``"source"`` for
    every method except the target oracle (``"target"``: the ceiling trained on labelled target).
    ``num_identities`` is filled by the trainer before construction where a method needs it.

    ``mcfg`` is the method's own section, ``train.<name>``; a method without one (source-only, the oracle)
    gets the neutral :class:`TargetTermsConfig`, whose companion terms are all off, so every helper here
    works for every method.
    """

    name = "base"
    supervised_domain = "source"
    needs_identities = False

    def __init__(self, cfg: Any, net: FerNet, labels: Sequence[str], num_identities: int = 0):
        super().__init__()
        self.cfg = cfg  # the TrainConfig
        #: this method's section ``train.<name>`` (subclasses keep their own typed view of it)
        self.mcfg: Any = getattr(cfg, self.name, None) or TargetTermsConfig()
        self.net = net
        self.labels = tuple(labels)
        self.num_identities = num_identities
        #: set by the trainer to average gradients across processes (identity in one process).
        self.grad_sync: Callable[[Iterable[nn.Parameter]], None] = lambda params: None

    # -- what the trainer calls ------------------------------------------------------------------
    def loss(self, batch: Batch) -> Tuple[torch.Tensor, Logs]:
        logits = self.net(batch.xs)
        ce = self.task_loss(logits, batch.ys)
        return ce, {"cls": float(ce.detach()), "src_acc": _acc(logits, batch.ys)}

    def discriminator_step(self, batch: Batch) -> Logs:
        """Alternating min-max hook, called before ``loss`` each step; default: nothing to do."""
        return {}

    def has_discriminator_step(self) -> bool:
        return type(self).discriminator_step is not Method.discriminator_step

    def uses_logit_offsets(self) -> bool:
        """Whether the method labels with the ``train.target_prior`` offsets of its starting model (the trainer then
        fits them before the first step)."""
        return type(self).set_logit_offsets is not Method.set_logit_offsets

    def parameter_groups(self, lr: float) -> List[Dict[str, Any]]:
        """Backbone at ``lr × backbone_lr_mult``; every other trainable part of the method at ``lr``.

        Parameters returned by ``own_optimizer_parameters()`` (e.g. CAL's discriminator, stepped by
        its own Adam) are left out of the trainer's optimiser.
        """
        own = {id(p) for p in self.own_optimizer_parameters()}
        backbone = [p for p in self.net.backbone.parameters() if id(p) not in own]
        bb_ids = {id(p) for p in backbone}
        # a frozen part (self_train's teacher) is not the optimiser's
        rest = [p for p in self.parameters() if id(p) not in bb_ids and id(p) not in own and p.requires_grad]
        groups = [{"params": backbone, "lr": lr * float(self.cfg.backbone_lr_mult), "name": "backbone"}]
        if rest:
            groups.append({"params": rest, "lr": lr, "name": "heads"})
        return groups

    def own_optimizer_parameters(self) -> List[nn.Parameter]:
        return []

    def own_optimizers(self) -> Dict[str, torch.optim.Optimizer]:
        """Optimisers the method steps itself; the trainer saves/restores their state on resume."""
        return {}

    def inference_module(self) -> FerNet:
        return self.net

    def write_artefacts(self, out_dir: Any, xs: torch.Tensor, xt: torch.Tensor) -> List[str]:
        """Training-only pictures a method wants its user to see (called once, after the last epoch, with a
        few source and target faces); returns the file names written. Default: none."""
        return []

    # -- helpers for subclasses --------------------------------------------------------------------
    def task_loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The expression cross-entropy every method trains with (``train.label_smoothing``), in float32."""
        return F.cross_entropy(logits.float(), y, label_smoothing=float(getattr(self.cfg, "label_smoothing", 0.0)))

    def source_and_target(self, batch: Batch) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Features and logits of source and target, from two separate forward passes."""
        fs = self.features(batch.xs, "source")
        ft = self.features(batch.xt, "target")
        return fs, self.net.classify(fs), ft, self.net.classify(ft)

    def features(self, x: torch.Tensor, domain: str) -> torch.Tensor:
        """``net.features(x)`` for a ``"source"`` (labelled) or ``"target"`` (unlabelled) batch; the running
        BatchNorm statistics are updated only by the domain ``train.bn_stats`` names (see ``bn_stats.py``)."""
        mode = getattr(self.cfg, "bn_stats", TrainConfig.bn_stats)  # a config without the key: its default
        with running_stats_frozen(self.net, mode not in (domain, "both")):
            return self.net.features(x)

    def im_term(self, logits_t: torch.Tensor, weight: float, logs: Logs) -> torch.Tensor:
        if weight <= 0:
            return logits_t.new_zeros(())
        im = information_maximization(logits_t)
        logs["im"] = float(im.detach())
        return weight * im

    def mcc_term(self, logits_t: torch.Tensor, logs: Logs) -> torch.Tensor:
        """``train.<method>.mcc_weight · MCC(logits_t)`` at ``mcc_temperature`` (off at weight 0)."""
        weight = float(self.mcfg.mcc_weight)
        if weight <= 0:
            return logits_t.new_zeros(())
        mcc = minimum_class_confusion(logits_t, float(self.mcfg.mcc_temperature))
        logs["mcc"] = float(mcc.detach())
        return weight * mcc

    def target_companion_terms(self, batch: Batch, logits_t: torch.Tensor, logs: Logs) -> torch.Tensor:
        """The optional label-free target terms every adversarial method adds to its loss: IM, MCC and
        self-training, weighted by its own ``train.<method>`` section (``self.mcfg``)."""
        return (self.im_term(logits_t, self.mcfg.im_weight, logs) + self.mcc_term(logits_t, logs)
                + self.self_training_term(batch, logits_t, logs))

    def self_training_term(self, batch: Batch, logits_t: torch.Tensor, logs: Logs) -> torch.Tensor:
        """``w · ramp(p) · FixMatch(logits_t | clean target view)`` from ``train.<method>.self_training``.

        Why: an adversary only matches feature *distributions*; it never tells the classifier which side
        of its boundary a target face belongs on. Pseudo-labels do — from the classifier's own confident
        target predictions, no target labels — and the augmented-vs-clean pairing makes the label a
        consistency target rather than the prediction re-confirming itself (without ``train.augment`` the
        two views are the same batch: plain self-training). The pseudo-label pass (:meth:`teacher_posteriors`)
        runs without gradient and leaves the BatchNorm running statistics untouched whatever ``train.bn_stats`` says.
        """
        c = self.mcfg
        weight = float(c.self_training)
        if weight <= 0:
            return logits_t.new_zeros(())
        ramp = grl_lambda(batch.p, 1.0, float(c.warmup))
        if ramp <= 0:  # warm-up: no term, and no pseudo-label pass to pay for
            return logits_t.new_zeros(())
        x = batch.xt_clean if batch.xt_clean is not None else batch.xt
        probs = self.teacher_posteriors(x)
        q = float(c.pseudo_quantile)
        st = pseudo_label_loss(logits_t.float(), probs, float(c.pseudo_threshold), q)
        logs["self_train"] = float(st.detach())
        logs["pseudo_frac"] = float(pseudo_label_mask(probs, float(c.pseudo_threshold), q).float().mean())
        return weight * ramp * st

    def set_logit_offsets(self, offsets: torch.Tensor) -> None:
        """Called by the trainer when ``train.target_prior`` is on and :meth:`uses_logit_offsets`, once before the first
        step of a fresh run, with the per-class logit offsets that shift the starting model's target predictions to
        the stated class balance. Default: unused (``self_train``'s teacher labels with them)."""

    def teacher_posteriors(self, x: torch.Tensor) -> torch.Tensor:
        """The posteriors that label the clean target faces: the network's own, without gradient, normalised by the
        target batch's statistics and leaving the running statistics untouched (``self_train`` overrides it)."""
        with torch.no_grad(), running_stats_frozen(self.net, True):
            return F.softmax(self.net.classify(self.net.features(x)).float(), dim=1)


def _acc(logits: torch.Tensor, y: torch.Tensor) -> float:
    return float((logits.detach().argmax(1) == y).float().mean())
