"""benchmarks/real_target_headroom.py without real data: the one-line skip, and every remedy and the head's ceiling
run end to end on a tiny model over a tiny BUAA-shaped folder (the real numbers come from the command on the page)."""
from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import real_target_headroom as headroom  # noqa: E402

FOLDERS = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")  # FER2013's / BUAA's folder names


def test_skips_with_one_line_naming_the_missing_path(tmp_path, capsys):
    doc = tmp_path / "page.md"
    assert headroom.main(["--data", str(tmp_path / "nowhere"), "--checkpoints", "x", "--doc", str(doc)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "skipped" in out[0] and "nowhere/buaa_nir" in out[0]
    assert not doc.exists()


def _faces(root: Path, prefix: str, people: int, rng: np.random.Generator) -> None:
    for k, cls in enumerate(FOLDERS):
        (root / cls).mkdir(parents=True)
        for p in range(1, people + 1):
            img = np.clip(rng.normal(60 + 20 * k, 25, (40, 40)), 0, 255).astype(np.uint8)
            cv2.imwrite(str(root / cls / f"{prefix}{p}_{k}.png"), img)


def test_every_remedy_and_the_ceiling_run_and_the_page_lists_them(tmp_path):
    from fer_edge.runtime.contract import LABELS, PreprocessSpec
    from fer_edge.train.checkpoint import save_checkpoint
    from fer_edge.train.models import FerNet, ModelSpec

    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    _faces(data / "buaa_nir", "buaa-", 4, rng)  # people 1..4: odd ones dev, even ones test
    _faces(data / "fer2013" / "train", "f", 2, rng)  # only its class counts are read (the prior)
    torch.manual_seed(0)
    net = FerNet(ModelSpec(backbone="tiny", in_channels=1, num_classes=len(LABELS), feature_dim=8, width=0.5)).eval()
    ck = tmp_path / "run-s0" / "best.pt"
    ck.parent.mkdir()
    save_checkpoint(ck, net, LABELS, PreprocessSpec(size=32, colour="gray"), {"margin": 0.1})
    doc = tmp_path / "page.md"
    assert headroom.main(["--data", str(data), "--checkpoints", str(tmp_path / "run-s*/best.pt"),
                          "--doc", str(doc)]) == 0
    text = doc.read_text()
    for row in ("as trained", "AdaBN", "TENT", "T3A", "SHOT", "prior shift to FER2013", "prior shift to a uniform",
                "AdaBN, then the prior shift", "ceiling"):
        assert f"| {row}" in text, row
    ceiling = next(line for line in text.splitlines() if line.startswith("| ceiling"))
    assert ceiling.split("|")[2].strip() == "—"  # the ceiling read dev labels: it has no dev score
    scores = [float(c.split("±")[0]) for line in text.splitlines() if line.startswith("| ") and "remedy" not in line
              for c in line.split("|")[2:4] if c.strip() not in ("", "—")]
    assert scores and all(0.0 <= s <= 100.0 for s in scores)
