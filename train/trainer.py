"""The one trainer: any ``Method``, one loop, label-free checkpoint selection, resumable.

``train(cfg, datasets, out_dir, resume=False) -> summary`` where ``datasets`` maps roles (source,
target, and optionally source_val, source_test, target_val, target_test) to ``FaceDataset``. Each
step draws a source batch and a target batch from endless, seed-determined streams and hands them
to the method as one :class:`Batch`; the method returns its loss. Each epoch the model is
evaluated, scored by every label-free selector on the unlabelled target_val split, checkpointed
(``checkpoints/epoch_NNN.pt`` + manifest), and ``best.pt`` follows the configured selector.
Target-test accuracy is logged beside the scores and used for nothing but the report.
"""
from __future__ import annotations

import functools
import io
import json
import logging
import math
import time
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
import torch

from fer_edge.data.dataset import FaceDataset
from fer_edge.runtime.atomic import atomic_write
from fer_edge.runtime.bars import bars_off
from fer_edge.runtime.errors import ConfigError, DataError
from fer_edge.runtime.results import finite

from .augment import augment, spectral_swap
from .checkpoint import load_checkpoint, save_checkpoint
from .distributed import DistContext, broadcast_buffers, broadcast_module, make_grad_sync, setup, teardown
from .evaluation import adabn
from .methods import Batch, Method, build_method, method_class
from .metrics_log import mean_logs, plot_curves, write_csv
from .models import FerNet, ModelSpec
from .sampling import BatchStream
from .splits_prep import SplitTensors, describe, num_identities, prepare
from .state import STATE_NAME, load_state, rng_state, save_state, set_rng_state
from .summary import epoch_record, features_npz, make_summary
from .target_prior import fit_offsets, logits_of, remove_offsets, resolve, with_offsets

log = logging.getLogger("fer_edge.train")


def pick_device(kind: str) -> torch.device:
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device: cuda requested but torch sees no CUDA device; use auto or cpu")
    if kind == "auto":
        kind = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(kind)


def build_model(cfg: Any, num_classes: int) -> FerNet:
    m = cfg.model
    return FerNet(ModelSpec(m.backbone, cfg.preprocess.channels, num_classes, m.feature_dim, m.width, m.dropout,
                            m.flip_average))


def _make_optimizer(tcfg: Any, method: Method) -> torch.optim.Optimizer:
    groups = method.parameter_groups(tcfg.lr)
    for g in groups:
        g["initial_lr"] = g["lr"]
    if tcfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=tcfg.lr, momentum=0.9, weight_decay=tcfg.weight_decay, nesterov=True)
    return torch.optim.AdamW(groups, lr=tcfg.lr, weight_decay=tcfg.weight_decay)


def _batch(sup: SplitTensors, tgt: SplitTensors, s_idx: torch.Tensor, t_idx: torch.Tensor,
           p: float, device: torch.device) -> Batch:
    xs, ys, inten_s, ident_s, pose_s = sup.take(s_idx)
    xt, _, inten_t, _, pose_t = tgt.take(t_idx)
    return Batch(xs=xs, ys=ys, xt=xt, p=p, intensity_s=inten_s, identity_s=ident_s, pose_s=pose_s,
                 intensity_t=inten_t, pose_t=pose_t).to(device)


def _make_ema(net: FerNet, decay: float) -> Optional[torch.nn.Module]:
    """An EMA copy of ``net`` (parameters and buffers) when ``train.ema`` > 0, else None."""
    if decay <= 0:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def warm_start(net: FerNet, path: Union[str, Path], labels: Sequence[str], cfg: Any) -> None:
    """Load ``path``'s weights into ``net`` (``train.init_from``) after checking that the checkpoint was made for
    the same network, labels and input contract; a mismatch is refused with what differs."""
    src, man = load_checkpoint(path)
    want = {"model": net.spec.to_dict(), "labels": list(labels), "preprocess": cfg.preprocess.to_dict()}
    got = {"model": src.spec.to_dict(), "labels": list(man.labels), "preprocess": dict(man.preprocess)}
    bad = [k for k in want if want[k] != got[k]]
    if bad:
        raise ConfigError(f"train.init_from: {path} was trained with another {', '.join(bad)} "
                          f"({'; '.join(f'{k}: {got[k]} vs {want[k]}' for k in bad)}); start from a checkpoint of "
                          "this config's model, or drop init_from")
    net.load_state_dict(src.state_dict())
    if man.extra.get("logit_offsets"):  # a head shifted to a target class balance: train the head, not the shift
        remove_offsets(net, man.extra["logit_offsets"])
    log.info("train.init_from: started from %s (%s, epoch %s%s)", path, man.extra.get("method"), man.extra.get("epoch"),
             ", its target-prior offsets removed" if man.extra.get("logit_offsets") else "")


