"""sample(n, given=...): draws of the other columns from the model's conditional."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from skvae import VAEOutlierDetector, VAETransformer


def fit_quietly(estimator, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X)


@pytest.fixture(scope="module")
def anticorrelated():
    """Two columns that are one another's negative, and a noise column."""
    rng = np.random.RandomState(0)
    z = rng.normal(size=(2000, 1))
    X = np.hstack([z, -z, rng.normal(size=(2000, 1))]) + 0.05 * rng.normal(size=(2000, 3))
    vae = VAETransformer(n_components=2, hidden_layer_sizes=(32,), batch_size=32,
                         max_iter=30, random_state=0, device="cpu")
    return X, fit_quietly(vae, X)


def test_given_entries_are_kept_and_the_others_drawn(anticorrelated):
    _, vae = anticorrelated
    draws = vae.sample(50, given=[[1.5, np.nan, np.nan]], random_state=0)
    assert draws.shape == (50, 3) and np.all(np.isfinite(draws))
    assert np.all(draws[:, 0] == 1.5)
    # Identical given rows still get independent draws.
    assert len(np.unique(draws[:, 1])) == 50
    # Seeded: reproducible, and another seed gives other draws.
    np.testing.assert_array_equal(
        draws, vae.sample(50, given=[[1.5, np.nan, np.nan]], random_state=0))
    assert not np.array_equal(
        draws, vae.sample(50, given=[[1.5, np.nan, np.nan]], random_state=1))


def test_one_given_row_per_sample_and_a_clear_error_otherwise(anticorrelated):
    X, vae = anticorrelated
    given = X[:6].copy()
    given[:, 1:] = np.nan
    draws = vae.sample(6, given=given, random_state=0)
    np.testing.assert_array_equal(draws[:, 0], X[:6, 0])
    with pytest.raises(ValueError, match="given has 6 rows, but n_samples=4"):
        vae.sample(4, given=given)
    with pytest.raises(ValueError, match="features"):
        vae.sample(4, given=[[1.0, np.nan]])
    complete = vae.sample(6, given=X[:6], random_state=0)
    np.testing.assert_array_equal(complete, X[:6])  # nothing missing: nothing drawn


@pytest.mark.slow
def test_draws_follow_the_conditional_not_the_marginal(anticorrelated):
    X, vae = anticorrelated
    for value in (1.5, -1.0):
        draws = vae.sample(400, given=[[value, np.nan, np.nan]], random_state=0)
        assert abs(draws[:, 1].mean() + value) < 0.5, (value, draws[:, 1].mean())
        # The noise column is independent of the given one: its marginal.
        assert abs(draws[:, 2].mean()) < 0.3
        means = vae.sample(50, given=[[value, np.nan, np.nan]], return_mean=True,
                           random_state=0)
        assert abs(means[:, 1].mean() + value) < 0.5


def test_given_frames_come_back_as_frames_with_their_categories():
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    group = rng.choice(["a", "b"], size=400)
    frame = pd.DataFrame({"group": pd.Categorical(group),
                          "x": np.where(group == "a", -2.0, 2.0) + 0.3 * rng.normal(size=400)})
    vae = fit_quietly(VAETransformer(hidden_layer_sizes=(16,), max_iter=5, random_state=0,
                                     device="cpu"), frame)
    given = pd.DataFrame({"group": pd.Categorical(["b"], categories=["a", "b"]),
                          "x": [np.nan]})
    draws = vae.sample(20, given=given, random_state=0)
    assert list(draws.columns) == ["group", "x"]
    assert draws["group"].dtype == frame["group"].dtype and set(draws["group"]) == {"b"}
    assert draws["x"].notna().all()


def test_the_detector_samples_given_columns_too():
    X = np.random.RandomState(0).normal(size=(200, 3))
    detector = VAEOutlierDetector(hidden_layer_sizes=(8,), max_iter=3, random_state=0,
                                  device="cpu").fit(X)
    draws = detector.sample(5, given=[[0.5, np.nan, np.nan]], random_state=0)
    assert np.all(draws[:, 0] == 0.5) and np.all(np.isfinite(draws))


@pytest.mark.slow
def test_given_a_category_the_draws_are_the_models_own_samples_of_it():
    # Three groups far apart. Given only the group, the encoder reads a row of
    # average values elsewhere, and resampling its posterior's draws alone
    # pulled the draws of the smallest group 1.2 standard deviations towards
    # the middle; with half of the draws from the prior they are the model's
    # own samples of that group (its unconditional samples filtered to it).
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    group = rng.choice(["a", "b", "c"], size=600, p=[0.45, 0.2, 0.35])
    centres = np.array([[0, 0, 0, 0], [3, -1, 1, 0.5], [1, 3, -2, 2.5]])
    size = rng.normal(size=(600, 1))
    values = (centres[np.searchsorted(["a", "b", "c"], group)]
              + 0.6 * size * [1, 0.8, 0.5, 0.9] + 0.4 * rng.normal(size=(600, 4)))
    frame = pd.DataFrame(values, columns=list("wxyz"))
    frame.insert(0, "group", group)
    vae = fit_quietly(VAETransformer(random_state=0), frame)
    free = vae.sample(20000, random_state=0)
    for name in "abc":
        given = pd.DataFrame({"group": [name], **{c: [np.nan] for c in "wxyz"}})
        draws = vae.sample(2000, given=given, random_state=0)
        own = free[free["group"] == name][list("wxyz")]
        off = (draws[list("wxyz")].mean() - own.mean()).abs() / own.std()
        assert off.max() < 0.15, (name, off.to_dict())
