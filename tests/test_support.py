"""Samples inside each column's support: the observed range, whole numbers rounded."""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from skvae import ModelFileError, VAEOutlierDetector, VAETransformer, load, save
from skvae._support import ColumnSupport

from _model_files import read_model_file, write_model_file


def test_fit_records_range_and_integrality_of_gaussian_columns():
    X = np.array([[1.0, 0.5, 0.0, 2.0], [3.0, np.nan, 1.0, 0.0], [2.0, -1.5, 1.0, np.nan]])
    support = ColumnSupport.fit(X, ["gaussian", "gaussian", "bernoulli", "categorical"])
    np.testing.assert_array_equal(support.low, [1.0, -1.5, np.nan, np.nan])
    np.testing.assert_array_equal(support.high, [3.0, 0.5, np.nan, np.nan])
    np.testing.assert_array_equal(support.integer, [True, False, False, False])


def test_a_column_never_observed_has_no_range():
    support = ColumnSupport.fit(np.array([[np.nan], [np.nan]]), ["gaussian"])
    assert np.isnan(support.low[0]) and not support.integer[0]
    np.testing.assert_array_equal(support.apply(np.array([[7.3]])), [[7.3]])


def test_apply_clips_and_rounds_and_keeps_holes():
    support = ColumnSupport(np.array([2007.0, 32.1, np.nan]), np.array([2009.0, 59.6, np.nan]),
                            np.array([True, False, False]))
    codes = np.array([[2005.6, 24.0, 5.0], [2008.4, 70.0, -3.0], [np.nan, 40.123, 1.0]])
    np.testing.assert_array_equal(support.apply(codes),
                                  [[2007.0, 32.1, 5.0], [2008.0, 59.6, -3.0],
                                   [np.nan, 40.123, 1.0]])


def test_state_round_trip_and_refusals():
    support = ColumnSupport.fit(np.array([[1.0, 0.5], [3.0, 2.5]]), ["gaussian", "bernoulli"])
    state = json.loads(json.dumps(support.get_state()))
    assert ColumnSupport.from_state(state, ["gaussian", "bernoulli"]) == support
    for bad in ({**state, "low": [5.0, None]}, {**state, "high": [3.0, 1.0]},
                {**state, "integer": [True, True]}, {**state, "low": [1.0]},
                {"low": state["low"]}):
        with pytest.raises(ValueError, match="column support"):
            ColumnSupport.from_state(bad, ["gaussian", "bernoulli"])


def fit(X, estimator=VAETransformer, **params):
    defaults = dict(hidden_layer_sizes=(16,), max_iter=10, random_state=0, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator(**{**defaults, **params}).fit(X)


@pytest.fixture(scope="module")
def X():
    rng = np.random.RandomState(0)
    return np.c_[rng.randint(2007, 2010, 300).astype(float),   # a year, 3 values
                 rng.uniform(30, 60, 300).round(1),              # a length
                 rng.exponential(size=300)]                      # skewed, positive


@pytest.mark.parametrize("estimator", [VAETransformer, VAEOutlierDetector])
@pytest.mark.parametrize("return_mean", [False, True])
def test_samples_stay_in_the_observed_range(X, estimator, return_mean):
    vae = fit(X, estimator)
    samples = vae.sample(2000, random_state=0, return_mean=return_mean)
    assert np.all(samples >= X.min(0)) and np.all(samples <= X.max(0))
    np.testing.assert_array_equal(samples[:, 0], np.round(samples[:, 0]))
    assert not np.array_equal(samples[:, 1], np.round(samples[:, 1]))


def test_without_the_support_samples_go_outside(X, monkeypatch):
    # What the support prevents: a Gaussian decoder's draws beyond the data.
    vae = fit(X)
    monkeypatch.setattr(vae._model.data_space, "support", None)
    samples = vae.sample(2000, random_state=0)
    assert np.any(samples < X.min(0)) or np.any(samples > X.max(0))


def test_samples_given_some_columns_stay_in_range(X):
    vae = fit(X)
    given = np.array([[2008.0, np.nan, np.nan]])
    samples = vae.sample(500, given=given, random_state=0)
    assert np.all(samples[:, 0] == 2008.0)
    assert np.all(samples[:, 1:] >= X[:, 1:].min(0)) and np.all(samples[:, 1:] <= X[:, 1:].max(0))


def test_frames_come_back_in_range():
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    frame = pd.DataFrame({"year": rng.randint(2007, 2010, 200),
                          "mass": np.where(rng.uniform(size=200) < 0.05, np.nan,
                                           rng.randint(2700, 6300, 200)).astype(float),
                          "island": rng.choice(["a", "b"], 200)})
    samples = fit(frame).sample(1000, random_state=0)
    assert samples["year"].between(2007, 2009).all()
    assert samples["mass"].between(frame["mass"].min(), frame["mass"].max()).all()
    assert (samples["mass"] == samples["mass"].round()).all()


def test_the_support_is_saved(X, tmp_path):
    vae = fit(X)
    save(vae, tmp_path / "m.skvae")
    loaded = load(tmp_path / "m.skvae")
    assert loaded._model.data_space.support == vae._model.data_space.support
    np.testing.assert_array_equal(loaded.sample(50, random_state=1), vae.sample(50, random_state=1))


def test_a_file_with_a_bad_support_is_refused(X, tmp_path):
    save(fit(X), tmp_path / "m.skvae")
    content, weights = read_model_file(tmp_path / "m.skvae")
    support = content["fitted"]["data_space"]["support"]
    support["low"], support["high"] = support["high"], support["low"]
    write_model_file(tmp_path / "bad.skvae", content, weights)
    with pytest.raises(ModelFileError, match="column support is inconsistent"):
        load(tmp_path / "bad.skvae")


OLD_FILE = Path(__file__).parent / "data" / "transformer_before_sampling_prior.skvae"


def test_a_file_without_the_support_samples_as_before():
    old = np.load(OLD_FILE.with_suffix(".npz"))
    loaded = load(OLD_FILE)
    assert loaded._model.data_space.support is None
    # Within float32 rounding: recorded on another CPU, see test_priors.py.
    np.testing.assert_allclose(loaded.sample(6, random_state=1), old["sample"], rtol=1e-5,
                               atol=1e-6)
