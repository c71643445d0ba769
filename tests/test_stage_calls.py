"""Each stage has one settings→call function, and its verb and the pipeline make the same call with it.

Every key of every stage's config section is changed in turn: the verb (its own ``stage_call(args)``, fed
``--set KEY=VALUE``) and the pipeline (``STAGE_CALLS``) must build the same call, or the pipeline must refuse
the key as not applicable to it. The pipeline's fingerprint of a stage is that call, so a key that changes
nothing the stage is called with re-runs nothing ("no stage hashes a key it does not use").
"""
from __future__ import annotations

import dataclasses
import typing
from typing import Any, Dict, List, Tuple

import pytest

from fer_edge.cli import build_parser
from fer_edge.config import Config, load_config
from fer_edge.pipeline.main import STAGE_CALLS, stages
from fer_edge.pipeline.runner import Context
from fer_edge.runtime.errors import ConfigError
from fer_edge.train.config import METHOD_NAMES

#: stage → (the verb's command line without config flags, the config sections the stage owns)
VERBS: Dict[str, Tuple[List[str], Tuple[str, ...]]] = {
    "synth": (["train", "--method", "all"], ("data",)),
    "train": (["train", "--method", "all"], ("train", "model", "preprocess", "crop")),
    "export": (["export", "--checkpoint", "best.pt"], ("export",)),
    "calibrate": (["calibrate", "--model", "model.onnx", "--images", "faces"], ("calibrate",)),
    "build": (["build", "--model", "model.int8.onnx"], ("build",)),
    "eval": (["eval", "--model", "model.onnx", "--data", "faces", "--out", "ev"], ("eval",)),
    "bench": (["bench", "--out", "b"], ("bench",)),
    "run": (["run", "--model", "model.onnx", "--source", "clip.mp4", "--out", "r.jsonl"], ("runtime",)),
}
#: Every method is trained in this test's base config, so every ``train.<method>`` section is in use (and the
#: adaptation methods fine-tune the source-only model, so ``train.finetune`` is too).
ALL_METHODS = "train.methods=[" + ",".join(METHOD_NAMES) + "]"
BASE = [ALL_METHODS, "train.finetune.enabled=true"]
#: Settings the pipeline passes as inputs of its own (its splits), never from the config.
PIPELINE_INPUTS = {"calibrate": ("eval_data",)}
#: Changes that need a companion key to be valid, or a value the generic rule cannot guess.
SPECIAL: Dict[str, List[str]] = {
    "crop.detector": ["crop.detector=yunet", "crop.yunet_model=face.onnx"],
    "preprocess.colour": ["preprocess.colour=bgr", "preprocess.mean=[0.5,0.5,0.5]", "preprocess.std=[0.25,0.25,0.25]"],
    "preprocess.channels": [],  # derived from colour, not a key of its own
    "export.batch": ["export.batch='1'"],
    "preprocess.layout": [],  # one value allowed (NCHW)
    "crop.select": ["crop.select=all"],
    "build.gpu_fallback": ["build.gpu_fallback=true", "build.dla_core=0"],
    # every method is in the base run list: naming one that is not listed adds its run
    "train.method": ["train.methods=[source_only,target_oracle,pose_adv,disentangle,cal,pixel_da]",
                     "train.method=dann"],
    "build.batch": ["build.batch=[1,4,16]"],
    "bench.compare": ["bench.compare=[torch,ort-fp32]"],
    "train.methods": ["train.methods=[source_only,dann]"],
    "data.synth.counts": ["data.synth.counts={source: 10, source_test: 10, target: 10, target_val: 10, "
                          "target_test: 10}"],
    "runtime.detect_width": ["runtime.detect_width=320"],
}


