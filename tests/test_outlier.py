"""VAEOutlierDetector's behaviour: sign conventions, thresholds, determinism, errors."""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from skvae import VAEOutlierDetector

ANOMALY_SCORES = ["log_likelihood", "reconstruction", "latent"]


def small_detector(**params):
    defaults = dict(
        hidden_layer_sizes=(16,), n_components=2, batch_size=32, max_iter=20, random_state=0,
        device="cpu",
    )
    return VAEOutlierDetector(**{**defaults, **params})


def fit_quietly(estimator, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X)


@pytest.fixture(scope="module")
def planted():
    """Correlated inliers near a 2-D plane in 6-D, and 10 rows off it."""
    rng = np.random.RandomState(0)
    latent = rng.normal(size=(300, 2))
    inliers = latent @ rng.normal(size=(2, 6)) + 0.05 * rng.normal(size=(300, 6))
    outliers = rng.uniform(-4, 4, size=(10, 6))
    X = np.vstack([inliers, outliers])
    y = np.r_[np.zeros(300), np.ones(10)]
    return X, y


@pytest.fixture(scope="module")
def fitted(planted):
    return fit_quietly(small_detector(max_iter=60), planted[0])


def test_sign_conventions(fitted, planted):
    X, _ = planted
    scores = fitted.score_samples(X)
    decision = fitted.decision_function(X)
    labels = fitted.predict(X)
    np.testing.assert_array_equal(decision, scores - fitted.offset_)
    np.testing.assert_array_equal(labels, np.where(decision < 0, -1, 1))
    assert set(np.unique(labels)) <= {-1, 1}
    assert scores.dtype == np.float64 and scores.shape == (X.shape[0],)


@pytest.mark.parametrize("anomaly_score", ANOMALY_SCORES)
def test_detects_planted_outliers(planted, anomaly_score):
    X, y = planted
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "anomaly_score='latent'", UserWarning)
        detector = fit_quietly(small_detector(max_iter=60, anomaly_score=anomaly_score), X)
    scores = detector.score_samples(X)
    if anomaly_score == "latent":
        # The latent term sees only how atypical a row's code is: rows far out
        # along the data's own directions, not rows off the data's plane.
        far = 10 * X[:10]
        assert scores[y == 0].min() > detector.score_samples(far).max()
    else:
        assert roc_auc_score(y, -scores) > 0.95


def test_default_auto_flags_planted_outliers(fitted, planted):
    X, y = planted
    flagged = fitted.predict(X) == -1
    # Tukey's fence flags the planted outliers and few inliers.
    assert flagged[y == 1].mean() >= 0.7
    assert flagged[y == 0].mean() <= 0.05


@pytest.mark.parametrize("contamination", [0.02, 0.1, 0.3, 0.5])
def test_contamination_sets_fraction_flagged_on_training_data(planted, contamination):
    X, _ = planted
    detector = fit_quietly(small_detector(max_iter=5, contamination=contamination), X)
    fraction = np.mean(detector.predict(X) == -1)
    assert abs(fraction - contamination) <= 1 / X.shape[0] + 1e-12


