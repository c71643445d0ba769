"""``benchmarks/train_methods.py``: ablation variants are parsed strictly and become their own table rows."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "train_methods.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_train_methods", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_variant_spec_parses_name_method_and_overrides(bench):
    v = bench.parse_variants(["adversary_off=dann train.dann.lambda_max=0 train.dann.self_training=1"])
    assert v == {"adversary_off": ("dann", ["train.dann.lambda_max=0", "train.dann.self_training=1"])}
    assert bench.parse_variants([]) == {}


@pytest.mark.parametrize("spec", ["dann", "x=notamethod", "=dann", "dann=cal train.cal.cal_weight=1", "",
                                  "a,b=dann", "../x=dann", "x=dann data.synth.seed=1", "x=dann train.dann.lamda_max=1"])
def test_bad_variant_spec_is_refused_with_the_expected_form(bench, spec):
    with pytest.raises(SystemExit) as exc:
        bench.parse_variants([spec])
    assert "NAME=METHOD" in str(exc.value) or "lamda_max" in str(exc.value)


def _run(acc, seed=0):
    return {"seed": seed, "target_test_accuracy": acc, "oracle_selected_target_accuracy": acc,
            "target_test_macro_f1": acc, "source_test_accuracy": 0.8, "train_seconds": 60.0, "train_cpu_seconds": 60.0}


def test_table_gap_closed_and_verdict_per_row(bench):
    results = {"source_only": [_run(0.2, 0), _run(0.4, 1)], "target_oracle": [_run(0.6)],
               "dann": [_run(0.45, 0)], "worse": [_run(0.25, 0)]}
    rows = bench.table(results, "im")
    by_name = {r.split("|")[1].strip(): r for r in rows[2:]}
    assert "| 50 % | yes | — |" in by_name["dann"]  # one seed: no interval       # (0.45 - 0.3) / (0.6 - 0.3)
    assert "| -17 % | **no** | — |" in by_name["worse"]
    assert "(floor)" in by_name["source_only"] and "(ceiling" in by_name["target_oracle"]


def test_paired_delta_interval_by_seed(bench):
    base = [_run(0.30, 0), _run(0.40, 1), _run(0.50, 2)]
    # +10, +12, +8 points on the same seeds: mean +10, sd 2, t(2) = 4.303 -> half-width 4.97
    assert bench.paired_delta([_run(0.40, 0), _run(0.52, 1), _run(0.58, 2)], base) == "+10.0 [+5.0, +15.0]"
    # seeds are matched by value, not by position
    assert bench.paired_delta([_run(0.58, 2), _run(0.40, 0), _run(0.52, 1)], base) == "+10.0 [+5.0, +15.0]"
    assert bench.paired_delta([_run(0.4, 7)], base) == "—"


def test_recall_table_means_per_class_and_skips_old_runs(bench):
    def run(neutral, anger):
        return {"target_test_per_class_recall": {"neutral": neutral, "anger": anger}}

    results = {"source_only": [run(0.1, 0.8), run(0.3, None)], "dann": [run(0.5, 0.6)], "old": [{}]}
    rows = bench.recall_table(results, {"neutral": 0.34, "anger": 0.11})
    assert rows[0] == "| method | neutral | anger |" and "*34 %*" in rows[2]
    assert "| source_only (2 seeds) | 20 | 80 |" in rows  # an absent class (None) is left out of the mean
    assert "| dann (1 seed) | 50 | 60 |" in rows and not any(r.startswith("| old") for r in rows)
    assert bench.recall_table({"old": [{}]}, {}) == []


def test_pooled_draws_pair_on_draw_and_seed(bench):
    base = [_run(0.30, 0), _run(0.40, 1), dict(_run(0.10, 0), draw=1), dict(_run(0.20, 1), draw=1)]
    runs = [_run(0.35, 0), _run(0.45, 1), dict(_run(0.20, 0), draw=1), dict(_run(0.30, 1), draw=1)]
    # +5, +5 in draw 0 and +10, +10 in draw 1: mean +7.5 (pairing by seed alone would mix the draws)
    assert bench.paired_delta(runs, base).startswith("+7.5 [")


def test_dominant_class_correlation_names_the_class_and_skips_the_oracle(bench):
    def run(acc, neutral):
        return {"target_test_accuracy": acc, "target_test_per_class_recall": {"neutral": neutral, "anger": 0.5}}

    results = {"source_only": [run(0.2, 0.1), run(0.4, 0.5)], "dann": [run(0.3, 0.3)],
               "target_oracle": [run(0.9, 0.0)]}  # would break the perfect line if counted
    line = bench.dominant_class_correlation(results, {"neutral": 0.34, "anger": 0.11})
    assert "3 non-oracle runs" in line and "`neutral`" in line and "r = 1.00" in line
    assert bench.dominant_class_correlation(results, {}) == ""


def test_report_title_names_the_task_measured(bench):
    assert bench.report_title("synth:studio", "synth:kiosk") == "# Training benchmark: studio → kiosk (synthetic world)"
    assert bench.report_title("synth:studio", "/data/cam") == "# Training benchmark: studio → /data/cam"


def test_a_rerun_refreshes_the_tables_and_keeps_the_written_reading(bench, tmp_path):
    report = tmp_path / "adaptation-methods.md"
    assert bench.with_prose_kept(report, "# T\n\n| new |\n") == "# T\n\n| new |\n"  # no report yet
    report.write_text("# T\n\n| old |\n\n## What this shows\n\nreading\n")
    assert bench.with_prose_kept(report, "# T\n\n| new |\n") == "# T\n\n| new |\n\n## What this shows\n\nreading\n"
