"""``target_oracle``: the supervised loss on *labelled target* faces — the ceiling.

The trainer feeds the labelled target training split as ``xs/ys`` because ``supervised_domain`` is
``"target"``. Real deployments have no such labels; the oracle exists only to measure how much of
the source-only → oracle gap an adaptation method closes.
"""
from __future__ import annotations

from typing import Tuple

import torch

from .base import Batch, Logs, Method


class TargetOracle(Method):
    name = "target_oracle"
    supervised_domain = "target"

    def loss(self, batch: Batch) -> Tuple[torch.Tensor, Logs]:
        total, logs = super().loss(batch)
        return total, {"cls": logs["cls"], "tgt_train_acc": logs["src_acc"]}
