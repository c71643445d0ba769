"""Target class balance: shift the classifier's logits so its predictions on the unlabelled target faces follow a
class balance the user states, and bake the shift into the exported head.

Why: a camera that sees expressions differently (near-infrared, subtler posed faces) makes a FER2013-trained model
call most of them neutral -- on BUAA-VisNir's test half, 159 of 315 faces where 52 are (source-only, seed 0). The
features still rank the classes usefully; the decision thresholds sit in the wrong place for that camera. One
label-free correction, fitted on the same unlabelled target faces the adaptation methods see: find per-class
logit offsets ``b`` such that the mean of ``softmax(logits + b)`` over those faces equals the stated balance
(Sinkhorn scaling of the posteriors; the optimal transport view of a prior correction), then add ``b`` to the
head's bias. At run time the model is unchanged in shape and cost: the offsets are part of the weights.

``train.target_prior`` says what balance to expect: ``none`` (off), ``source`` (the labelled source's class
frequencies), ``uniform``, or a mapping ``{label: frequency}`` that an integrator knows of their camera (a driver
cabin sees mostly neutral faces: say so rather than take FER2013's balance). The offsets and the balance travel in
the checkpoint's manifest; a fine-tuning that starts from such a checkpoint (``train.init_from``) removes them first,
so the head is trained, not the corrected head.
"""
from __future__ import annotations

import copy
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from fer_edge.runtime.contract import canonical_label
from fer_edge.runtime.errors import ConfigError

PriorSetting = Union[str, Mapping[str, float]]
NAMED = ("none", "source", "uniform")


def check_setting(setting: Any, key: str = "train.target_prior") -> None:
    """Raise a ConfigError naming ``key`` for a setting that is neither a known name nor label → frequency."""
    if isinstance(setting, str):
        if setting not in NAMED:
            raise ConfigError(f"{key}: {setting!r} is not one of {list(NAMED)} or a mapping of label → frequency")
        return
    if not isinstance(setting, Mapping) or not setting:
        raise ConfigError(f"{key}: expected one of {list(NAMED)} or a mapping of label → frequency")
    for name, freq in setting.items():
        if canonical_label(str(name)) is None:
            raise ConfigError(f"{key}.{name}: not an expression label")
        if not isinstance(freq, (int, float)) or not np.isfinite(freq) or freq <= 0:
            raise ConfigError(f"{key}.{name}: {freq!r} must be a positive frequency")


def resolve(setting: PriorSetting, labels: Sequence[str], source_labels: Optional[np.ndarray]) -> Optional[np.ndarray]:
    """The class balance to fit to, in ``labels`` order and summing to 1; ``None`` for ``none``."""
    check_setting(setting)
    k = len(labels)
    if setting == "none":
        return None
    if setting == "uniform":
        return np.full(k, 1.0 / k)
    if setting == "source":
        if source_labels is None:
            raise ConfigError("train.target_prior: 'source' needs a labelled source split")
        counts = np.bincount(np.asarray(source_labels)[np.asarray(source_labels) >= 0], minlength=k).astype(float)
        counts = np.maximum(counts, 1.0)  # a class the source lacks keeps a sliver, never a -inf offset
        return counts / counts.sum()
    given = {canonical_label(str(n)): float(f) for n, f in setting.items()}
    missing = [lab for lab in labels if lab not in given]
    if missing:
        raise ConfigError(f"train.target_prior: no frequency for {missing}; give every label of the model "
                          f"({list(labels)})")
    prior = np.asarray([given[lab] for lab in labels])
    return prior / prior.sum()


def fit_offsets(logits: np.ndarray, prior: np.ndarray, iters: int = 200, tol: float = 1e-6) -> np.ndarray:
    """Per-class logit offsets ``b`` (mean zero) with ``mean(softmax(logits + b)) ≈ prior`` over the rows.

    Sinkhorn's alternating scaling on the posteriors: multiply each class by ``prior / current mean``, renormalise
    each row; the accumulated multipliers are ``exp(b)``.
    """
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] == 0 or z.shape[1] != len(prior):
        raise ValueError(f"logits must be N×{len(prior)} with N > 0, got shape {z.shape}")
    b = np.zeros(z.shape[1])
    for _ in range(int(iters)):
        q = z + b
        q = np.exp(q - q.max(axis=1, keepdims=True))
        q /= q.sum(axis=1, keepdims=True)
        step = np.log(prior) - np.log(np.clip(q.mean(axis=0), 1e-12, None))
        b += step
        if np.abs(step).max() < tol:
            break
    return b - b.mean()


def logits_of(net: Any, x: Any, device: Any, batch_size: int = 256) -> np.ndarray:
    """``net``'s eval-mode logits for the tensor ``x``, in batches (its train/eval mode is restored)."""
    import torch  # here, not at the top: the config validates this module's settings without torch

    was = net.training
    net.eval()
    with torch.no_grad():
        out = [net(x[i:i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)]
    net.train(was)
    return torch.cat(out).numpy()


def with_offsets(net: Any, offsets: Sequence[float]) -> Any:
    """A copy of ``net`` whose head bias carries ``offsets`` (added)."""
    import torch

    out = copy.deepcopy(net)
    with torch.no_grad():
        out.head.bias += torch.as_tensor(np.asarray(offsets), dtype=out.head.bias.dtype, device=out.head.bias.device)
    return out


def remove_offsets(net: Any, offsets: Sequence[float]) -> None:
    """Take ``offsets`` back out of ``net``'s head bias, in place (before fine-tuning a corrected checkpoint)."""
    import torch

    with torch.no_grad():
        net.head.bias -= torch.as_tensor(np.asarray(offsets), dtype=net.head.bias.dtype, device=net.head.bias.device)
