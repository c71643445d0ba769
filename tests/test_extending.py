"""docs/extending.md's recipes are true: every registered method, loader and backend is wired at every step.

The ``recipe:`` lines of the page are read here and must name exactly the steps this test checks, so the page
and the test cannot drift apart; a method added to ``METHODS`` but not to ``METHOD_NAMES``, the ``Method``
literal, a config section or the docs' table fails below.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import re
import typing
from pathlib import Path

import pytest

from fer_edge.data.config import DataConfig
from fer_edge.data.loaders import FORMATS, MODULES
from fer_edge.runtime.backends import _IMPL, BACKENDS
from fer_edge.runtime.config import RuntimeConfig
from fer_edge.train.config import METHOD_NAMES, Method, TargetTermsConfig, TrainConfig
from fer_edge.train.methods import METHODS

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "docs" / "extending.md"
#: Methods without settings of their own (the page says so: "source-only, the oracle").
NO_SECTION = {"source_only", "target_oracle"}


def recipe_steps():
    """{kind: [step key]} from the page: ``- recipe: KIND `path` `identifier` — …`` → ``path identifier``."""
    steps: dict = {}
    for line in PAGE.read_text(encoding="utf-8").splitlines():
        m = re.match(r"- recipe: (\w+) ((?:`[^`]+`\s*)+)—", line)
        if m:
            steps.setdefault(m.group(1), []).append(" ".join(re.findall(r"`([^`]+)`", m.group(2))))
    return steps


def _choices(verb_argv, dest):
    from fer_edge.cli import build_parser

    parser = build_parser()
    for action in parser._subparsers._group_actions[0].choices[verb_argv[0]]._actions:  # noqa: SLF001
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001 - `data preview`
            sub = action.choices[verb_argv[1]]
            return next(a.choices for a in sub._actions if a.dest == dest)  # noqa: SLF001
        if action.dest == dest:
            return action.choices
    raise AssertionError(f"{verb_argv}: no option {dest}")


def _table_names(doc: str):
    return set(re.findall(r"^\| `([\w-]+)` \|", (REPO / "docs" / doc).read_text(encoding="utf-8"), re.M))


# ------------------------------------------------------------------------------------------- methods
def _method_module(name):
    assert (REPO / "train" / "methods" / f"{name}.py").is_file(), f"train/methods/{name}.py is missing"
    assert METHODS[name].__module__ == f"fer_edge.train.methods.{name}" and METHODS[name].name == name


def _method_registered(name):
    assert name in METHODS, f"{name} is not in METHODS (train/methods/__init__.py)"


def _method_names(name):
    assert name in METHOD_NAMES and name in typing.get_args(Method), f"{name}: METHOD_NAMES and the Method literal"


def _method_section(name):
    hints = typing.get_type_hints(TrainConfig)
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    if name in NO_SECTION:
        assert name not in fields
    else:
        assert name in fields and issubclass(hints[name], TargetTermsConfig), f"TrainConfig.{name}: its section"


def _method_doc(name):
    assert name in _table_names("train.md"), f"docs/train.md: no row for {name}"


METHOD_CHECKS = {"train/methods/<name>.py": _method_module, "train/methods/__init__.py": _method_registered,
                 "train/config.py Method": _method_names, "train/config.py TrainConfig": _method_section,
                 "docs/train.md": _method_doc}


# ------------------------------------------------------------------------------------------- loaders
def _loader_module(fmt):
    mod = MODULES[fmt]
    assert mod.__name__.startswith("fer_edge.data.loaders.") and callable(mod.load)


def _loader_registered(fmt):
    assert fmt in FORMATS
    src = (REPO / "data" / "loaders" / "__init__.py").read_text(encoding="utf-8")
    body = src[src.index("def load_dataset"):]
    assert f'fmt == "{fmt}"' in body, f"load_dataset has no case for {fmt}"


def _loader_config(fmt):
    assert fmt in typing.get_args(typing.get_type_hints(DataConfig)["format"])


def _loader_cli(fmt):
    assert fmt in _choices(["data", "preview"], "format")


def _loader_doc(fmt):
    assert fmt in _table_names("data.md"), f"docs/data.md: no row for {fmt}"


LOADER_CHECKS = {"data/loaders/<module>.py": _loader_module, "data/loaders/__init__.py MODULES": _loader_registered,
                 "data/config.py DataConfig.format": _loader_config, "fer_edge/commands/data.py": _loader_cli,
                 "docs/data.md": _loader_doc}


# ------------------------------------------------------------------------------------------- backends
def _backend_module(name):
    module, cls = _IMPL[name]
    klass = getattr(importlib.import_module(module), cls)  # imports without the backend's own package
    assert all(callable(getattr(klass, m, None)) for m in ("infer", "info")) and klass.name == name


def _backend_registered(name):
    assert name in BACKENDS and name in _IMPL


def _backend_config(name):
    assert name in typing.get_args(typing.get_type_hints(RuntimeConfig)["backend"])


def _backend_cli(name):
    assert name in _choices(["run"], "backend")


def _backend_doc(name):
    assert f"`{name}`" in (REPO / "docs" / "runtime.md").read_text(encoding="utf-8"), f"docs/runtime.md: {name}"


BACKEND_CHECKS = {"runtime/backends/<module>.py": _backend_module,
                  "runtime/backends/__init__.py _IMPL": _backend_registered,
                  "runtime/config.py RuntimeConfig.backend": _backend_config,
                  "fer_edge/commands/run.py": _backend_cli, "docs/runtime.md": _backend_doc}

KINDS = {"method": (METHOD_CHECKS, sorted(set(METHODS) | set(METHOD_NAMES))),
         "loader": (LOADER_CHECKS, sorted(set(FORMATS) | set(MODULES))),
         "backend": (BACKEND_CHECKS, sorted((set(BACKENDS) | set(_IMPL)) - {"auto"}))}


def test_the_page_and_this_test_name_the_same_steps():
    steps = recipe_steps()
    assert {k: sorted(v) for k, v in steps.items()} == {k: sorted(c) for k, (c, _) in KINDS.items()}


CASES = [(kind, step, name) for kind, (checks, names) in KINDS.items() for step in checks for name in names]


@pytest.mark.parametrize("kind,step,name", CASES, ids=[f"{k}:{n}:{s}" for k, s, n in CASES])
def test_every_registered_thing_is_wired_at_every_step(kind, step, name):
    KINDS[kind][0][step](name)


def test_a_method_missing_from_one_place_is_caught(monkeypatch):
    """The registry test can fail: a method in METHODS but not in METHOD_NAMES (the easy step to forget)."""
    import fer_edge.train.methods as methods

    class Fresh(methods.Method):
        name = "fresh"

    monkeypatch.setitem(methods.METHODS, "fresh", Fresh)
    with pytest.raises(AssertionError, match="METHOD_NAMES"):
        _method_names("fresh")
    with pytest.raises(AssertionError, match="train/methods/fresh.py"):
        _method_module("fresh")
