"""Small loss functions the methods share; each has a test against an obvious reference."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def entropy(probs: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Row-wise Shannon entropy (nats) of probability rows ``N x K``."""
    return -(probs * torch.log(probs + eps)).sum(dim=1)


def information_maximization(logits: torch.Tensor) -> torch.Tensor:
    """IM loss (Hu 2017 / SHOT): mean per-sample entropy minus entropy of the mean prediction.

    Minimising it makes each target prediction confident (first term) while keeping the classes
    diverse over the batch (second term), so the classifier cannot collapse onto one class.
    """
    p = F.softmax(logits, dim=1)
    return entropy(p).mean() - entropy(p.mean(dim=0, keepdim=True)).squeeze(0)


def minimum_class_confusion(logits: torch.Tensor, temperature: float = 2.5) -> torch.Tensor:
    """MCC loss (Jin et al., ECCV 2020): the off-diagonal mass of the batch's class-confusion matrix.

    ``C = Pᵀ W P`` over temperature-softened target predictions ``P`` (``W``: certainty weights
    ``1 + exp(-H)``, normalised to sum to the batch size), each column normalised by its class's
    total, then ``(ΣC − tr C) / K``. Why it suits a target whose faces fall between two classes
    (a neutral driver read as angry or sad): it penalises a face's probability being *shared*
    between classes, pushing each prediction to one side. Unlike IM's diversity term, its cost for a
    skewed class balance vanishes once the predictions are confident, so a target that is mostly
    neutral is not pushed towards uniform class frequencies (tests/test_methods.py).
    Same arithmetic as tllib's ``MinimumClassConfusionLoss``.
    """
    n, k = logits.shape
    p = F.softmax(logits / temperature, dim=1)
    w = 1.0 + torch.exp(-entropy(p).detach())
    w = (n * w / w.sum()).unsqueeze(1)
    conf = (p * w).t() @ p
    conf = conf / conf.sum(dim=1)  # symmetric, so this normalises each column by its class total
    return (conf.sum() - torch.trace(conf)) / k


def uniform_confusion(logits: torch.Tensor) -> torch.Tensor:
    """Cross-entropy to the uniform distribution: minimal when an adversary cannot tell classes apart.

    This is the "maximise the adversary's entropy" formulation (Halawa 2020, and Tzeng 2015's
    confusion loss): unlike a flipped-label loss it has a fixed optimum and does not oscillate.
    """
    return -F.log_softmax(logits, dim=1).mean(dim=1).mean()


def pseudo_label_mask(probs_weak: torch.Tensor, threshold: float, quantile: float = 0.0) -> torch.Tensor:
    """Which clean-view predictions label their perturbed view: at least ``threshold`` confident and, with
    ``quantile`` > 0, above that quantile of the confidences of the faces the batch predicts as the same class
    (class-balanced selection, CBST: every predicted class supplies its own most confident faces)."""
    conf, hard = probs_weak.max(dim=1)
    keep = conf >= threshold
    if quantile > 0:
        for k in hard.unique():
            mine = hard == k
            keep &= ~mine | (conf >= torch.quantile(conf[mine], quantile))
    return keep


def pseudo_label_loss(logits_strong: torch.Tensor, probs_weak: torch.Tensor, threshold: float,
                      quantile: float = 0.0) -> torch.Tensor:
    """FixMatch's unlabelled term (Sohn et al. 2020): cross-entropy of the perturbed view's logits to the
    clean view's arg-max, counted only where :func:`pseudo_label_mask` keeps the face.

    Averaged over the *whole* batch (masked samples contribute 0), so the term grows as the classifier
    becomes confident on more target faces instead of jumping to full strength on the first few.
    """
    mask = pseudo_label_mask(probs_weak, threshold, quantile).to(logits_strong.dtype)
    return (F.cross_entropy(logits_strong, probs_weak.argmax(dim=1), reduction="none") * mask).mean()


def binary_accuracy(logits: torch.Tensor, target: torch.Tensor) -> float:
    return float(((logits.detach() > 0).float() == target).float().mean())
