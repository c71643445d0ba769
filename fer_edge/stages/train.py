"""``train:``/``model:``/``preprocess:``/``crop:`` → the runs of :func:`fer_edge.train.trainer.train`.

``fer-edge train --method all`` and the pipeline train the same runs, each method with the same config;
``fer-edge train`` alone trains ``train.method``. Which run is exported is chosen label-free by
:func:`fer_edge.train.selection.select_method` in both.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from fer_edge.runtime.errors import ConfigError

from .call import StageCall, jsonable, pick

#: The sections the trainer reads besides ``train:`` (the data reaches it as datasets, fingerprinted by the data
#: stage).
SECTIONS = ("model", "preprocess", "crop")
#: ``train:`` keys that choose which runs happen and which one is exported, not how a run trains.
RUN_SET_KEYS = ("method", "methods", "method_selector")


def run_list(cfg: Any, method: Optional[str] = None) -> List[str]:
    """The methods to train: ``None`` → ``train.method``; ``"all"`` → source-only (the label-free selection's
    safe fallback), every ``train.methods`` entry and ``train.method``; otherwise a comma-separated list."""
    from fer_edge.train.config import METHOD_NAMES

    t = cfg.train
    if method is None:
        names = [t.method]
    elif method == "all":
        names = ["source_only", *t.methods, t.method]
    else:
        names = [m.strip() for m in method.split(",") if m.strip()]
    for name in names:
        if name not in METHOD_NAMES:
            raise ConfigError(f"train.method: {name!r} is not one of {sorted(METHOD_NAMES)}")
    names = list(dict.fromkeys(names))
    if t.finetune.enabled and "source_only" in names:  # the adaptation methods start from it: train it first
        names = ["source_only"] + [m for m in names if m != "source_only"]
    return names


@dataclass(frozen=True)
class TrainCall(StageCall):
    """``train(cfg, datasets, out, method=m)`` for each of ``methods``; ``settings["cfg"]`` is the config."""

    methods: Tuple[str, ...] = ()

    def run_config(self, method: str, source_checkpoint: Optional[str] = None) -> Any:
        """The config ``method``'s run trains with (:func:`fer_edge.train.config.method_config`: under
        ``train.finetune`` an adaptation method fine-tunes ``train.init_from`` or ``source_checkpoint``)."""
        from fer_edge.train.config import method_config

        return method_config(self.settings["cfg"], method, source_checkpoint)

    def __call__(self, datasets: Any, out: Any, method: str, source_checkpoint: Optional[str] = None,
                 **more: Any) -> Any:
        """``train(run config, datasets, out, method=method, **more)`` -- one run."""
        return self.function()(self.run_config(method, source_checkpoint), datasets, out, method=method, **more)

    def run_fingerprint(self, method: str) -> Dict[str, Any]:
        """What one method's run is made from: the shared ``train:`` keys, this method's own section (no other
        method's), ``train.finetune`` only where it applies (then with the run it starts from), and the model,
        preprocessing and crop; a method's folder is reused only when this is unchanged."""
        from fer_edge.train.config import METHOD_NAMES, NOT_FINETUNED

        cfg = self.settings["cfg"]
        fine = cfg.train.finetune.enabled and method not in NOT_FINETUNED
        section = {k: v for k, v in jsonable(cfg.train).items()
                   if k not in RUN_SET_KEYS and (k not in METHOD_NAMES or k == method) and (k != "finetune" or fine)}
        fp = {"target": self.target, "method": method, "train": section,
              **{s: jsonable(getattr(cfg, s)) for s in SECTIONS}}
        if fine and not cfg.train.init_from:
            fp["start"] = self.run_fingerprint("source_only")
        return fp

    def fingerprint(self) -> Dict[str, Any]:
        """The runs, how each is trained, and the selector that picks the exported one."""
        return {"target": self.target, "methods": list(self.methods),
                "method_selector": self.settings["cfg"].train.method_selector,
                "runs": {m: self.run_fingerprint(m) for m in self.methods}}


def from_config(cfg: Any, *, method: Optional[str] = None, device: Optional[str] = None,
                target_identity: Optional[str] = None) -> TrainCall:
    t = dataclasses.replace(cfg.train, device=pick(device, cfg.train.device),
                            target_identity=pick(target_identity, cfg.train.target_identity))
    run_cfg = dataclasses.replace(cfg, train=t)
    return TrainCall("train", "fer_edge.train.trainer:train", {"cfg": run_cfg},
                     methods=tuple(run_list(run_cfg, method)))
