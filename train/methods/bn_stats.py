"""Which domain the network's running BatchNorm statistics — the ones inference uses — follow.

Methods forward source and target in separate passes, so each pass is normalised with its own
domain's batch statistics while training. But every train-mode pass also updates the *running*
averages, so after training they are an average of the two domains that neither pass ever saw, and
the exported network normalises every input with that mixture. Measured on the default task
(studio → cabin-nir, DANN, augmented): running-stat mixture 57.9 % source-test / 34.4 % target-test;
the same weights with source-only statistics 87.6 % / 38.9 %; with target-only statistics
(AdaBN) 32.4 % / 27.7 %. ``train.bn_stats`` picks the domain the running averages follow:
``source`` (default: the labelled batches), ``target`` (AdaBN-like, the unlabelled target batches)
or ``both`` (the mixture, the old behaviour).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

BN_STATS = ("source", "target", "both")


@contextmanager
def running_stats_frozen(module: nn.Module, frozen: bool = True) -> Iterator[None]:
    """Within the block, train-mode BatchNorm still normalises with batch statistics but leaves the
    running averages untouched (momentum 0 makes the update ``r ← r``)."""
    if not frozen:
        yield
        return
    bns = [m for m in module.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, v in zip(bns, saved):
            m.momentum = v
