"""``benchmarks/runtime_footage.py`` on tiny synthetic stand-ins: it skips without clips, and its tables fill in."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from runtime_fixtures import make_onnx, synthetic_frames, write_video

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def footage():
    sys.path.insert(0, str(REPO / "benchmarks"))
    spec = importlib.util.spec_from_file_location("runtime_footage", REPO / "benchmarks" / "runtime_footage.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_without_clips_it_says_so_in_one_line(footage, capsys, tmp_path):
    assert footage.main(["--clips", str(tmp_path / "absent"), "--work", str(tmp_path)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "skipped" in out[0]


def test_speed_and_box_tables_on_a_small_clip(footage, tmp_path, capsys):
    model = make_onnx(tmp_path / "m.onnx")
    clips = tmp_path / "clips"
    clips.mkdir()
    clip = write_video(clips / "a.avi", synthetic_frames(12, size=(320, 240), faces=((120, 120, 45),)))
    (clips / "a.mp4").write_bytes(clip.read_bytes())  # the box check reads *.mp4
    doc = tmp_path / "page.md"
    doc.write_text(f"# page\n{footage.BEGIN}\nold\n{footage.END}\nkept\n")
    rc = footage.main(["--speed-clip", str(clip), "--clips", str(clips), "--model", str(model), "--frames", "8",
                       "--modes", "sync", "--work", str(tmp_path / "work"), "--doc", str(doc),
                       "--json", str(tmp_path / "f.json")])
    assert rc == 0
    text = doc.read_text()
    assert "old" not in text and text.endswith("kept\n")
    assert "| decode only" in text and "| fer-edge fp32 sync |" in text and "| a.mp4 |" in text
    assert "as a 25 FPS camera" in text  # the clip delivered at its own rate, like a live source
    assert (tmp_path / "work" / "a-1080p.mp4").is_file()  # decoded as 1080p, as the goal is stated