def test_fit_predict_matches_fit_then_predict(planted):
    X, _ = planted
    a = fit_quietly(small_detector(max_iter=5), X).predict(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        b = small_detector(max_iter=5).fit_predict(X)
    np.testing.assert_array_equal(a, b)


@pytest.fixture(scope="module")
def fitted_per_score(planted):
    """One detector fitted with each anomaly_score: scoring follows the fitted score."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "anomaly_score='latent'", UserWarning)
        return {score: fit_quietly(small_detector(max_iter=10, anomaly_score=score),
                                   planted[0])
                for score in ANOMALY_SCORES}


@pytest.mark.parametrize("anomaly_score", ANOMALY_SCORES)
def test_scores_deterministic_and_batch_invariant(fitted_per_score, planted, anomaly_score):
    X, _ = planted
    detector = pickle.loads(pickle.dumps(fitted_per_score[anomaly_score]))
    full = detector.score_samples(X)
    # The score named, not the log-likelihood three times over: each kind differs.
    for other, other_detector in fitted_per_score.items():
        if other != anomaly_score:
            assert not np.allclose(full, other_detector.score_samples(X)), other
    np.testing.assert_array_equal(full, detector.score_samples(X))
    singles = np.concatenate([detector.score_samples(X[i : i + 1]) for i in range(0, 310, 31)])
    np.testing.assert_array_equal(singles, full[::31])
    order = np.random.RandomState(1).permutation(X.shape[0])
    np.testing.assert_array_equal(detector.score_samples(X[order]), full[order])
    big = np.vstack([X] * 3)  # more rows than one inference chunk
    np.testing.assert_array_equal(detector.score_samples(big)[-X.shape[0] :], full)


def test_same_random_state_gives_identical_scores(planted):
    X, _ = planted
    a = fit_quietly(small_detector(max_iter=5), X).score_samples(X)
    b = fit_quietly(small_detector(max_iter=5), X).score_samples(X)
    np.testing.assert_array_equal(a, b)


def test_pickle_round_trip_is_exact(fitted, planted):
    X, _ = planted
    restored = pickle.loads(pickle.dumps(fitted))
    assert restored.offset_ == fitted.offset_
    np.testing.assert_array_equal(restored.decision_function(X), fitted.decision_function(X))


def test_pipeline_with_minmax_scaler_scores_rows_outside_training_range(planted):
    X, _ = planted
    inliers = X[:300]
    pipe = make_pipeline(MinMaxScaler(), small_detector(max_iter=30))
    labels = fit_quietly(pipe, inliers).predict(inliers)
    assert set(np.unique(labels)) <= {-1, 1}
    # After MinMaxScaler, these rows fall outside [0, 1] on every feature.
    far = inliers[:5] + 3 * (inliers.max(axis=0) - inliers.min(axis=0))
    far_scores = pipe.score_samples(far)
    assert np.all(np.isfinite(far_scores))
    assert far_scores.max() < pipe.score_samples(inliers).min()
    np.testing.assert_array_equal(pipe.predict(far), -1)


def test_bernoulli_refuses_rows_outside_unit_interval():
    rng = np.random.RandomState(0)
    X = rng.uniform(size=(100, 4))
    detector = fit_quietly(small_detector(likelihood="bernoulli", max_iter=5), X)
    for row in ([[0.5, 1.5, 0.5, 0.5]], [[-0.1, 0.5, 0.5, 0.5]]):
        for method in (detector.score_samples, detector.decision_function, detector.predict):
            with pytest.raises(ValueError, match=r"outside \[0, 1\].*likelihood='gaussian'"):
                method(np.vstack([X[:3], row]))


def test_float32_input_scores_like_float64(fitted, planted):
    X, _ = planted
    scores = fitted.score_samples(X.astype(np.float32))
    assert scores.dtype == np.float64
    # Rounding a row to float32 changes its content, so it gets other posterior
    # draws: the scores agree up to the Monte-Carlo error of each row.
    expected = fitted.score_samples(X)
    spread = np.std([fitted.score_samples(X, random_state=s) for s in range(8)], axis=0)
    assert np.median(np.abs(scores - expected)) < 3 * np.median(spread)
    assert abs(scores.mean() - expected.mean()) < 0.05


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(contamination=0.0), "contamination"),
        (dict(contamination=0.6), "contamination"),
        (dict(contamination="high"), "contamination"),
        (dict(anomaly_score="distance"), "anomaly_score"),
    ],
)
def test_bad_parameters_raise(planted, params, match):
    with pytest.raises(ValueError, match=match):
        small_detector(**params).fit(planted[0])


def test_unfitted_and_wrong_width_raise(fitted, planted):
    X, _ = planted
    with pytest.raises(NotFittedError):
        small_detector().predict(X)
    with pytest.raises(ValueError, match="features"):
        fitted.predict(X[:, :3])
    # A row with every entry missing is allowed; the detector scores it as a
    # typical completed row, finite.
    assert np.all(np.isfinite(fitted.score_samples(np.full((2, 6), np.nan))))


def test_the_latent_score_warns_that_it_often_fails(planted):
    X, y = planted
    with pytest.warns(UserWarning, match="anomaly_score='latent'.*most normal rows") as info:
        fit_quietly(small_detector(max_iter=2, anomaly_score="latent"), X)
    assert info[0].filename == __file__  # the user's line, not skvae's
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the default score does not warn
        small_detector(max_iter=200).fit(X)


def test_auto_threshold_is_tukeys_far_out_fence(fitted, planted):
    X, _ = planted
    q1, q3 = np.percentile(fitted.score_samples(X), [25, 75])
    assert fitted.offset_ == pytest.approx(q1 - 3.0 * (q3 - q1), rel=1e-12)
