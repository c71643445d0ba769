"""How much can adaptation without new features give on the real near-infrared faces, and where is the ceiling?

    python benchmarks/real_target_headroom.py --data DATA --checkpoints 'runs/bench-real/source_only-s*/best.pt'

A source-only model trained on FER2013 reads most BUAA-VisNir faces as neutral or happy. Before training another
adversary, this asks two questions of the finished checkpoints, on BUAA's two person-disjoint halves
(``bench_real.buaa_halves``: *dev* = odd-numbered people, *test* = even):

1. What do the cheap, label-free, post-hoc remedies give? AdaBN (BatchNorm statistics re-estimated on the unlabelled
   BUAA faces), TENT (entropy minimisation of the BatchNorm affine parameters, Wang et al. 2021), T3A (last layer
   replaced by prototypes of confident target features, Iwasawa & Matsuo 2021), SHOT (frozen head, information
   maximisation + centroid pseudo-labels, Liang et al. 2020) and the prior shift of ``train.target_prior`` (logit
   offsets that move the mean target prediction onto a stated class balance: FER2013's, or uniform; alone and after
   AdaBN). They see all 619 faces without labels.
2. What is the ceiling of any change to the classifier head? A logistic-regression head fitted on the *dev* half's
   labels (the features frozen), scored on the *test* half: if even that stays low, the features -- not the
   decision boundary -- are what the target needs, and head-level methods cannot reach far.

Rows 1 use no labels (dev and test are both scores); row 2 reads dev labels and is scored on test only. The dev column
chose bench_real's ``source_only_prior`` setting (``train.target_prior: source``); no shipped config uses it.
Accuracy in %, mean over the checkpoints given.
"""
from __future__ import annotations

import argparse
import copy
import functools
import glob
import logging
import shlex
import statistics
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_real  # noqa: E402

log = logging.getLogger("headroom")
ROOT = Path(__file__).resolve().parents[1]


def load_target(data: Path, checkpoint: Path):
    """(inputs N×C×H×W, labels in the model's order, dev mask) of all BUAA faces, loaded as ``fer-edge eval`` loads
    them for this model (its contract's preprocessing and the crop finish for pre-cut faces)."""
    import torch

    from fer_edge.evaluation.data import load_eval_dataset
    from fer_edge.runtime.contract import canonical_label
    from fer_edge.train.checkpoint import contract_of, load_checkpoint

    _, man = load_checkpoint(checkpoint)
    contract = contract_of(man)
    ds = load_eval_dataset(data / bench_real.TARGET, contract)
    x, keep = ds.arrays(contract.preprocess)
    order = list(man.labels)
    # the class each face shows: realdata.sh files four of BUAA's classes under another's name (buaa_labels)
    fix = {canonical_label(a): canonical_label(b) for a, b in bench_real.label_fix(data / bench_real.TARGET).items()}
    classes = [canonical_label(ds.labels[k]) for k in ds.label_array(keep)]
    y = np.asarray([order.index(fix.get(c, c)) for c in classes])
    people = [bench_real.buaa_person(Path(ds.records[i].path).name) for i in keep]
    dev = np.asarray([p is not None and p % 2 == 1 for p in people])
    return torch.from_numpy(x), y, dev


def _probs(net, x, train_mode: bool = False):
    import torch
    import torch.nn.functional as F

    net.train(train_mode)
    with torch.no_grad():
        return torch.cat([F.softmax(net(x[i:i + 128]), 1) for i in range(0, len(x), 128)]).numpy()


def _entropy(p):
    import torch

    return -(p * torch.log(p + 1e-6)).sum(1)