def sup_labels_of(split: Optional[SplitTensors]) -> Optional[np.ndarray]:
    """The labels of a labelled split (the source's class balance for ``train.target_prior: source``)."""
    return split.y.numpy() if split is not None and split.labelled else None


def _compile_backbone(net: FerNet) -> None:
    """Compile ``net.backbone`` in place (its state_dict keys stay as they are, so checkpoints do not change).

    A machine that cannot compile (no C++ compiler, an unsupported op) runs eagerly instead, with dynamo's
    warning: the run is slower, never wrong."""
    import torch._dynamo

    torch._dynamo.config.suppress_errors = True
    net.backbone.compile()


def lr_factor(tcfg: Any, total: int):
    """The lr multiplier at step ``k`` (``LambdaLR``): ``train.schedule`` with ``train.warmup``, or 1 without
    ``train.lr_anneal``. A module-level function of plain numbers, so it pickles and resumes alike."""
    anneal, kind, warm = bool(tcfg.lr_anneal), str(tcfg.schedule), float(tcfg.warmup)
    return functools.partial(_lr_factor, anneal=anneal, kind=kind, warm=warm, total=max(1, int(total)))


def _lr_factor(k: int, anneal: bool, kind: str, warm: float, total: int) -> float:
    if not anneal:
        return 1.0
    p = k / total
    if kind == "cosine":
        if warm > 0 and p < warm:
            return (k + 1) / (warm * total)
        q = (p - warm) / max(1e-9, 1.0 - warm)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, q)))
    return (1.0 + 10.0 * p) ** -0.75


