"""Metrics against hand-computed cases and a slow, obvious reference written with loops."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fer_edge.runtime import metrics

LABELS = ["neutral", "happiness", "sadness"]


def reference(y_true, y_pred, k):
    """The textbook definitions, one sample and one class at a time."""
    cm = [[0] * k for _ in range(k)]
    for t, p in zip(y_true, y_pred):
        cm[t][p] += 1
    out = []
    for c in range(k):
        tp = cm[c][c]
        pred_c = sum(cm[r][c] for r in range(k))
        true_c = sum(cm[c])
        prec = tp / pred_c if pred_c else 0.0
        rec = tp / true_c if true_c else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        out.append((prec, rec, f1, true_c, pred_c))
    present = [o[2] for o in out if o[3] + o[4] > 0]
    acc = sum(t == p for t, p in zip(y_true, y_pred)) / len(y_true)
    return cm, out, sum(present) / len(present), acc


def test_hand_computed_case():
    # truth: 0 0 1 1 2 2 ; pred: 0 1 1 1 2 0
    y_true, y_pred = [0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0]
    cm = metrics.confusion_matrix(y_true, y_pred, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert metrics.accuracy(y_true, y_pred) == pytest.approx(4 / 6)
    s = metrics.per_class_scores(cm)
    # class 0: P = 1/2, R = 1/2; class 1: P = 2/3, R = 1; class 2: P = 1, R = 1/2
    assert [round(c.precision, 6) for c in s] == [0.5, round(2 / 3, 6), 1.0]
    assert [c.recall for c in s] == [0.5, 1.0, 0.5]
    f1 = [0.5, 0.8, 2 / 3]
    assert [c.f1 for c in s] == pytest.approx(f1)
    assert metrics.macro_f1_of(cm) == pytest.approx(sum(f1) / 3)
    assert [c.support for c in s] == [2, 2, 2]


def test_absent_class_is_not_averaged_but_a_wrong_prediction_of_it_is():
    cm = metrics.confusion_matrix([0, 1], [0, 1], 3)          # class 2 absent and never predicted
    assert metrics.macro_f1_of(cm) == pytest.approx(1.0)
    cm = metrics.confusion_matrix([0, 1], [0, 2], 3)          # class 2 predicted although absent
    assert metrics.macro_f1_of(cm) == pytest.approx((1 + 0 + 0) / 3)


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 5).flatmap(lambda k: st.tuples(
    st.just(k), st.lists(st.tuples(st.integers(0, k - 1), st.integers(0, k - 1)), min_size=1, max_size=40))))
def test_matches_slow_reference(case):
    k, pairs = case
    y_true, y_pred = [p[0] for p in pairs], [p[1] for p in pairs]
    ref_cm, ref_scores, ref_macro, ref_acc = reference(y_true, y_pred, k)
    cm = metrics.confusion_matrix(y_true, y_pred, k)
    assert cm.tolist() == ref_cm
    for got, want in zip(metrics.per_class_scores(cm), ref_scores):
        assert (got.precision, got.recall, got.f1, got.support) == pytest.approx(want[:4])
    assert metrics.macro_f1_of(cm) == pytest.approx(ref_macro)
    assert metrics.accuracy(y_true, y_pred) == pytest.approx(ref_acc)


def test_agreement():
    assert metrics.agreement([0, 1, 2, 2], [0, 1, 1, 2]) == 0.75
    with pytest.raises(ValueError):
        metrics.agreement([0, 1], [0])


def test_intensity_breakdown_weak_vs_strong():
    # neutral (0) is excluded; unknown intensity (nan) is excluded
    y_true = [0, 1, 1, 2, 2, 1, 2]
    y_pred = [0, 1, 0, 2, 0, 1, 2]
    inten = [0.0, 0.2, 0.3, 0.9, 0.6, 0.5, float("nan")]
    out = metrics.intensity_breakdown(y_true, y_pred, inten, LABELS, threshold=0.5)
    # weak: samples 1 (ok), 2 (→neutral); strong: 3 (ok), 4 (→neutral), 5 (0.5 counts as strong, ok)
    assert out["weak"]["n"] == 2 and out["weak"]["accuracy"] == pytest.approx(0.5)
    assert out["weak"]["as_neutral"] == pytest.approx(0.5)
    assert out["strong"]["n"] == 3 and out["strong"]["accuracy"] == pytest.approx(2 / 3)
    assert out["strong"]["as_neutral"] == pytest.approx(1 / 3)
    assert out["excluded"] == ["neutral"]
    assert metrics.intensity_breakdown([1, 2], [1, 2], [math.nan, math.nan], LABELS) is None


def test_report_keys_and_validation():
    rep = metrics.classification_report([0, 1, 2], [0, 1, 1], LABELS, intensity=[0.0, 0.8, 0.1])
    assert {"n", "accuracy", "macro_f1", "per_class", "confusion", "labels", "intensity"} <= set(rep)
    assert set(rep["per_class"]) == set(LABELS)
    assert rep["per_class"]["sadness"]["support"] == 1
    with pytest.raises(ValueError):
        metrics.confusion_matrix([0, 3], [0, 1], 3)
    with pytest.raises(ValueError):
        metrics.confusion_matrix(np.array([0.5, 1.0]), [0, 1], 3)


def test_label_level_macro_f1_matches_the_confusion_matrix_one_and_ignores_unlabelled_faces():
    y, p = [0, 0, 1, 1, 2, 2, -1], [0, 1, 1, 1, 2, 0, 2]
    cm = metrics.confusion_matrix(y[:-1], p[:-1], 3)
    assert metrics.macro_f1(y, p) == pytest.approx(metrics.macro_f1_of(cm))
    assert metrics.macro_f1(y, p, num_classes=7) == pytest.approx(metrics.macro_f1_of(cm))  # absent classes: no say
    assert metrics.accuracy(y, p) == pytest.approx(4 / 6)  # the unlabelled face counts for neither side
    assert math.isnan(metrics.accuracy([-1], [0])) and math.isnan(metrics.macro_f1([], []))


def test_scores_are_fractions_and_percent_is_for_printing():
    y = np.array([0, 1, 2, 2])
    probs = np.eye(3)[[0, 1, 2, 0]]
    s = metrics.score(probs, y, reference=np.eye(3)[y])
    assert (s.n, s.accuracy, s.agreement) == (4, 0.75, 0.75) and 0.0 <= s.macro_f1 <= 1.0
    assert metrics.percent(0.75) == 75.0 and metrics.percent(None) is None


def test_paired_interval_uses_the_t_quantile_of_its_pair_count():
    from fer_edge.runtime.metrics import T975, paired_interval, t975

    # +10, +12, +8 on the same seeds: mean +10, sd 2, t(2) = 4.303 -> half-width 4.97
    pr = paired_interval([40.0, 52.0, 58.0], [30.0, 40.0, 50.0])
    assert pr["mean"] == pytest.approx(10.0) and pr["high"] - pr["mean"] == pytest.approx(4.303 * 2 / 3 ** 0.5)
    assert pr["n"] == 3 and pr["wins"] == 3
    assert paired_interval([1.0], [0.0]) is None
    assert t975(11) == T975[10] and t975(40) == 1.96
