"""Label-free selectors against slow, obvious references, and toy cases each must rank correctly."""
from __future__ import annotations

import math

import numpy as np
import pytest

from fer_edge.runtime.metrics import accuracy, macro_f1
from fer_edge.train.selection import dev_score, im_score, select_epoch, select_method, select_run, snd_score


def _ref_entropy(p):
    return -sum(v * math.log(v + 1e-12) for v in p)


def _ref_im(probs):
    n, k = len(probs), len(probs[0])
    mean = [sum(probs[i][j] for i in range(n)) / n for j in range(k)]
    return _ref_entropy(mean) - sum(_ref_entropy(r) for r in probs) / n


def _ref_snd(probs, t=0.05):
    rows = [[v / math.sqrt(sum(u * u for u in r)) for v in r] for r in probs]
    total = 0.0
    for i, a in enumerate(rows):
        sims = [sum(x * y for x, y in zip(a, b)) / t for j, b in enumerate(rows) if j != i]
        m = max(sims)
        e = [math.exp(s - m) for s in sims]
        z = sum(e)
        total += _ref_entropy([v / z for v in e])
    return total / len(rows)


def _softmax(z):
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def test_im_matches_reference_and_prefers_confident_diverse():
    rng = np.random.default_rng(0)
    probs = _softmax(rng.normal(size=(20, 7)))
    assert im_score(probs) == pytest.approx(_ref_im(probs.tolist()), abs=1e-9)
    confident_diverse = _softmax(np.eye(7)[np.arange(70) % 7] * 8)
    collapsed = _softmax(np.eye(7)[np.zeros(70, int)] * 8)
    unsure = _softmax(rng.normal(scale=0.1, size=(70, 7)))
    assert im_score(confident_diverse) > im_score(unsure) > im_score(collapsed) - 1e-9
    assert im_score(confident_diverse) > im_score(collapsed)


def test_snd_matches_reference_and_prefers_dense_clusters():
    rng = np.random.default_rng(1)
    probs = _softmax(rng.normal(size=(15, 5)))
    assert snd_score(probs) == pytest.approx(_ref_snd(probs.tolist()), abs=1e-9)
    # predictions forming 3 tight clusters (each point has many close neighbours) vs scattered ones
    centres = _softmax(np.eye(5)[:3] * 6)
    clustered = np.repeat(centres, 20, 0) + rng.normal(scale=0.003, size=(60, 5))
    clustered = np.abs(clustered) / np.abs(clustered).sum(1, keepdims=True)
    scattered = _softmax(rng.normal(scale=3.0, size=(60, 5)))
    assert snd_score(clustered) > snd_score(scattered)


def _ref_dev(losses, w):
    n = len(w)
    wl = [a * b for a, b in zip(w, losses)]
    mw, mwl = sum(w) / n, sum(wl) / n
    cov = sum((a - mwl) * (b - mw) for a, b in zip(wl, w)) / (n - 1)
    var = sum((b - mw) ** 2 for b in w) / (n - 1)
    eta = -cov / var
    return mwl + eta * mw - eta


def test_dev_control_variate_matches_reference(monkeypatch):
    import fer_edge.train.selection as sel

    rng = np.random.default_rng(2)
    fs, ft = rng.normal(size=(30, 3)), rng.normal(loc=0.5, size=(40, 3))
    losses = rng.uniform(0.1, 2.0, 30)
    # recompute the density-ratio weights the way the module does, then the DEV formula by hand
    allf = np.vstack([fs, ft])
    x = (allf - allf.mean(0)) / (allf.std(0) + 1e-6)
    w_lr = sel._fit_logistic(x, np.r_[np.zeros(30), np.ones(40)])
    pt = 1 / (1 + np.exp(-(x[:30] @ w_lr[:-1] + w_lr[-1])))
    w = np.clip(30 / 40 * pt / (1 - pt), 0, 20)
    assert dev_score(losses, fs, ft) == pytest.approx(-_ref_dev(losses.tolist(), w.tolist()), rel=1e-6)


