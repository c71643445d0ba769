"""The config is what ships: one source of defaults, no key nothing reads, old keys answered, overlays apart."""
from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path

import pytest

from fer_edge.config import SHIPPED_DIFFERS, Config, load_config, packaged_config_dir, read_yaml
from fer_edge.configfields import to_dict
from fer_edge.deprecations import DEPRECATED, REMOVED, RENAMED
from fer_edge.runtime.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def _leaves(tree, prefix=""):
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and key != "counts":
            yield from _leaves(value, path + ".")
        else:
            yield path, value


def _get(tree, dotted):
    for part in dotted.split("."):
        tree = tree[part]
    return tree


def shipped_differences():
    """Every key configs/default.yaml sets to something other than the dataclass default."""
    code = to_dict(Config())
    shipped = to_dict(load_config("default"))
    written = dict(_leaves(read_yaml(packaged_config_dir() / "default.yaml")))
    return {k: (_get(code, k), _get(shipped, k)) for k in written if _get(code, k) != _get(shipped, k)}


def test_the_shipped_config_and_the_code_defaults_agree_except_where_documented():
    diff = shipped_differences()
    undocumented = {k: v for k, v in diff.items() if k not in SHIPPED_DIFFERS and k != "name"}
    assert not undocumented, ("configs/default.yaml and the dataclass defaults disagree (code, shipped) — make "
                              f"them agree or say why in fer_edge.config.SHIPPED_DIFFERS: {undocumented}")
    stale = sorted(set(SHIPPED_DIFFERS) - set(diff))
    assert not stale, f"SHIPPED_DIFFERS names keys that no longer differ: {stale}"


def test_the_three_contradictions_of_issue_23_are_gone():
    code, shipped = Config(), load_config("default")
    assert code.calibrate.method == shipped.calibrate.method == "minmax"
    assert code.train.dann.lambda_max == 1.0
    assert code.train.method == shipped.train.method == "pixel_da"


def _dataclasses(cls, path=""):
    """(dotted section, dataclass) of every section under ``cls``."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            sub = f"{path}{f.name}"
            yield sub, tp
            yield from _dataclasses(tp, sub + ".")


#: The code that reads each section (a field must be read by its stage, not just declared).
_METHOD_FILES = {"dann": "dann.py", "pose_adv": "pose_adv.py", "disentangle": "disentangle.py", "cal": "cal.py",
                 "pixel_da": "pixel_da.py"}


def _source_for(section: str) -> str:
    if section.startswith("train.") and section.split(".")[1] in _METHOD_FILES:
        name = section.split(".")[1]
        files = [REPO / "train" / "methods" / _METHOD_FILES[name], REPO / "train" / "methods" / "base.py"]
    else:
        files = [p for folder in ("runtime", "data", "train", "export", "calibration", "fer_edge")
                 for p in (REPO / folder).rglob("*.py") if p.name != "config.py"]
    return "\n".join(p.read_text(encoding="utf-8") for p in files)


@pytest.mark.parametrize("section,cls", list(_dataclasses(Config)), ids=lambda v: v if isinstance(v, str) else "")
def test_every_config_key_is_read_by_its_stage(section, cls):
    """A key nothing reads is a setting that does nothing (``train.workers`` was one): remove it, and answer it in
    fer_edge/deprecations.py."""
    text = _source_for(section)
    # train's own keys must be read through a train config (``self.t.x``, ``tcfg.x``, ``cfg.train.x``): a name
    # such as ``workers`` is read elsewhere for another section (data.synth.workers)
    owner = r"(?:\bt|tcfg|self\.t|self\.cfg|cfg\.train|\btrain)" if section == "train" else ""
    hints = typing.get_type_hints(cls)
    unread = [f.name for f in dataclasses.fields(cls) if not dataclasses.is_dataclass(hints[f.name])  # own test
              and not re.search(rf"{owner}\.{f.name}\b|getattr\([^,]+,\s*[\"']{f.name}[\"']" +
                               ("" if owner else rf"|[\"']{f.name}[\"']"), text)]
    assert not unread, f"{section}: nothing reads {unread}"


@pytest.mark.parametrize("old", sorted(DEPRECATED))
def test_a_removed_or_renamed_key_is_answered_not_refused(old, caplog):
    kind, what = DEPRECATED[old]
    value = 1.0 if "lambda" in old else 2
    with caplog.at_level("WARNING", logger="fer_edge.config"):
        cfg = load_config("default", [f"{old}={value}"])
    said = caplog.text
    if kind == REMOVED:
        assert f"{old} was removed because" in said
    else:
        assert f"{old} was renamed to {what}" in said and _get(to_dict(cfg), what) == value
    section, _, key = old.rpartition(".")
    obj = cfg
    for part in section.split("."):
        obj = getattr(obj, part)
    assert not hasattr(obj, key)  # the key is gone


def test_a_renamed_key_moves_to_its_new_name(monkeypatch, caplog):
    monkeypatch.setitem(DEPRECATED, "eval.batch", (RENAMED, "eval.batch_size"))
    with caplog.at_level("WARNING", logger="fer_edge.config"):
        cfg = load_config("default", ["eval.batch=17"])
    assert cfg.eval.batch_size == 17 and "eval.batch was renamed to eval.batch_size" in caplog.text


def test_an_unknown_key_is_still_refused():
    with pytest.raises(ConfigError, match="train.wrokers: unknown key"):
        load_config("default", ["train.wrokers=1"])


def test_an_overlay_changes_only_what_it_names(tmp_path):
    overlay = REPO / "benchmarks" / "overlays" / "methods.yaml"
    base, over = load_config("default"), load_config("default", overlays=[overlay])
    assert over.train.pose_adv.pitch_bins == [-15.0, -5.0] and over.train.pose_adv.cross_on_target
    assert dataclasses.replace(over.train, pose_adv=base.train.pose_adv) == base.train
    with pytest.raises(ConfigError, match="overlay"):
        load_config("default", overlays=[tmp_path / "missing.yaml"])
    # --set wins over an overlay
    assert load_config("default", ["train.pose_adv.pitch_bins=[]"], overlays=[overlay]).train.pose_adv.pitch_bins == []


def test_the_config_page_names_every_deprecated_key_and_every_shipped_difference():
    page = (REPO / "docs" / "config.md").read_text(encoding="utf-8")
    assert all(f"`{k}`" in page or f"`{k.rsplit('.', 1)[0]}." in page for k in DEPRECATED)
    assert all(k.rsplit(".", 1)[0] + "." in page or f"`{k}`" in page for k in SHIPPED_DIFFERS)