def autocast(device: torch.device, amp: str):
    """bf16 autocast for ``train.amp: bf16`` (CPU or CUDA), a no-op context otherwise."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp == "bf16")


class Trainer:
    """Holds one run's state; ``fit()`` runs (or resumes) it. Use :func:`train` to call it."""

    def __init__(self, cfg: Any, datasets: Mapping[str, FaceDataset], out_dir: Union[str, Path],
                 method_name: Optional[str] = None, ctx: Optional[DistContext] = None):
        self.cfg, self.t = cfg, cfg.train
        self.method_name = method_name or self.t.method
        cls = method_class(self.method_name)
        self.out = Path(out_dir)
        self.device = pick_device(self.t.device)
        self.ctx = ctx or DistContext()
        self.labels = tuple(datasets["source"].labels)
        progress = self.ctx.is_main
        nir = (bool(cfg.crop.clahe), self.t.seed) if self.t.augment.spectral > 0 else None
        self.splits = prepare(datasets, cfg.preprocess, self.t.source_val_fraction, self.t.seed,
                              self.t.target_identity, progress=progress, source_nir=nir)
        self.sup = self.splits["target" if cls.supervised_domain == "target" else "source"]
        if not self.sup.labelled:
            raise DataError(f"{self.method_name} trains on labelled {cls.supervised_domain} faces but that split "
                            "has no labels")
        #: the class balance best.pt's predictions on the target are shifted to (``train.target_prior``), and the
        #: logit offsets that did it at the last evaluation
        self.prior = resolve(self.t.target_prior, self.labels, sup_labels_of(self.splits.get("source")))
        self.prior_offsets: Optional[List[float]] = None
        torch.manual_seed(self.t.seed)
        self.net = build_model(cfg, len(self.labels))
        if self.t.init_from:
            warm_start(self.net, self.t.init_from, self.labels, cfg)
        self.method = build_method(self.method_name, self.t, self.net, self.labels,
                                   num_identities(self.splits)).to(self.device)
        if self.t.channels_last:
            self.method.to(memory_format=torch.channels_last)
        self.method.grad_sync = make_grad_sync(self.ctx)
        broadcast_module(self.method, self.ctx)
        self.ema = _make_ema(self.method.inference_module(), self.t.ema)
        if self.t.compile:  # after the EMA copy: a deep copy drops the compiled call, so the copy stays eager
            _compile_backbone(self.method.inference_module())
        self.opt = _make_optimizer(self.t, self.method)
        self.steps = self.t.steps_per_epoch or max(1, len(self.sup) // (self.t.batch_size * self.ctx.world_size))
        self.total = self.steps * self.t.epochs
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lr_factor(self.t, self.total))
        w, r, bs = self.ctx.world_size, self.ctx.rank, self.t.batch_size
        sup_labels = self.sup.y.numpy()
        self.s_stream = BatchStream(len(self.sup), bs, self.t.seed, 1, sup_labels, self.t.balanced, r, w)
        self.t_stream = BatchStream(len(self.splits["target"]), bs, self.t.seed, 2, None, False, r, w)
        self.history: List[Dict[str, float]] = []
        self.start_epoch = 0

    # -- resume ------------------------------------------------------------------------------------
    def _state(self) -> Dict[str, Any]:
        return {"method_name": self.method_name, "epoch": len(self.history), "total_steps": self.total,
                "method": self.method.state_dict(), "optimizer": self.opt.state_dict(),
                "scheduler": self.sched.state_dict(),
                "own_optimizers": {k: o.state_dict() for k, o in self.method.own_optimizers().items()},
                "ema": self.ema.state_dict() if self.ema is not None else None, "ema_decay": float(self.t.ema),
                "rng": rng_state(), "history": self.history}

    def restore(self) -> None:
        st = load_state(self.out / STATE_NAME)
        if st["method_name"] != self.method_name or st["total_steps"] != self.total:
            raise ConfigError(f"{self.out / STATE_NAME}: saved by method {st['method_name']} with "
                              f"{st['total_steps']} steps, but this run is {self.method_name} with {self.total}; "
                              "resume with the same config or use a new --out")
        self.method.load_state_dict(st["method"])
        self.opt.load_state_dict(st["optimizer"])
        self.sched.load_state_dict(st["scheduler"])
        for k, o in self.method.own_optimizers().items():
            o.load_state_dict(st["own_optimizers"][k])
        saved_decay = float(st.get("ema_decay", 0.0)) if st.get("ema") is not None else 0.0
        if saved_decay != float(self.t.ema):
            raise ConfigError(f"{self.out / STATE_NAME}: saved with train.ema={saved_decay:g}, this run has "
                              f"train.ema={float(self.t.ema):g}; resume with the same config or use a new --out")
        if self.ema is not None:
            self.ema.load_state_dict(st["ema"])
        set_rng_state(st["rng"])
        self.history = [dict(h) for h in st["history"]]
        self.start_epoch = int(st["epoch"])
        if self.ctx.is_main:
            log.info("resumed %s at epoch %d/%d", self.out, self.start_epoch, self.t.epochs)

    # -- one epoch ---------------------------------------------------------------------------------
    def _train_epoch(self, epoch: int) -> Dict[str, float]:
        from tqdm import tqdm

        self.method.train()
        logs: List[Dict[str, float]] = []
        bar = tqdm(range(self.steps), desc=f"{self.method_name} epoch {epoch + 1}/{self.t.epochs}",
                   disable=not self.ctx.is_main or bars_off(), leave=False, dynamic_ncols=True)
        main_params = [p for g in self.opt.param_groups for p in g["params"]]
        for i in bar:
            k = epoch * self.steps + i
            s_idx = self.s_stream.indices(k)
            batch = _batch(self.sup, self.splits["target"], s_idx, self.t_stream.indices(k), k / self.total,
                           self.device)
            if self.sup.x_nir is not None:  # near-infrared views of colour faces; a pure function of (seed, rank, step)
                batch.xs = spectral_swap(batch.xs, self.sup.x_nir[s_idx].to(self.device), self.t.augment.spectral,
                                         self.t.seed, 3 + 100 * self.ctx.rank, k)
            if self.t.augment.active():  # same perturbations for every method; a pure function of (seed, rank, step)
                r = self.ctx.rank
                batch.xt_clean = batch.xt
                m = self.cfg.crop.margin
                batch.xs = augment(batch.xs, self.t.augment, self.t.seed, 1 + 100 * r, k, m)
                batch.xt = augment(batch.xt, self.t.augment, self.t.seed, 2 + 100 * r, k, m)
            step_logs: Dict[str, float] = {}
            with autocast(self.device, self.t.amp):
                if self.method.has_discriminator_step():
                    step_logs.update(self.method.discriminator_step(batch))
                total, mlogs = self.method.loss(batch)
            total = total.float()
            if not torch.isfinite(total):
                raise FloatingPointError(f"{self.method_name}: non-finite loss at step {k}: {mlogs}")
            self.opt.zero_grad(set_to_none=True)
            total.backward()
            self.method.grad_sync(main_params)
            self.opt.step()
            self.sched.step()
            broadcast_buffers(self.method, self.ctx)
            if self.ema is not None:
                self.ema.update_parameters(self.method.inference_module())
            step_logs.update(mlogs)
            step_logs["total"] = float(total.detach())
            logs.append(step_logs)
            if i % 10 == 0:
                bar.set_postfix({k2: f"{v:.3f}" for k2, v in step_logs.items()
                                 if k2 in ("cls", "disc_acc", "src_acc")})
        return mean_logs(logs)

    def _target_faces(self) -> torch.Tensor:
        """The unlabelled target faces the offsets (and AdaBN) are fitted on."""
        return self.splits["target"].head(1000, self.t.seed).x

    def _offsets_for(self, net: FerNet, x_target: torch.Tensor) -> np.ndarray:
        """The logit offsets that move ``net``'s mean prediction on ``x_target`` onto ``train.target_prior``."""
        return fit_offsets(logits_of(net, x_target, self.device), self.prior)

    def _eval_net(self) -> FerNet:
        net = self.ema.module if self.ema is not None else self.method.inference_module()
        x_target = self._target_faces()
        if self.t.adabn:
            net = adabn(net, x_target, self.device)
        if self.prior is not None:  # label-free: the unlabelled target faces and the stated class balance
            offsets = self._offsets_for(net, x_target)
            net, self.prior_offsets = with_offsets(net, offsets), [float(v) for v in offsets]
        return net

    def _checkpoint(self, net: FerNet, path: Path, epoch: int) -> None:
        inputs = {f"dataset:{k}": v.fingerprint for k, v in self.splits.items()}
        save_checkpoint(path, net, self.labels, self.cfg.preprocess, self.cfg.crop.to_dict(), inputs=inputs,
                        extra={"method": self.method_name, "selector": self.t.selector, "epoch": epoch,
                               "adabn": bool(self.t.adabn), "ema": float(self.t.ema), "seed": self.t.seed,
                               "target_prior": self.t.target_prior, "logit_offsets": self.prior_offsets})

    def _seconds_before(self) -> float:
        """Training time spent by earlier processes of a resumed run (0 for a fresh one): the last restored epoch's
        ``elapsed_seconds``, or the sum of the restored epochs' times for a state written before that was kept."""
        done = self.history[:self.start_epoch]
        if not done:
            return 0.0
        last = done[-1].get("elapsed_seconds")
        return float(last) if last is not None else float(sum(h.get("epoch_seconds", 0.0) for h in done))

    # -- the run -----------------------------------------------------------------------------------
    def fit(self, resume: bool = False, stop_after: Optional[int] = None) -> Optional[Dict[str, Any]]:
        if resume and not (self.out / STATE_NAME).exists():
            # Killed before the first epoch's state was complete: nothing to continue, so start over
            # (a crash-resume loop that always passes --resume must not fail on its first retry).
            if self.ctx.is_main:
                log.warning("%s: no resume state yet (the run was interrupted before its first epoch ended); "
                            "starting from the beginning", self.out)
        elif resume:
            self.restore()
        elif self.ctx.is_main and (self.out / STATE_NAME).exists():
            log.warning("%s holds an earlier run; starting over (use --resume to continue it)", self.out)
        if self.ctx.is_main:
            (self.out / "checkpoints").mkdir(parents=True, exist_ok=True)
            log.info("train %s on %s: %s, %d epochs x %d steps, batch %d, device %s%s", self.method_name,
                     self.cfg.model.backbone, describe(self.splits), self.t.epochs, self.steps, self.t.batch_size,
                     self.device, f", {self.ctx.world_size} processes" if self.ctx.enabled else "")
        t0, c0 = time.time(), time.process_time()
        before = self._seconds_before()
        eval_lim, seed = self.t.eval_limit, self.t.seed
        eval_splits = {k: v.head(eval_lim, seed) for k, v in self.splits.items() if k != "source"}
        if self.prior is not None and self.method.uses_logit_offsets() and not self.history:
            # a fresh run: the starting model's offsets, for self_train's teacher (a resumed run restored them)
            offsets = self._offsets_for(self.method.inference_module(), self._target_faces())
            self.method.set_logit_offsets(torch.tensor(offsets, dtype=torch.float32, device=self.device))
        for epoch in range(self.start_epoch, self.t.epochs):
            te = time.time()
            train_logs = self._train_epoch(epoch)
            net = self._eval_net()
            rec = epoch_record(epoch + 1, train_logs, net, eval_splits, self.device, self.labels)
            rec["lr"] = float(self.sched.get_last_lr()[0])
            rec["epoch_seconds"] = time.time() - te
            rec["elapsed_seconds"] = before + time.time() - t0  # across resumes: the run's time, not this process's
            self.history.append(rec)
            if self.ctx.is_main:
                self._checkpoint(net, self.out / "checkpoints" / f"epoch_{epoch + 1:03d}.pt", epoch + 1)
                from .selection import select_epoch

                if select_epoch(self.history, self.t.selector) == epoch:
                    self._checkpoint(net, self.out / "best.pt", epoch + 1)
                save_state(self.out / STATE_NAME, self._state())
                write_csv(self.out / "metrics.csv", self.history)
                plot_curves(self.out / "curves.png", self.history, f"{self.method_name} ({self.cfg.name})")
                log.info("epoch %d/%d: %s", epoch + 1, self.t.epochs, _short(rec))
            if stop_after is not None and epoch + 1 >= stop_after and epoch + 1 < self.t.epochs:
                return None  # simulated interruption (tests); last.state.pt holds everything
        if not self.ctx.is_main:
            return None
        with torch.no_grad():
            self.method.eval()
            self.method.write_artefacts(self.out, self.sup.head(8, seed).x.to(self.device),
                                        self.splits["target"].head(8, seed).x.to(self.device))
        best, _ = load_checkpoint(self.out / "best.pt")
        best.to(self.device)
        buf = io.BytesIO()
        np.savez_compressed(buf, **features_npz(best, self.splits, self.device, self.t.feature_samples, seed))
        atomic_write(self.out / "features.npz", buf.getvalue())
        summary = make_summary(self.method_name, self.t.selector, self.history, seconds=before + time.time() - t0,
                               extra={"train_cpu_seconds": time.process_time() - c0,
                                      "backbone": self.cfg.model.backbone, "seed": seed, "epochs": self.t.epochs,
                                      "steps_per_epoch": self.steps, "config": self.cfg.name,
                                      "adabn": bool(self.t.adabn), "ema": float(self.t.ema),
                                      "target_prior": self.t.target_prior, "logit_offsets": self.prior_offsets,
                                      "init_from": self.t.init_from,
                                      "world_size": self.ctx.world_size,
                                      "datasets": {k: len(v) for k, v in self.splits.items()}})
        # Strict JSON (NaN → null, e.g. a discriminator accuracy for a method without one): jq/JS/Go read it.
        atomic_write(self.out / "summary.json", json.dumps(finite(summary), indent=2, allow_nan=False))
        log.info("done %s: selected epoch %d by %s, target-test acc %.3f (oracle-selected %.3f, epoch %d), "
                 "source-test acc %.3f", self.method_name, summary["selected_epoch"], self.t.selector,
                 summary["target_test_accuracy"], summary["oracle_selected_target_accuracy"],
                 summary["oracle_epoch"], summary["source_test_accuracy"])
        return summary


def _short(rec: Mapping[str, float]) -> str:
    keys = ("loss_cls", "train_disc_acc", "source_val_acc", "score_im", "score_snd", "score_dev",
            "target_test_acc", "epoch_seconds")
    return ", ".join(f"{k}={rec[k]:.3f}" for k in keys if k in rec and not math.isnan(rec[k]))


def train(cfg: Any, datasets: Mapping[str, FaceDataset], out_dir: Union[str, Path], resume: bool = False,
          method: Optional[str] = None, stop_after: Optional[int] = None) -> Optional[Dict[str, Any]]:
    """Train ``method`` (default ``cfg.train.method``) and return the summary (None on non-zero ranks).

    Under ``torchrun`` each process calls this; gradients are averaged across processes.
    ``stop_after`` ends the run after that many epochs as if interrupted (for resume tests).
    """
    device_kind = pick_device(cfg.train.device).type
    ctx = setup(device_kind)
    try:
        trainer = Trainer(cfg, datasets, out_dir, method, ctx)
        return trainer.fit(resume=resume, stop_after=stop_after)
    finally:
        teardown(ctx)