def test_dev_prefers_model_that_is_right_where_the_target_is():
    """Two models with the same source-val mean loss: the one that errs on target-like source faces
    (features near the target) must score worse."""
    rng = np.random.default_rng(3)
    fs = rng.normal(size=(200, 2))
    ft = rng.normal(loc=[1.5, 0.0], size=(200, 2))
    near_target = fs[:, 0] > 0.5
    bad_there = np.where(near_target, 2.0, 0.2)
    good_there = np.where(near_target, 0.2, 2.0)
    # equalise the plain means so only the importance weighting can tell them apart
    good_there *= bad_there.mean() / good_there.mean()
    assert dev_score(good_there, fs, ft) > dev_score(bad_there, fs, ft)


def test_select_epoch_and_run_never_look_at_target_test():
    hist = [{"epoch": 1, "score_im": 0.1, "score_snd": 3.0, "target_test_acc": 0.9},
            {"epoch": 2, "score_im": 0.5, "score_snd": 2.0, "target_test_acc": 0.1},
            {"epoch": 3, "score_im": float("nan"), "score_snd": 1.0, "target_test_acc": 0.99}]
    assert select_epoch(hist, "im") == 1
    assert select_epoch(hist, "snd") == 0
    assert select_epoch(hist, "last") == 2
    with pytest.raises(ValueError):
        select_epoch(hist, "target_test")
    runs = [{"method": "source_only", "selector_scores": {"im": 0.2}},
            {"method": "target_oracle", "selector_scores": {"im": 0.9}},
            {"method": "dann", "selector_scores": {"im": 0.4}}]
    assert select_run(runs, "im") == 2


def test_accuracy_and_macro_f1_reference():
    y = np.array([0, 0, 1, 1, 2])
    p = np.array([0, 1, 1, 1, 0])
    assert accuracy(y, p) == pytest.approx(0.6)
    f0 = 2 * 1 / (2 * 1 + 1 + 1)
    f1 = 2 * 2 / (2 * 2 + 1 + 0)
    f2 = 0.0
    assert macro_f1(y, p, 7) == pytest.approx((f0 + f1 + f2) / 3)


@pytest.mark.parametrize("selector", ["im", "snd", "dev", "source_val", "last"])
def test_select_run_never_returns_the_oracle(selector):
    """With the default methods list the oracle comes last; a selector without stored scores (``last``) used to fall
    back to the last run -- the oracle. Source-only is the fallback now, and the oracle is never a candidate."""
    runs = [{"method": "source_only", "selector_scores": {"im": 0.2}},
            {"method": "pixel_da", "selector_scores": {"im": 0.3}},
            {"method": "target_oracle", "selector_scores": {selector: 99.0}}]
    assert runs[select_run(runs, selector)]["method"] != "target_oracle"
    blank = [{"method": "pixel_da"}, {"method": "source_only"}, {"method": "target_oracle"}]
    assert select_run(blank, selector) == 1
    assert select_run([{"method": "target_oracle", "selector_scores": {selector: 1.0}}], selector) == -1


def test_epoch_selector_and_method_selector_are_separate_keys():
    from fer_edge.config import load_config
    from fer_edge.runtime.errors import ConfigError

    cfg = load_config("real")
    assert cfg.train.selector == "last" and cfg.train.method_selector == "im"
    with pytest.raises(ConfigError, match="method_selector"):
        load_config("ci", ["train.method_selector=last"])  # 'last' has no score to compare runs by


@pytest.mark.parametrize("selector", ["im", "snd", "dev", "source_val", "last"])
def test_select_method_the_verb_and_the_pipeline_share_never_returns_the_oracle(selector):
    summaries = {"source_only": {"selector_scores": {selector: 0.2}}, "pixel_da": {"selector_scores": {selector: 0.3}},
                 "target_oracle": {"selector_scores": {selector: 99.0}}}
    assert select_method(summaries, selector) == "pixel_da"
    assert select_method({"target_oracle": {"selector_scores": {selector: 1.0}}}, selector) is None
    assert select_method({}, selector) is None
