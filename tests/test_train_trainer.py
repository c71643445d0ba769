"""The one trainer: files and summary schema, resume equality, 2-process training, sampling."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fer_edge.config import load_config
from fer_edge.runtime.errors import DataError
from fer_edge.train.checkpoint import load_checkpoint
from fer_edge.train.sampling import BatchStream
from fer_edge.train.state import load_state
from fer_edge.train.trainer import Trainer, train

sys.path.insert(0, str(Path(__file__).parent))
from test_train_fixtures import make_dataset, make_datasets  # noqa: E402

SUMMARY_KEYS = {"method", "selector", "selected_epoch", "target_test_accuracy", "target_test_macro_f1",
                "source_test_accuracy", "oracle_selected_target_accuracy", "oracle_epoch", "selector_scores"}
FAST = ["train.epochs=2", "train.steps_per_epoch=3", "train.batch_size=16", "train.feature_samples=20"]


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    return make_datasets(tmp_path_factory.mktemp("faces"))


def test_summary_schema_files_and_manifest(datasets, tmp_path):
    cfg = load_config("ci", FAST + ["train.selector=snd"])
    s = train(cfg, datasets, tmp_path, method="dann")
    assert SUMMARY_KEYS <= set(s)
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["method"] == "dann" and on_disk["selector"] == "snd"
    assert set(on_disk["selector_scores"]) == {"im", "snd", "dev", "source_val"}
    assert 0.0 <= on_disk["target_test_accuracy"] <= 1.0
    assert on_disk["oracle_selected_target_accuracy"] >= on_disk["target_test_accuracy"]
    recall = on_disk["target_test_per_class_recall"]
    assert list(recall) == list(datasets["source"].labels)
    seen = [v for v in recall.values() if v is not None]  # None: a class absent from target_test
    assert seen and min(seen) - 1e-9 <= on_disk["target_test_accuracy"] <= max(seen) + 1e-9  # a weighted mean
    for name in ("best.pt", "best.pt.json", "checkpoints/epoch_001.pt", "checkpoints/epoch_002.pt",
                 "last.state.pt", "metrics.csv", "curves.png", "features.npz"):
        assert (tmp_path / name).is_file(), name
    net, man = load_checkpoint(tmp_path / "best.pt")
    assert man.extra["method"] == "dann" and man.extra["epoch"] == on_disk["selected_epoch"]
    assert any(k.startswith("dataset:") for k in man.inputs)
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert len(rows) == 3 and "train_disc_acc" in rows[0] and "score_dev" in rows[0]
    f = np.load(tmp_path / "features.npz")
    assert f["feats"].shape == (40, cfg.model.feature_dim) and set(f["domain"].tolist()) == {0, 1}
    assert not (tmp_path / "translated.png").exists()  # only a method with a generator draws one


def test_pixel_da_run_shows_what_its_generator_learned(datasets, tmp_path):
    import cv2

    s = train(load_config("ci", FAST), datasets, tmp_path, method="pixel_da")
    assert s["method"] == "pixel_da" and "train_translated_acc" in (tmp_path / "metrics.csv").read_text()
    grid = cv2.imread(str(tmp_path / "translated.png"), cv2.IMREAD_GRAYSCALE)
    size = load_config("ci").preprocess.size
    assert grid is not None and grid.shape[0] == 4 * size * 2  # source, translated, difference, target rows


# cal and pixel_da step an adversary with their own optimiser, whose state must survive the cut too
@pytest.mark.parametrize("method,ema", [("cal", 0.0), ("cal", 0.9), ("pixel_da", 0.0)])
def test_resume_reaches_the_same_final_state(datasets, tmp_path, method, ema):
    cfg = load_config("ci", ["train.epochs=3", "train.steps_per_epoch=2", "train.batch_size=8",
                             "train.feature_samples=8", "model.dropout=0.3", "train.augment.flip=true",
                             "train.augment.shift=0.05", "train.augment.brightness=0.2", f"train.ema={ema}"])
    full = train(cfg, datasets, tmp_path / "full", method=method)
    assert train(cfg, datasets, tmp_path / "cut", method=method, stop_after=1) is None
    assert load_state(tmp_path / "cut" / "last.state.pt")["epoch"] == 1
    resumed = train(cfg, datasets, tmp_path / "cut", method=method, resume=True)
    for k in ("target_test_accuracy", "source_test_accuracy", "selected_epoch", "selector_scores"):
        assert resumed[k] == full[k], k
    # the run's time counts the first process's epoch too, not only the resumed process's
    elapsed = [h["elapsed_seconds"] for h in load_state(tmp_path / "cut" / "last.state.pt")["history"]]
    first = elapsed[0]
    assert len(elapsed) == 3 and elapsed == sorted(elapsed) and resumed["train_seconds"] >= elapsed[-1] > first
    for part in ("method",) + (("ema",) if ema else ()):
        a = load_state(tmp_path / "full" / "last.state.pt")[part]
        b = load_state(tmp_path / "cut" / "last.state.pt")[part]
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_ema_weights_are_what_is_selected_and_exported(datasets, tmp_path):
    cfg = load_config("ci", FAST + ["train.ema=0.5", "train.epochs=1"])
    s = train(cfg, datasets, tmp_path, method="dann")
    assert s["ema"] == 0.5
    st = load_state(tmp_path / "last.state.pt")
    raw, ema = st["method"], st["ema"]
    assert int(ema["n_averaged"]) == 3  # one update per optimiser step
    best, man = load_checkpoint(tmp_path / "best.pt")
    exported = best.state_dict()
    assert man.extra["ema"] == 0.5
    key = next(k for k in exported if k.endswith("weight") and exported[k].dim() == 4)
    assert torch.equal(exported[key], ema["module." + key])
    assert not torch.equal(exported[key], raw["net." + key])  # the average, not the last step
    with pytest.raises(Exception, match="train.ema"):  # resuming with EMA switched off is refused
        train(load_config("ci", FAST + ["train.epochs=1"]), datasets, tmp_path, method="dann", resume=True)


def test_channels_last_changes_speed_not_the_model(datasets, tmp_path):
    """NHWC weights are a CPU speed-up only: same steps, same weights up to float rounding, and the
    checkpoint loads into an ordinary (contiguous) model for export."""
    base = ["train.epochs=1", "train.steps_per_epoch=3", "train.batch_size=16", "train.feature_samples=8"]
    probe = Trainer(load_config("ci", base), datasets, tmp_path / "probe", "dann")
    conv = next(m for m in probe.net.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1
                and m.kernel_size == (3, 3) and m.groups == 1)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last) and not conv.weight.is_contiguous()
    nets = {}
    for cl in (True, False):
        cfg = load_config("ci", base + [f"train.channels_last={str(cl).lower()}"])
        train(cfg, datasets, tmp_path / str(cl), method="dann")
        nets[cl], _ = load_checkpoint(tmp_path / str(cl) / "best.pt")
    a, b = nets[True].state_dict(), nets[False].state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-4, rtol=1e-3), k
        assert a[k].is_contiguous(), k
    x = torch.rand(4, *[int(v) for v in (cfg.preprocess.channels, cfg.preprocess.size, cfg.preprocess.size)])
    nets[True].eval(), nets[False].eval()
    with torch.no_grad():
        assert torch.allclose(nets[True](x)[0], nets[False](x)[0], atol=1e-4)


def test_oracle_needs_labelled_target(tmp_path):
    ds = {"source": make_dataset(tmp_path / "s", 30, "studio", 1),
          "target": make_dataset(tmp_path / "t", 20, "cabin-nir", 2, labelled=False)}
    with pytest.raises(DataError, match="labelled target"):
        train(load_config("ci", FAST), ds, tmp_path / "o", method="target_oracle")


def test_target_identity_personalises(datasets, tmp_path):
    cfg = load_config("ci", FAST[:1] + ["train.steps_per_epoch=1", "train.batch_size=8",
                                        "train.target_identity=id2"])
    s = train(cfg, datasets, tmp_path, method="source_only")
    n_id2 = sum(r.identity == "id2" for r in datasets["target"].records)
    assert s["datasets"]["target"] == n_id2 < len(datasets["target"])
    with pytest.raises(DataError, match="nobody"):
        train(load_config("ci", FAST + ["train.target_identity=nobody"]), datasets, tmp_path / "x")


def test_batch_streams_are_deterministic_sharded_and_balanced():
    a = BatchStream(10, 4, seed=3, stream=1)
    b = BatchStream(10, 4, seed=3, stream=1)
    assert all(torch.equal(a.indices(k), b.indices(k)) for k in range(7))
    epoch0 = torch.cat([a.indices(0), a.indices(1), a.indices(2)[:2]])
    assert sorted(epoch0.tolist()) == list(range(10))  # one pass covers everything once
    r0, r1 = BatchStream(20, 5, 0, 1, rank=0, world_size=2), BatchStream(20, 5, 0, 1, rank=1, world_size=2)
    both = torch.cat([r0.indices(0), r1.indices(0), r0.indices(1), r1.indices(1)])
    assert sorted(both.tolist()) == list(range(20))  # disjoint shards
    labels = np.array([0] * 90 + [1] * 10)
    bal = BatchStream(100, 50, 0, 1, labels, balanced=True)
    drawn = torch.cat([bal.indices(k) for k in range(20)]).numpy()
    assert 0.4 < (labels[drawn] == 1).mean() < 0.6


def _ddp_worker(rank, world, port, ds, out, method):
    import datetime
    import os

    import torch.distributed as dist

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    # a rank that dies must not leave the other waiting forever in a collective
    dist.init_process_group("gloo", rank=rank, world_size=world, timeout=datetime.timedelta(seconds=120))
    cfg = load_config("ci", ["train.epochs=1", "train.steps_per_epoch=3", "train.batch_size=8",
                             "train.feature_samples=8", "train.device=cpu"])
    from fer_edge.train.distributed import setup
    from fer_edge.train.trainer import Trainer

    ctx = setup("cpu")  # joins the group initialised above
    trainer = Trainer(cfg, ds, Path(out) / "run", method, ctx)
    trainer.fit()
    torch.save(trainer.method.state_dict(), Path(out) / f"rank{rank}.pt")
    dist.destroy_process_group()


# dann: the trainer's gradient sync; pixel_da (the default config's method): also its own-optimiser discriminator
@pytest.mark.parametrize("method", ["dann", "pixel_da"])
def test_two_process_training_keeps_ranks_identical(tmp_path, method):
    import socket
    import time

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # files are written once here; the workers get the (picklable) datasets and only read them
    ds = make_datasets(tmp_path / "faces", n_source=48, n_target=32)
    procs = mp.spawn(_ddp_worker, args=(2, port, ds, str(tmp_path), method), nprocs=2, join=False)
    deadline = time.time() + 300
    while not procs.join(timeout=5):
        if time.time() > deadline:
            for p in procs.processes:
                p.terminate()
            pytest.fail("2-process training did not finish in 300 s")
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert math.isfinite(json.loads((tmp_path / "run" / "summary.json").read_text())["target_test_accuracy"])