def tent(net, x, epochs: int = 5, lr: float = 1e-3, batch: int = 64, seed: int = 0) -> np.ndarray:
    """TENT: BatchNorm in batch-statistics mode, its affine parameters trained to lower the prediction entropy."""
    import torch
    import torch.nn.functional as F
    from torch.nn.modules.batchnorm import _BatchNorm

    m = copy.deepcopy(net)
    bns = [b for b in m.modules() if isinstance(b, _BatchNorm)]
    for p in m.parameters():
        p.requires_grad_(False)
    for b in bns:
        b.track_running_stats, b.running_mean, b.running_var = False, None, None
        for p in b.parameters():
            p.requires_grad_(True)
    opt = torch.optim.Adam([p for b in bns for p in b.parameters()], lr=lr)
    g = torch.Generator().manual_seed(seed)
    m.train()
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x) - batch + 1, batch):
            loss = _entropy(F.softmax(m(x[perm[i:i + batch]]), 1)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return _probs(m, x, train_mode=True)


def _features(net, x):
    import torch

    net.eval()
    with torch.no_grad():
        return torch.cat([net.features(x[i:i + 256]) for i in range(0, len(x), 256)])


def t3a(net, x, keep: int = 20) -> np.ndarray:
    """T3A: each class's prototype is its head weight plus the ``keep`` lowest-entropy target features it predicts."""
    import torch
    import torch.nn.functional as F

    f = _features(net, x)
    w = net.head.weight.detach()
    p = F.softmax(f @ w.T + net.head.bias.detach(), 1)
    ent, pred, fn = _entropy(p), p.argmax(1), F.normalize(f, dim=1)
    protos = []
    for k in range(w.shape[0]):
        idx = torch.nonzero(pred == k).flatten()
        idx = idx[torch.argsort(ent[idx])][:keep]
        protos.append(F.normalize(torch.cat([F.normalize(w[k:k + 1], dim=1), fn[idx]]).mean(0, keepdim=True), dim=1))
    return F.softmax(fn @ torch.cat(protos).T * 10.0, 1).numpy()


def shot(net, x, epochs: int = 10, lr: float = 1e-3, beta: float = 0.3, batch: int = 64, seed: int = 0) -> np.ndarray:
    """SHOT: the head frozen, the backbone trained for confident *and* diverse predictions (information
    maximisation) plus cross-entropy to pseudo-labels from feature centroids, re-estimated each epoch."""
    import torch
    import torch.nn.functional as F

    m = copy.deepcopy(net)
    for p in m.head.parameters():
        p.requires_grad_(False)
    opt = torch.optim.SGD(m.backbone.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4, nesterov=True)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        with torch.no_grad():
            f = _features(m, x)
            p = F.softmax(m.head(f), 1)
            fa = F.normalize(torch.cat([f, torch.ones(len(f), 1)], 1), dim=1)
            c = (p.T @ fa) / (p.sum(0)[:, None] + 1e-8)
            for _ in range(2):
                pl = (fa @ F.normalize(c, dim=1).T).argmax(1)
                oh = F.one_hot(pl, p.shape[1]).float()
                c = (oh.T @ fa) / (oh.sum(0)[:, None] + 1e-8)
        m.train()
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x) - batch + 1, batch):
            idx = perm[i:i + batch]
            out = m(x[idx])
            pb = F.softmax(out, 1)
            mean = pb.mean(0)
            loss = _entropy(pb).mean() + (mean * torch.log(mean + 1e-6)).sum() + beta * F.cross_entropy(out, pl[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return _probs(m, x)


def rebalance(p: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """The posteriors after ``train.target_prior``'s shift: per-class logit offsets fitted on these faces so that
    their mean prediction is ``prior`` (``fer_edge.train.target_prior.fit_offsets``, what the trainer bakes in)."""
    from fer_edge.train.target_prior import fit_offsets

    z = np.log(np.clip(p, 1e-12, None))
    z = z + fit_offsets(z, prior)
    q = np.exp(z - z.max(1, keepdims=True))
    return q / q.sum(1, keepdims=True)


def probe(net, x, y, dev, l2: float = 0.1) -> np.ndarray:
    """The head's ceiling: logistic regression on frozen (standardised) features, fitted on the dev half's labels;
    predictions for every face (only the test half is read)."""
    import torch
    import torch.nn.functional as F

    f = _features(net, x)
    mu, sd = f[dev].mean(0), f[dev].std(0) + 1e-6
    z = (f - mu) / sd
    w = torch.zeros(z.shape[1], int(y.max()) + 1, requires_grad=True)
    b = torch.zeros(w.shape[1], requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=500)
    zd, yd = z[torch.from_numpy(dev)], torch.from_numpy(y[dev])

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(zd @ w + b, yd) + l2 * (w ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return F.softmax(z @ w + b, 1).numpy()


def source_prior(data: Path, labels: Sequence[str]) -> np.ndarray:
    from fer_edge.data.loaders import load_dataset
    from fer_edge.runtime.contract import canonical_label

    counts = load_dataset(data / "fer2013/train").class_counts()
    c = np.asarray([next(v for k, v in counts.items() if canonical_label(k) == name) for name in labels], float)
    return c / c.sum()


def rows_for(checkpoint: Path, data: Path) -> Dict[str, Tuple[Optional[float], float]]:
    """{remedy: (dev accuracy or None, test accuracy)} for one checkpoint."""
    import torch

    from fer_edge.runtime.metrics import accuracy
    from fer_edge.train.checkpoint import load_checkpoint
    from fer_edge.train.evaluation import adabn

    net, man = load_checkpoint(checkpoint)
    x, y, dev = load_target(data, checkpoint)
    prior = source_prior(data, man.labels)
    plain = _probs(net, x)
    adapted = functools.cache(lambda: _probs(adabn(net, x, torch.device("cpu")), x))  # two rows read it
    remedies: Dict[str, Callable[[], np.ndarray]] = {
        "as trained": lambda: plain,
        "AdaBN (target BatchNorm statistics)": adapted,
        "TENT (5 epochs, lr 1e-3)": lambda: tent(net, x),
        "T3A (20 supports per class)": lambda: t3a(net, x),
        "SHOT (10 epochs, lr 1e-3, beta 0.3)": lambda: shot(net, x),
        "prior shift to FER2013's class balance (`train.target_prior: source`)": lambda: rebalance(plain, prior),
        "prior shift to a uniform balance (`uniform`)": lambda: rebalance(plain, np.full(len(prior), 1 / len(prior))),
        "AdaBN, then the prior shift to FER2013's balance": lambda: rebalance(adapted(), prior),
    }
    out: Dict[str, Tuple[Optional[float], float]] = {}
    for name, fn in remedies.items():
        pred = fn().argmax(1)
        out[name] = (accuracy(y[dev], pred[dev]), accuracy(y[~dev], pred[~dev]))
        log.info("%s %s: dev %.1f test %.1f", checkpoint, name, 100 * out[name][0], 100 * out[name][1])
    pred = probe(net, x, y, dev).argmax(1)
    out["ceiling: a new head fitted on the dev half's labels"] = (None, accuracy(y[~dev], pred[~dev]))
    return out


def page(results: List[Dict[str, Tuple[Optional[float], float]]], checkpoints: Sequence[str], command: str) -> str:
    def cell(vals: List[float]) -> str:
        if not vals:
            return "—"
        m = 100 * statistics.mean(vals)
        return f"{m:.1f}" if len(vals) == 1 else f"{m:.1f} ± {100 * statistics.stdev(vals):.1f}"

    lines = ["# Headroom on real near-infrared faces: post-hoc remedies and the head's ceiling", "",
             "Produced by `benchmarks/real_target_headroom.py`; BUAA-VisNir accuracy (%) of the source-only "
             "checkpoints "
             f"({len(checkpoints)}: {', '.join(Path(c).parent.name for c in checkpoints)}), on the person-disjoint "
             "dev (odd-numbered people) and test (even) halves. The remedies use no labels; the last row fits a head "
             "on the dev half's labels and is scored on the test half: the most any change to the classifier head "
             "could give with these features.", "",
             "| remedy | BUAA dev | BUAA test |", "|---|---|---|"]
    for name in results[0]:
        dev = [r[name][0] for r in results if r[name][0] is not None]
        lines.append(f"| {name} | {cell(dev)} | {cell([r[name][1] for r in results])} |")
    lines += ["", "```", command, "```", ""]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=False, help="folder laid out by realdata.sh")
    ap.add_argument("--checkpoints", required=True, help="glob of source-only best.pt files")
    ap.add_argument("--doc", type=Path, default=ROOT / "docs/results/real-nir-headroom.md")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[headroom] %(message)s")
    if args.data is None or not (Path(args.data) / bench_real.TARGET).is_dir():
        print(f"real_target_headroom: skipped — {Path(args.data or 'DATA') / bench_real.TARGET} not found "
              "(lay the real datasets out with realdata.sh)")
        return 0
    checkpoints = sorted(glob.glob(args.checkpoints))
    if not checkpoints:
        raise SystemExit(f"real_target_headroom: no checkpoint matches {args.checkpoints!r}")
    import torch

    torch.manual_seed(0)
    results = [rows_for(Path(c), Path(args.data)) for c in checkpoints]
    shown = args.checkpoints  # a glob under bench-real's --out reads the same on any machine
    if Path(shown).is_absolute():
        shown = "/".join(("OUT",) + Path(shown).parts[-2:])
    command = shlex.join(["python", "benchmarks/real_target_headroom.py", "--data", "DATA", "--checkpoints", shown])
    command += "   # OUT: bench_real.py's --out"
    text = page(results, checkpoints, command)
    from fer_edge.runtime.atomic import atomic_write

    atomic_write(args.doc, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
