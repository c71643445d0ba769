"""Help texts say what the commands really do, and the global flags work where users type them."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest
from runtime_fixtures import make_onnx, synthetic_frames, write_video

from fer_edge import cli

REPO = Path(__file__).resolve().parents[1]


def _helps():
    """Every verb's and data sub-verb's --help text, by name."""
    parser = cli.build_parser()
    verbs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    out = {}
    for name, p in verbs.choices.items():
        out[name] = p.format_help()
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                out.update({f"{name} {sub}": sp.format_help() for sub, sp in a.choices.items()})
    return out


def test_no_raw_rest_markup_in_any_help():
    helps = _helps()
    assert {"run", "calibrate", "train", "export", "pipeline", "data faces"} <= set(helps)
    for name, text in helps.items():
        assert "``" not in text and "::" not in text and ":func:" not in text, (name, text)


def test_calibrate_help_gives_the_configs_method_not_a_stale_one():
    from fer_edge.config import load_config

    text = " ".join(_helps()["calibrate"].split())
    assert f"{load_config(None).calibrate.method} in the default config" in text
    assert "calibrate.method, entropy" not in text


def test_examples_name_files_the_commands_really_write():
    helps = _helps()
    assert "runs/default/calibrate/model.int8.onnx" in helps["run"]
    assert "runs/default/model.int8.onnx" not in helps["run"] and "--save-dir" in helps["run"]
    assert "train/dann/" not in helps["eval"]  # the default config trains source_only, pixel_da, target_oracle


def test_data_lists_all_its_subverbs():
    text = _helps()["data"]
    assert all(word in text for word in ("synth", "faces", "preview"))
    top = cli.build_parser().format_help()
    assert "faces from footage" in " ".join(top.split("data", 1)[1].split("train", 1)[0].split())  # the faces verb


@pytest.mark.parametrize("argv", [["-q", "run"], ["run", "-q"], ["run", "--quiet"]])
def test_global_flags_work_before_and_after_the_verb(argv):
    args = cli.build_parser().parse_args(argv + ["--model", "m.onnx", "--source", "0", "--out", "o"])
    assert args.quiet is True and args.verbose is False and args.verb == "run"


def test_quiet_silences_the_progress_bar(tmp_path):
    pytest.importorskip("tqdm")
    model = make_onnx(tmp_path / "model.onnx")
    video = write_video(tmp_path / "clip.avi", synthetic_frames(20, size=(320, 240), faces=((120, 120, 45),)))
    base = [sys.executable, "-m", "fer_edge.cli"]
    tail = ["--model", str(model), "--source", str(video), "--threads", "1"]
    env = {k: v for k, v in os.environ.items() if k != "TQDM_DISABLE"}  # an earlier test may have switched bars off
    loud = subprocess.run(base + ["run", *tail, "--out", str(tmp_path / "a.jsonl")], capture_output=True, text=True,
                          timeout=120, cwd=REPO, env=env)
    quiet = subprocess.run(base + ["run", "-q", *tail, "--out", str(tmp_path / "b.jsonl")], capture_output=True,
                           text=True, timeout=120, cwd=REPO, env=env)
    assert loud.returncode == 0 and quiet.returncode == 0, quiet.stderr
    assert "frame/s" in loud.stderr or "frames/s" in loud.stderr  # the bar is there without -q
    assert "frame/s" not in quiet.stderr and "frames/s" not in quiet.stderr and "INFO" not in quiet.stderr