def _other(value: Any, tp: Any) -> Any:
    """A valid value of type ``tp`` different from ``value``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        return next(a for a in args if a != value)
    if origin is typing.Union:  # Optional[X]
        inner = next(a for a in args if a is not type(None))
        if value is None:
            return {str: "some/path", int: 3, float: 0.5}.get(inner, None) if not typing.get_origin(inner) else \
                _other(typing.get_args(inner)[0], inner)
        return _other(value, inner)
    if tp is bool:
        return not value
    if tp is int:
        return value + 1
    if tp is float:
        return value / 2 if value else 0.1
    if tp is str:
        return value + "-2" if not value.startswith("synth:") else "synth:kiosk"
    if origin is tuple and args and args[-1] is not Ellipsis:  # a fixed-length tuple: change the first item
        return [_other(value[0], args[0]), *value[1:]]
    if origin in (list, tuple):
        if value:
            return [v / 2 if isinstance(v, float) else v for v in value][:-1] or [value[0] / 2]
        return [-10.0]
    raise AssertionError(f"no rule for {tp}")


def _yaml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_yaml(v) for v in value) + "]"
    if isinstance(value, float):  # YAML reads 5e-05 as a string: write it out in decimals
        return f"{value:.12f}".rstrip("0") + "0"
    return "null" if value is None else str(value)


def _keys(cls: Any, prefix: str):
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            yield from _keys(tp, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", tp


def _changes(stage: str):
    base = load_config("default", BASE)
    for section in VERBS[stage][1]:
        for key, tp in _keys(typing.get_type_hints(Config)[section], f"{section}."):
            if key in SPECIAL:
                if SPECIAL[key]:
                    yield key, SPECIAL[key]
                continue
            obj = base
            for part in key.split("."):
                obj = getattr(obj, part)
            yield key, [f"{key}={_yaml(_other(obj, tp))}"]


CASES = [(stage, key, sets) for stage in VERBS for key, sets in _changes(stage)]


def _verb_call(stage: str, sets: List[str]):
    argv, _ = VERBS[stage]
    args = build_parser().parse_args(argv + ["--config", "default", "--set", *BASE, *sets])
    call = args._module.stage_call(args)
    if stage == "synth":
        from fer_edge.stages import data

        return data.splits_call(call.settings["cfg"])
    return call


def _fp(call, stage):
    fp = call.fingerprint()
    for key in PIPELINE_INPUTS.get(stage, ()):
        fp["settings"].pop(key, None)
    return fp


@pytest.mark.parametrize("stage,key,sets", CASES, ids=[f"{s}:{k}" for s, k, _ in CASES])
def test_the_verb_and_the_pipeline_make_the_same_call(stage, key, sets):
    cfg = load_config("default", [*BASE, *sets])
    base = load_config("default", BASE)
    verb = _verb_call(stage, sets)
    try:
        pipe = STAGE_CALLS[stage](cfg)
    except ConfigError as exc:  # refused by the pipeline as not applicable -- and said so
        assert "not applicable to `fer-edge pipeline`" in str(exc) and key in str(exc)
        assert verb.fingerprint() != _verb_call(stage, []).fingerprint()  # the verb does use it
        return
    assert _fp(verb, stage) == _fp(pipe, stage)
    assert pipe.fingerprint() != STAGE_CALLS[stage](base).fingerprint(), f"{key} changes nothing the stage is given"


def test_every_stage_of_the_pipeline_is_covered():
    names = [s.name for s in stages(Config())]
    assert set(STAGE_CALLS) == set(VERBS) == set(names) - {"report"}


def test_a_key_the_stage_does_not_use_is_not_hashed():
    """The default job trains source_only, pixel_da and the oracle: DANN's settings cannot re-run its training,
    and one method's settings never re-train another."""
    base = load_config("default")
    other = load_config("default", ["train.dann.lambda_max=0.5"])
    assert STAGE_CALLS["train"](base).fingerprint() == STAGE_CALLS["train"](other).fingerprint()
    changed = load_config("default", ["train.pixel_da.content_weight=0.5"])
    a, b = STAGE_CALLS["train"](base), STAGE_CALLS["train"](changed)
    assert a.run_fingerprint("source_only") == b.run_fingerprint("source_only")
    assert a.run_fingerprint("pixel_da") != b.run_fingerprint("pixel_da")


def test_the_pipeline_stage_fingerprint_is_its_call(tmp_path):
    cfg = load_config("default", ["export.simplify=false"])
    ctx = Context(cfg=cfg, out=tmp_path)
    export = next(s for s in stages(cfg) if s.name == "export")
    assert export.fingerprint(ctx) == STAGE_CALLS["export"](cfg).fingerprint()
    assert export.fingerprint(ctx)["settings"]["simplify"] is False


def test_the_pipeline_refuses_what_it_decides_itself():
    with pytest.raises(ConfigError, match="calibrate.eval: not applicable"):
        STAGE_CALLS["calibrate"](load_config("default", ["calibrate.eval=some/folder"]))


def test_train_all_trains_what_the_pipeline_trains():
    cfg = load_config("default", ["train.method=dann", "train.methods=[pixel_da]"])
    assert STAGE_CALLS["train"](cfg).methods == ("source_only", "pixel_da", "dann")
    args = build_parser().parse_args(["train", "--config", "default", "--set", "train.method=dann"])
    assert args._module.stage_call(args).methods == ("dann",)  # the verb alone: train.method


def test_finetune_is_hashed_only_where_it_applies_and_with_the_run_it_starts_from():
    on = load_config("default", ["train.finetune.enabled=true"])
    longer = load_config("default", ["train.finetune.enabled=true", "train.finetune.epochs=9"])
    a, b = STAGE_CALLS["train"](on), STAGE_CALLS["train"](longer)
    assert a.run_fingerprint("source_only") == b.run_fingerprint("source_only")  # source-only never fine-tunes
    assert a.run_fingerprint("target_oracle") == b.run_fingerprint("target_oracle")
    assert a.run_fingerprint("pixel_da") != b.run_fingerprint("pixel_da")
    assert a.run_fingerprint("pixel_da")["start"] == a.run_fingerprint("source_only")
    off = STAGE_CALLS["train"](load_config("default"))
    assert "finetune" not in off.run_fingerprint("pixel_da")["train"]  # off: nobody reads it
    assert a.run_config("pixel_da", "so.pt").train.init_from == "so.pt"
