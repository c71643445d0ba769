"""``self_train``: class-balanced self-training -- the starting model's confident target predictions, shifted to the
camera's expected class balance, become the labels of augmented copies of the same faces.

Why: on real near-infrared faces (FER2013 → BUAA-VisNir) the source-only model's features rank the classes usefully
but its thresholds sit in the wrong place: it calls half the faces neutral. Shifted to the expected class balance
(``train.target_prior``, label-free) it is right on 77-85 % of the faces it is at least 0.5 sure of, a third of them
(BUAA's dev half, docs/results/real-faces.md). Those faces, labelled by the shifted head, teach the *features* what
the shift only teaches the thresholds. The balance matters: unshifted, the teacher labels most faces with the class
the camera is over-read as, and learning that confirms it (Zou et al., "Unsupervised domain adaptation for semantic
segmentation via class-balanced self-training", ECCV 2018; on BUAA's dev half, seed 0: 53.9 % without the shift,
source-only 53.6, with it 58.2). The clean view labels the augmented one (FixMatch), so the target is a
consistency, not the prediction re-confirming itself; the source cross-entropy keeps the classes anchored.

The teacher is a frozen copy of the model the run starts from (``train.init_from``: the finished source-only model)
with the offsets fitted to it before the first step, the deployed view (eval mode, offsets added). A teacher that is
the network being trained, its offsets refitted each epoch, fed on itself: on BUAA (seed 0) the target predictions
collapsed onto one class within three epochs and FER2013 source-val fell from 66 to 48 %.

The term is :meth:`Method.self_training_term` with the method's own section ``train.self_train`` (weight 1 and
threshold 0.5 by default, where the adversarial methods ship it off; ``pseudo_quantile: 0.5`` labels only each
predicted class's more confident half of a batch, the setting BUAA's dev half chose); the balance comes from
``train.target_prior`` (without it the pseudo-labels are the teacher's unshifted predictions).
"""
from __future__ import annotations

import copy
import logging
from typing import Tuple

import torch
import torch.nn.functional as F

from .base import Batch, Logs, Method, _acc


class SelfTraining(Method):
    name = "self_train"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not getattr(self.cfg, "init_from", None):
            logging.getLogger("fer_edge.train").warning(
                "self_train without train.init_from: its teacher is the untrained network it starts as, so its labels "
                "are noise; start it from a finished source-only model (train.init_from, or train.finetune.enabled in "
                "the pipeline)")
        self.teacher = copy.deepcopy(self.net).eval().requires_grad_(False)
        #: the offsets fitted to the teacher (by the trainer, before the first step); state, so a resumed run labels
        #: with the same teacher it started with
        self.register_buffer("teacher_offsets", torch.zeros(self.net.head.bias.numel()))
        self.register_buffer("teacher_offsets_set", torch.zeros((), dtype=torch.bool))

    def set_logit_offsets(self, offsets: torch.Tensor) -> None:
        if not bool(self.teacher_offsets_set):  # offsets of any later model are not the teacher's
            self.teacher_offsets.copy_(offsets.to(self.teacher_offsets.device))
            self.teacher_offsets_set.fill_(True)

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()  # always the deployed view
        return self

    def teacher_posteriors(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            z = self.teacher(x).float()
            if bool(self.teacher_offsets_set):
                z = z + self.teacher_offsets
            return F.softmax(z, dim=1)

    def loss(self, batch: Batch) -> Tuple[torch.Tensor, Logs]:
        _, logits_s, _, logits_t = self.source_and_target(batch)
        ce = self.task_loss(logits_s, batch.ys)
        logs: Logs = {"cls": float(ce.detach()), "src_acc": _acc(logits_s, batch.ys)}
        return ce + self.target_companion_terms(batch, logits_t, logs), logs
