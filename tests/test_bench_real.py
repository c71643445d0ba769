"""benchmarks/bench_real.py without real data: the one-line skip, resume by skipping finished runs, the paired
interval and the page (the real-data numbers themselves come from `make bench-real DATA=...`)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_real  # noqa: E402
import buaa_labels  # noqa: E402
import real_page  # noqa: E402

from fer_edge.runtime.metrics import paired_interval  # noqa: E402


def test_skips_with_one_line_naming_the_missing_path(tmp_path, capsys):
    assert bench_real.main(["--data", str(tmp_path / "nowhere"), "--doc", str(tmp_path / "page.md")]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "skipped" in out[0] and "nowhere/fer2013/train" in out[0]
    assert not (tmp_path / "page.md").exists()


def test_a_finished_run_is_not_trained_again(tmp_path, monkeypatch):
    run = tmp_path / "source_only-s0"
    run.mkdir()
    (run / "summary.json").write_text(json.dumps({"method": "source_only"}))
    monkeypatch.setattr(bench_real.subprocess, "call", lambda *a, **k: pytest.fail("trained a finished run"))
    assert bench_real.train_run("source_only", 0, tmp_path, tmp_path, "real", [])["method"] == "source_only"


def test_paired_interval_and_selection_fallback():
    p = paired_interval([0.60, 0.62, 0.61], [0.55, 0.56, 0.56])
    assert p["mean"] == pytest.approx(0.0533, abs=1e-3) and p["low"] > 0 and p["wins"] == 3
    assert paired_interval([0.6], [0.5]) is None
    runs = {"source_only": {0: {"method": "source_only", "selector_scores": {"im": 0.2}}},
            "pixel_da": {0: {"method": "pixel_da", "selector_scores": {"im": 0.3}}},
            "target_oracle": {0: {"method": "target_oracle", "selector_scores": {"im": 9.0}}}}
    assert real_page.select_per_seed(runs, "im") == {0: "pixel_da"}  # the oracle is never eligible


def test_page_marks_the_selected_method_and_says_when_adaptation_did_not_help(tmp_path):
    def ev(acc):
        return {"sets": {s: {"fp32": {"accuracy": acc, "macro_f1": acc}, "int8": {"accuracy": acc, "macro_f1": acc}}
                         for s in real_page.TESTS}}

    rows = {"source_only": {s: {"summary": {"train_seconds": 600}, "eval": ev(0.5 + 0.01 * s)} for s in (0, 1, 2)},
            "pixel_da": {s: {"summary": {"train_seconds": 1200}, "eval": ev(0.5 + 0.02 * s - 0.02)} for s in (0, 1, 2)}}
    text = real_page.write_page(tmp_path / "p.md", rows, {0: "pixel_da", 1: "pixel_da", 2: "pixel_da"}, None,
                                 "python benchmarks/bench_real.py --data DATA", "im")
    assert "| pixel_da * | 0,1,2 |" in text and "| dann | not run yet |" in text
    assert "did not help reliably" in text and (tmp_path / "p.md").read_text() == text


def test_a_rerun_keeps_the_hand_written_notes(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("# old table\n\n## Notes\n\nwhat the pilots showed\n")
    text = real_page.write_page(page, {}, {}, None, "cmd", "im")
    assert "old table" not in text and text.endswith("## Notes\n\nwhat the pilots showed\n")


def test_buaa_halves_split_by_person_and_link_every_face(tmp_path):
    data = tmp_path / "data"
    names = {"happy": ["buaa-1_22.bmp", "buaa-2_22.bmp", "22.bmp"], "sad": ["buaa-1_24.bmp", "buaa-14_24.bmp"]}
    for cls, files in names.items():
        (data / "buaa_nir" / cls).mkdir(parents=True)
        for f in files:
            (data / "buaa_nir" / cls / f).write_bytes(f.encode())
    halves = bench_real.buaa_halves(data, tmp_path / "out")
    dev = {p.name for p in halves[real_page.DEV].glob("*/*")}
    test = {p.name for p in halves[real_page.QUOTED].glob("*/*")}
    assert dev == {"buaa-1_22.bmp", "buaa-1_24.bmp"}  # odd people
    assert test == {"buaa-2_22.bmp", "22.bmp", "buaa-14_24.bmp"}  # even people and the unnumbered files
    assert (halves[real_page.DEV] / "sad" / "buaa-1_24.bmp").read_bytes() == b"buaa-1_24.bmp"
    # no symbolic links: the loaders refuse a link that leads out of the dataset's root (the oracle's run did)
    assert not any(p.is_symlink() for h in halves.values() for p in h.glob("*/*"))
    assert bench_real.buaa_halves(data, tmp_path / "out") == halves  # made once, reused


def _buaa(root: Path, counts) -> Path:
    """A BUAA layout with ``counts`` faces per class folder, person numbers 1, 2, 3, ..."""
    n = 0
    for cls, k in counts.items():
        (root / "buaa_nir" / cls).mkdir(parents=True)
        for _ in range(k):
            n += 1
            (root / "buaa_nir" / cls / f"buaa-{n}_22.bmp").write_bytes(b"x")
    return root / "buaa_nir"


def test_label_fix_recognises_realdata_layout_and_leaves_others_alone(tmp_path, caplog):
    assert buaa_labels.label_fix(_buaa(tmp_path / "a", buaa_labels.LAID_OUT)) == buaa_labels.CORRECTION
    assert buaa_labels.label_fix(_buaa(tmp_path / "b", buaa_labels.CORRECTED)) == {}
    assert buaa_labels.CORRECTED["sad"] == 106 and buaa_labels.CORRECTED["surprise"] == 49
    with caplog.at_level("WARNING"):
        assert buaa_labels.label_fix(_buaa(tmp_path / "c", {"happy": 3, "sad": 2})) == {}
    assert "unchecked" in caplog.text


def test_buaa_halves_put_each_face_in_the_class_it_shows_and_remake_old_halves(tmp_path):
    data = tmp_path / "data"
    buaa = _buaa(data, buaa_labels.LAID_OUT)
    out = tmp_path / "out"
    (out / "splits" / "buaa_test" / "surprise").mkdir(parents=True)  # halves made before the correction
    (out / "splits" / "buaa_test" / "surprise" / "stale.bmp").write_bytes(b"x")
    halves = bench_real.buaa_halves(data, out)
    moved = sorted((buaa / "surprise").iterdir())[0].name  # a face realdata.sh filed under surprise
    where = [p.parent.name for h in halves.values() for p in h.glob(f"*/{moved}")]
    assert where == ["sad"]
    assert not list(out.glob("splits/*/*/stale.bmp"))
    counts = {}
    for h in halves.values():
        for d in h.iterdir():
            counts[d.name] = counts.get(d.name, 0) + len(list(d.iterdir()))
    assert counts == buaa_labels.CORRECTED
    assert json.loads((out / "splits" / "labels.json").read_text()) == buaa_labels.CORRECTION


def test_score_run_rescores_only_the_sets_whose_labels_changed(tmp_path, monkeypatch):
    import fer_edge.calibration.quantize as quantize
    import fer_edge.evaluation.evaluate as evaluate
    import fer_edge.export.onnx as onnx_export

    run = tmp_path / "run"
    run.mkdir()
    (run / "best.pt").write_bytes(b"weights")
    sets = {}
    for name in ("A", "B"):
        (tmp_path / name / "happy").mkdir(parents=True)
        (tmp_path / name / "happy" / "1.png").write_bytes(b"x")
        sets[name] = tmp_path / name
    calls = []

    class R:
        accuracy, macro_f1, n = 0.5, 0.4, 1

    def fake_export(ck, path):
        calls.append("export")
        Path(path).write_bytes(b"onnx")

    def fake_calibrate(fp32, folder, path, **kw):
        calls.append("calibrate")
        Path(path).write_bytes(b"int8")
        return type("C", (), {"num_images": 1, "excluded": []})()

    monkeypatch.setattr(onnx_export, "export_onnx", fake_export)
    monkeypatch.setattr(quantize, "calibrate", fake_calibrate)
    monkeypatch.setattr(evaluate, "evaluate", lambda path, folder, **kw: calls.append(Path(folder).name) or R())
    bench_real.score_run(run, tmp_path, 10, sets)
    assert calls == ["export", "calibrate", "A", "A", "B", "B"]  # FP32 and INT8 on each set
    calls.clear()
    assert set(bench_real.score_run(run, tmp_path, 10, sets)["sets"]) == {"A", "B"} and calls == []
    (tmp_path / "B" / "happy" / "1.png").rename(tmp_path / "B" / "sad.png")  # B's face changes class
    (tmp_path / "B" / "sad").mkdir()
    (tmp_path / "B" / "sad.png").rename(tmp_path / "B" / "sad" / "1.png")
    res = bench_real.score_run(run, tmp_path, 10, sets)
    assert calls == ["B", "B"] and set(res["sets"]) == {"A", "B"}


def test_a_fine_tuned_method_starts_from_its_seeds_source_only_run(tmp_path, monkeypatch):
    seen = []

    def fake_call(cmd, **kw):
        seen.append(cmd)
        run = Path(cmd[cmd.index("--out") + 1])
        (run / "summary.json").write_text(json.dumps({"method": cmd[cmd.index("--method") + 1]}))
        return 0

    monkeypatch.setattr(bench_real.subprocess, "call", fake_call)
    bench_real.train_run("pixel_da", 2, tmp_path, tmp_path, "real", [], finetune=True)
    bench_real.train_run("target_oracle", 2, tmp_path, tmp_path, "real", [], finetune=True)
    bench_real.train_run("dann", 2, tmp_path, tmp_path, "real", [], finetune=False)
    inits = [[a for a in c if a.startswith("train.init_from=")] for c in seen]
    start = f"train.init_from={tmp_path / 'source_only-s2' / 'best.pt'}"
    assert inits == [[start], [start], []]  # the oracle is a ceiling on top of source-only too


@pytest.fixture
def trainings(monkeypatch):
    """The training commands bench_real would run; each "finishes" at once with an empty summary."""
    seen = []

    def fake_call(cmd, **kw):
        seen.append(cmd)
        (Path(cmd[cmd.index("--out") + 1]) / "summary.json").write_text("{}")
        return 0

    monkeypatch.setattr(bench_real.subprocess, "call", fake_call)
    return seen


def test_the_oracle_learns_only_from_the_dev_half(tmp_path, trainings):
    """Trained on all of BUAA the oracle would be scored on its own training faces: it gets the dev half."""
    seen = trainings
    bench_real.train_run("target_oracle", 0, tmp_path / "out", tmp_path, "real", [], finetune=False)
    targets = [a for a in seen[0] if a.startswith("data.target=")]
    assert targets[-1] == f"data.target={tmp_path / 'out' / 'splits' / 'buaa_dev'}"  # the last --set wins
    assert not any(a.startswith("train.init_from=") for a in seen[0])  # no fine-tuning: from scratch


def test_train_time_of_a_run_resumed_by_an_older_trainer_sums_its_epochs(tmp_path):
    (tmp_path / "metrics.csv").write_text("epoch,epoch_seconds\n1,60.5\n2,70\n3,69.5\n")
    assert bench_real.train_seconds(tmp_path, {"train_seconds": 130.0}) == 200.0  # the last process saw 2 epochs
    assert bench_real.train_seconds(tmp_path, {"train_seconds": 230.0}) == 230.0  # startup and writing count too


def test_the_control_is_source_only_fine_tuned_like_the_methods_and_never_selected(tmp_path, trainings):
    """The control row isolates the target term: source-only, started from the seed's source-only model, for the
    fine-tuning epochs at the fine-tuning rate -- and the selector never ships it."""
    seen = trainings
    bench_real.train_run(real_page.CONTROL, 1, tmp_path, tmp_path, "real", ["train.finetune.epochs=4"], finetune=True)
    cmd = seen[0]
    assert cmd[cmd.index("--method") + 1] == "source_only"
    assert cmd[cmd.index("--out") + 1] == str(tmp_path / f"{real_page.CONTROL}-s1")
    assert f"train.init_from={tmp_path / 'source_only-s1' / 'best.pt'}" in cmd
    assert cmd.index("train.epochs=4") > cmd.index("train.finetune.epochs=4") and "train.lr=0.01" in cmd
    runs = {"source_only": {0: {"selector_scores": {"im": 0.2}}},
            real_page.CONTROL: {0: {"selector_scores": {"im": 0.9}}}}
    assert real_page.select_per_seed(runs, "im") == {0: "source_only"}


def test_page_pairs_the_selected_method_with_the_control(tmp_path):
    def ev(acc):
        return {"sets": {s: {"fp32": {"accuracy": acc, "macro_f1": acc}} for s in real_page.TESTS}}

    rows = {"source_only": {s: {"summary": {}, "eval": ev(0.40)} for s in (0, 1)},
            real_page.CONTROL: {s: {"summary": {"init_from": "x"}, "eval": ev(0.42 + 0.01 * s)} for s in (0, 1)},
            "dann": {s: {"summary": {"init_from": "x"}, "eval": ev(0.45)} for s in (0, 1)}}
    text = real_page.write_page(tmp_path / "p.md", rows, {0: "dann", 1: "dann"}, None, "cmd", "im")
    assert f"| {real_page.CONTROL} (control" in text and "| dann * |" in text
    line = next(ln for ln in text.splitlines() if "selected − control" in ln)
    assert "+2.5 pt" in line and "better on 2 of 2" in line
    # without a control run the row is left out, not shown as "not run yet"
    assert real_page.CONTROL not in real_page.write_page(tmp_path / "q.md", {"source_only": rows["source_only"]},
                                                         {0: "source_only"}, None, "cmd", "im")


def test_a_variant_row_trains_its_method_from_scratch_with_its_own_settings(tmp_path, trainings):
    """source_only_prior is source-only with train.target_prior: source -- a setting, not a fine-tuning -- and,
    being label-free, the selector may pick it."""
    seen = trainings
    bench_real.train_run("source_only_prior", 2, tmp_path, tmp_path, "real", [], finetune=True)
    cmd = seen[0]
    assert cmd[cmd.index("--method") + 1] == "source_only"
    assert cmd[-1] == "train.target_prior=source"
    assert not any(a.startswith("train.init_from=") for a in cmd)
    runs = {"source_only": {0: {"selector_scores": {"im": 0.2}}},
            "source_only_prior": {0: {"selector_scores": {"im": 0.9}}}}
    assert real_page.select_per_seed(runs, "im") == {0: "source_only_prior"}


def test_a_selection_level_with_source_only_is_not_called_a_loss():
    line = real_page.paired_line("source-only", [0, 1, 2], [0.5, 0.52, 0.51], [0.5, 0.52, 0.51], verdict=True)
    assert "+0.0 pt" in line and "hurt" not in line and "did not help reliably" in line
    assert "hurt" in real_page.paired_line("source-only", [0, 1, 2], [0.4, 0.41, 0.42], [0.5, 0.52, 0.51],
                                           verdict=True)


def test_a_variant_is_paired_with_the_method_it_varies():
    def ev(acc):
        return {"eval": {"sets": {real_page.QUOTED: {"fp32": {"accuracy": acc}}}}}

    rows = {"source_only": {s: ev(0.44 + 0.01 * s) for s in (0, 1, 2)},
            "source_only_prior": {s: ev(0.50 + 0.012 * s) for s in (0, 1, 2)}}
    (line,) = real_page.variant_lines(rows)
    assert line.startswith(f"{real_page.QUOTED} half, source_only_prior (train.target_prior=source) − source_only")
    assert "paired over seeds [0, 1, 2]: +6.2 pt" in line
    # self-training on top of the shift is paired with the shift alone, not with a plain self_train row
    rows["self_train_prior"] = {s: ev(0.52 + 0.012 * s) for s in (0, 1)}
    lines = real_page.variant_lines(rows)
    assert len(lines) == 2 and "− source_only_prior, paired over seeds [0, 1]: +2.0 pt" in lines[1]


def test_code_table_gives_each_codes_mean_valence_and_arousal(tmp_path):
    ann = tmp_path / "ann.csv"
    ann.write_text(",filename,expression,valence,arousal\n0,a.bmp,3.0,-0.5,-0.2\n1,b.bmp,3.0,-0.7,-0.4\n"
                   "2,c.bmp,5.0,0.2,0.8\n")
    rows = buaa_labels.code_table(ann).splitlines()
    assert rows[2] == "| 3 | surprise | 2 | -0.60 | -0.30 |"  # realdata.sh's name for code 3; sadness's quadrant
    assert rows[3] == "| 5 | disgust | 1 | +0.20 | +0.80 |"


def test_the_selected_models_mean_mixes_the_rows_each_seed_picked():
    def ev(buaa, fer, int8=True):
        sets = {real_page.QUOTED: {"fp32": {"accuracy": buaa}}, "FER2013 test": {"fp32": {"accuracy": fer}}}
        if int8:
            sets[real_page.QUOTED]["int8"] = {"accuracy": buaa + 0.01}
        return {"eval": {"sets": sets}}

    rows = {"a": {0: ev(0.50, 0.60), 1: ev(0.10, 0.10)}, "b": {0: ev(0.90, 0.90), 1: ev(0.40, 0.70, int8=False)}}
    (line,) = real_page.selected_means(rows, {0: "a", 1: "b"})
    assert "mean over 2 seeds" in line
    assert "BUAA NIR test 45.0 / —" in line  # seed 1's pick has no INT8 figure: no INT8 mean
    assert "FER2013 test 65.0 / —" in line and "CK+48" not in line
    (line,) = real_page.selected_means(rows, {0: "a", 1: "a"})
    assert "BUAA NIR test 30.0 / 31.0" in line
    assert real_page.selected_means(rows, {}) == []
