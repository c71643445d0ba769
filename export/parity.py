"""Parity gate: does the ONNX model compute what the PyTorch model computes, on real inputs?

An export can be silently wrong (a dropped BatchNorm, a mis-folded constant, a dynamic axis that
only breaks at batch 8). This gate runs the PyTorch ``ExportWrapper`` and the ONNX model through
ONNX Runtime on the same preprocessed faces at batch sizes 1, 8 and 32 and demands
max |Δprob| ≤ ``atol`` and 100 % argmax agreement; otherwise the export fails with the worst samples
named, instead of shipping a model that disagrees with the one that was validated.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Sequence

import numpy as np

from fer_edge.runtime.backends.base import INPUT_NAME, OUTPUT_PROBS
from fer_edge.runtime.errors import ModelError

DEFAULT_BATCHES = (1, 8, 32)


@dataclass
class BatchParity:
    batch: int
    n: int
    max_abs_diff: float
    argmax_agreement: float


@dataclass
class ParityReport:
    """Outcome of :func:`check_parity`; ``worst`` lists the samples with the largest |Δprob|."""

    passed: bool
    atol: float
    source: str
    n_inputs: int
    max_abs_diff: float
    argmax_agreement: float
    batches: List[BatchParity] = field(default_factory=list)
    worst: List[Dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        head = (f"parity {'PASSED' if self.passed else 'FAILED'} on {self.n_inputs} inputs ({self.source}): "
                f"max |Δprob| {self.max_abs_diff:.2e} (limit {self.atol:.0e}), argmax agreement "
                f"{100 * self.argmax_agreement:.2f} %")
        per = "; ".join(f"batch {b.batch}: {b.max_abs_diff:.2e}, {100 * b.argmax_agreement:.1f} %"
                        for b in self.batches)
        lines = [head, f"  {per}"]
        if not self.passed:
            lines += [f"  worst: {w['name']} |Δprob| {w['abs_diff']:.2e} torch argmax {w['torch_argmax']} "
                      f"onnx argmax {w['onnx_argmax']} (batch {w['batch']})" for w in self.worst]
        return "\n".join(lines)


def _torch_probs(module, x: np.ndarray, chunk: int = 64) -> np.ndarray:
    import torch

    outs = []
    with torch.no_grad():
        for i in range(0, len(x), chunk):
            _, probs = module(torch.from_numpy(np.ascontiguousarray(x[i:i + chunk])))
            outs.append(probs.numpy().astype(np.float32))
    return np.concatenate(outs)


def _samples_for(batch: int, n_inputs: int) -> np.ndarray:
    """Indices checked at ``batch``: at least two full batches (tiling when inputs are few), at most all
    inputs rounded down to whole batches, and 16 singles at batch 1 — enough to catch a batch-dependent
    bug without running hundreds of single-image sessions."""
    want = 16 if batch == 1 else max(2 * batch, n_inputs // batch * batch)
    return np.resize(np.arange(n_inputs), want)


def check_parity(module, session, inputs: np.ndarray, names: Sequence[str], batches: Sequence[int] = DEFAULT_BATCHES,
                 atol: float = 1e-4, source: str = "given", n_worst: int = 5) -> ParityReport:
    """Compare ``module`` (PyTorch ``ExportWrapper``, eval mode) with an ORT ``session`` batch by batch.

    PyTorch runs once over all inputs (its per-sample result does not depend on the batch); ONNX
    Runtime runs at every batch size in ``batches``, which is where export bugs hide.
    """
    if len(inputs) == 0:
        raise ModelError("parity: no inputs to compare on")
    module.eval()
    ref = _torch_probs(module, inputs)
    rows: List[BatchParity] = []
    worst: List[Dict[str, Any]] = []
    all_diff, all_agree = [], []
    for b in batches:
        idx = _samples_for(b, len(inputs))
        diffs, agree = [], []
        for start in range(0, len(idx), b):
            sel = idx[start:start + b]
            p_t = ref[sel]
            p_o = session.run([OUTPUT_PROBS], {INPUT_NAME: np.ascontiguousarray(inputs[sel])})[0]
            d = np.abs(p_t - p_o).max(axis=1)
            a = p_t.argmax(1) == p_o.argmax(1)
            diffs.append(d)
            agree.append(a)
            for j, i in enumerate(sel):
                worst.append({"name": names[i], "batch": b, "abs_diff": float(d[j]),
                              "torch_argmax": int(p_t[j].argmax()), "onnx_argmax": int(p_o[j].argmax())})
        d_all, a_all = np.concatenate(diffs), np.concatenate(agree)
        rows.append(BatchParity(b, len(d_all), float(d_all.max()), float(a_all.mean())))
        all_diff.append(d_all)
        all_agree.append(a_all)
    max_diff = float(np.concatenate(all_diff).max())
    agreement = float(np.concatenate(all_agree).mean())
    worst.sort(key=lambda w: (w["torch_argmax"] == w["onnx_argmax"], -w["abs_diff"]))
    passed = bool(max_diff <= atol and agreement == 1.0)
    return ParityReport(passed=passed, atol=atol, source=source, n_inputs=len(inputs), max_abs_diff=max_diff,
                        argmax_agreement=agreement, batches=rows, worst=worst[:n_worst])
