"""Label-shift estimators (train/label_shift.py) on cases whose answer is known."""
import numpy as np
import pytest

from fer_edge.train.label_shift import bbse_prior, em_prior, prior_adjustment


def _shifted_sample(pi_t, n, rng, acc=0.8):
    """Labels drawn from ``pi_t`` and a classifier that is right with probability ``acc`` (errors uniform),
    whose posteriors are exactly calibrated for a *uniform* source prior."""
    k = len(pi_t)
    y = rng.choice(k, size=n, p=pi_t)
    lik = np.full((k, k), (1 - acc) / (k - 1))  # lik[y, j] = P(pred j | y), i.e. p(x|y) for a discrete "x"
    np.fill_diagonal(lik, acc)
    pred = np.array([rng.choice(k, p=lik[c]) for c in y])
    post = lik[:, pred].T  # p(y | pred) under a uniform prior ∝ P(pred | y)
    post = post / post.sum(1, keepdims=True)
    return y, pred, post, lik


def test_em_and_bbse_recover_a_pure_label_shift():
    rng = np.random.default_rng(0)
    pi_t = np.array([0.5, 0.2, 0.2, 0.1])
    _, pred, post, lik = _shifted_sample(pi_t, 20000, rng)
    pi_s = np.full(4, 0.25)
    assert np.abs(em_prior(post, pi_s) - pi_t).max() < 0.03
    # held-out source: uniform labels, same classifier
    ys = rng.choice(4, size=20000)
    ps = np.array([rng.choice(4, p=lik[c]) for c in ys])
    est = bbse_prior(ps, ys, pred, 4)
    assert np.abs(est - pi_t).max() < 0.03
    assert est.sum() == pytest.approx(1.0)


def test_no_shift_gives_back_the_source_prior():
    rng = np.random.default_rng(1)
    _, _, post, _ = _shifted_sample(np.full(3, 1 / 3), 6000, rng)
    assert np.abs(em_prior(post, np.full(3, 1 / 3)) - 1 / 3).max() < 0.03


def test_prior_adjustment_is_the_log_ratio_and_moves_a_decision():
    adj = prior_adjustment([0.5, 0.25, 0.25], [1 / 3, 1 / 3, 1 / 3])
    assert adj == pytest.approx(np.log([1.5, 0.75, 0.75]))
    logits = np.array([0.0, 0.3, 0.0])
    assert logits.argmax() == 1 and (logits + adj).argmax() == 0


@pytest.mark.parametrize("bad", [[0.5, 0.5], [0.5, -0.1, 0.6], [np.nan, 0.5, 0.5]])
def test_bad_priors_are_refused_with_the_argument_named(bad):
    with pytest.raises(ValueError, match="source_prior"):
        em_prior(np.full((2, 3), 1 / 3), bad)


def test_bbse_refuses_out_of_range_classes():
    with pytest.raises(ValueError, match="target_pred"):
        bbse_prior([0, 1], [0, 1], [0, 5], 3)
