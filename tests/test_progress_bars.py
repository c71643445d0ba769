"""``--no-progress`` silences every bar: one environment switch that every bar honours."""
from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("value,off", [("", False), ("0", False), ("false", False), ("1", True), ("True", True)])
def test_bars_off_reads_tqdm_disable(monkeypatch, value, off):
    from fer_edge.runtime.bars import bars_off

    monkeypatch.setenv("TQDM_DISABLE", value)
    assert bars_off() is off


def test_pipeline_no_progress_switches_every_bar_off(monkeypatch, tmp_path):
    """The flag must reach the bars the stages draw (and the synthesis workers, through the environment)."""
    from fer_edge.commands import pipeline as cmd
    from fer_edge.pipeline import main

    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    seen = {}

    def fake_run(cfg, out, force=(), until=None, progress=True):
        seen["env"], seen["progress"] = os.environ.get("TQDM_DISABLE"), progress
        return {}

    monkeypatch.setattr(main, "run_pipeline", fake_run)
    p = argparse.ArgumentParser()
    cmd.add_arguments(p)
    assert cmd.run(p.parse_args(["--config", "ci", "--out", str(tmp_path), "--no-progress"])) == 0
    assert seen == {"env": "1", "progress": False}


def test_every_bar_with_its_own_disable_also_asks_bars_off():
    """tqdm honours TQDM_DISABLE only when the caller passes no ``disable=``; a call site that computes its
    own must add ``bars_off()``, or ``--no-progress`` leaks bars into logs again."""
    leaks = []
    for folder in ("train", "calibration", "export", "runtime", "fer_edge"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            for m in re.finditer(r"tqdm\((?:[^()]|\([^()]*\))*\)", text):
                call = m.group(0)
                if "disable=" in call and "bars_off()" not in call:
                    leaks.append(f"{path.relative_to(ROOT)}: {call[:80]}")
    assert not leaks, leaks
