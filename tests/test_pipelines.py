"""Ordinary scikit-learn pipelines: a scaler in front of the VAE, cross-validated."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from skvae import VAETransformer
from skvae._data import _choose_likelihood as choose_likelihood

DATASETS = {"wine": load_wine, "breast_cancer": load_breast_cancer,
            "diabetes": load_diabetes, "digits": load_digits}


def small_vae(**params):
    defaults = dict(hidden_layer_sizes=(16,), max_iter=3, random_state=0, device="cpu")
    return VAETransformer(**{**defaults, **params})


@pytest.mark.slow
@pytest.mark.parametrize("scaler", [MinMaxScaler, StandardScaler])
@pytest.mark.parametrize("name", list(DATASETS))
def test_cross_validation_scores_are_finite_and_comparable_on_every_fold(name, scaler):
    X = DATASETS[name](return_X_y=True)[0]
    pipeline = make_pipeline(scaler(), small_vae())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # Held-out rows a little outside the training range may be clipped, with
        # a warning that says so; nothing may fail.
        warnings.filterwarnings("ignore", "X contains values outside", UserWarning)
        result = cross_validate(pipeline, X, cv=5, return_estimator=True,
                                error_score="raise")
    assert np.all(np.isfinite(result["test_score"])), result["test_score"]
    # Comparable: every fold modelled the data with the same likelihood.
    likelihoods = {fitted[-1].likelihood_ for fitted in result["estimator"]}
    assert len(likelihoods) == 1, likelihoods


def test_auto_is_not_flipped_by_rounding_at_the_bounds():
    X = np.random.RandomState(0).normal(size=(200, 5))
    scaled = MinMaxScaler().fit_transform(X)
    scaled[0, 0] = 1.0000000000000004  # as MinMaxScaler leaves it in some folds
    assert choose_likelihood(scaled) == choose_likelihood(np.clip(scaled, 0, 1))
    binary = (np.random.RandomState(1).uniform(size=(50, 64)) > 0.6).astype(float)
    binary[0, 0] = 1.0000000000000004
    binary[1, 1] = -1e-12
    assert choose_likelihood(binary) == "bernoulli"


def test_auto_gives_every_fold_of_zero_inflated_data_the_same_likelihood():
    # 30% zeros in [0, 1]: a rule on the share of values at the bounds flipped
    # between folds of these data.
    rng = np.random.RandomState(0)
    X = np.where(rng.rand(200, 10) < 0.3, 0.0, rng.uniform(0.01, 0.99, (200, 10)))
    choices = {choose_likelihood(X[rows]) for rows in np.array_split(rng.permutation(200), 5)}
    assert choices == {"gaussian"}


@pytest.mark.parametrize(
    "data, expected",
    [
        (np.random.RandomState(0).randint(0, 2, size=(50, 8)), "bernoulli"),  # binary
        (load_digits().data / 16.0, "gaussian"),  # grey levels: pass "bernoulli"
        (load_digits().data > 8, "bernoulli"),  # binarised images
        (MinMaxScaler().fit_transform(load_wine().data), "gaussian"),  # continuous
        (np.random.RandomState(0).uniform(size=(50, 8)), "gaussian"),
        (np.random.RandomState(0).normal(size=(50, 8)), "gaussian"),
    ],
    ids=["binary", "digits/16", "digits-binarised", "wine-minmax", "uniform", "normal"],
)
def test_auto_chooses_by_what_the_data_are(data, expected):
    assert choose_likelihood(np.asarray(data, dtype=float)) == expected


def test_bernoulli_scores_values_outside_the_unit_interval_as_the_bound_with_a_warning():
    X = load_digits().data / 16.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        vae = small_vae(likelihood="bernoulli").fit(X[:500])
    assert vae.likelihood_ == "bernoulli"
    outside = X[500:510].copy()
    outside[:, 3] = 1.5
    outside[:, 4] = -0.5
    with pytest.warns(UserWarning, match=r"outside \[0, 1\].*nearest of 0 and 1"):
        scores = vae.score_samples(outside)
    np.testing.assert_array_equal(scores, vae.score_samples(np.clip(outside, 0, 1)))
    with pytest.warns(UserWarning, match=r"outside \[0, 1\]"):
        codes = vae.transform(outside)
    np.testing.assert_array_equal(codes, vae.transform(np.clip(outside, 0, 1)))
    # Rounding errors at the bounds are not worth a warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vae.score_samples(np.clip(outside, 0, 1) * (1 + 1e-12))


def test_grid_search_by_likelihood_behind_a_scaler():
    X = load_wine(return_X_y=True)[0]
    search = GridSearchCV(make_pipeline(MinMaxScaler(), small_vae()),
                          {"vaetransformer__n_components": [1, 2]}, cv=3,
                          error_score="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))


def test_warnings_point_at_the_users_line_also_through_a_pipeline():
    X = np.random.RandomState(0).normal(size=(50, 3))
    with pytest.warns(ConvergenceWarning) as direct:
        small_vae(max_iter=1, learning_rate="constant").fit(X)
    with pytest.warns(ConvergenceWarning) as piped:
        make_pipeline(StandardScaler(), small_vae(max_iter=1, learning_rate="constant")).fit(X)
    assert direct[0].filename == piped[0].filename == __file__
