"""VAEImputer: holes filled from the model's conditional, observed entries kept."""

import warnings

import numpy as np
import pytest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

import skvae
from skvae import VAEImputer

pd = pytest.importorskip("pandas")


def correlated(n=400, seed=0, missing=0.2):
    """Three columns driven by one factor, and a category it decides; MCAR holes."""
    rng = np.random.RandomState(seed)
    z = rng.normal(size=n)
    complete = pd.DataFrame({
        "a": z + 0.1 * rng.normal(size=n),
        "b": 2 * z + 0.1 * rng.normal(size=n),
        "c": -z + 0.1 * rng.normal(size=n),
        "sign": np.where(z > 0, "plus", "minus").astype(object),
    })
    holes = rng.rand(*complete.shape) < missing
    holes[holes.all(axis=1), 0] = False
    return complete, complete.mask(holes), holes


def small(**params):
    return VAEImputer(**{"hidden_layer_sizes": (32, 32), "max_iter": 150,
                         "random_state": 0, "device": "cpu", **params})


@pytest.fixture(scope="module")
def data():
    return correlated()


@pytest.fixture(scope="module")
def imputer(data):
    return small().fit(data[1])


def test_every_hole_is_filled_and_observed_entries_are_kept(imputer, data):
    _, X, holes = data
    filled = imputer.transform(X)
    assert not filled.isna().any().any()
    pd.testing.assert_frame_equal(filled.mask(holes), X.astype(filled.dtypes))
    assert set(filled["sign"]) == {"plus", "minus"}
    assert filled["sign"].dtype == X["sign"].dtype


def test_it_imputes_from_the_other_columns_better_than_their_means(imputer, data):
    complete, X, holes = data
    filled = imputer.transform(X)
    numeric = ["a", "b", "c"]
    mask = holes[:, :3]
    vae_error = np.abs(filled[numeric].to_numpy() - complete[numeric].to_numpy())[mask]
    means = SimpleImputer().fit_transform(X[numeric])
    mean_error = np.abs(means - complete[numeric].to_numpy())[mask]
    assert vae_error.mean() < 0.5 * mean_error.mean()
    accuracy = (filled["sign"] == complete["sign"])[holes[:, 3]].mean()
    assert accuracy > 0.8



@pytest.mark.slow
def test_the_defaults_impute_from_the_other_columns_better_than_their_means(data):
    # The defaults as a user meets them (issue 20 made them cheaper): only the seed set.
    complete, X, holes = data
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        filled = VAEImputer(random_state=0).fit_transform(X)
    numeric = ["a", "b", "c"]
    mask = holes[:, :3]
    vae_error = np.abs(filled[numeric].to_numpy() - complete[numeric].to_numpy())[mask]
    mean_error = np.abs(SimpleImputer().fit_transform(X[numeric])
                        - complete[numeric].to_numpy())[mask]
    assert vae_error.mean() < 0.5 * mean_error.mean()
    assert (filled["sign"] == complete["sign"])[holes[:, 3]].mean() > 0.8

def test_sample_posterior_draws_anew_at_each_call(imputer, data):
    _, X, holes = data
    imputer = small(sample_posterior=True).fit(X)
    first, second = imputer.transform(X), imputer.transform(X)
    observed = ~holes[:, 0]
    assert np.array_equal(first["a"][observed], second["a"][observed])
    assert not np.array_equal(first["a"][~observed], second["a"][~observed])
    # Draws scatter around the conditional mean, and the k-th call after fit is
    # reproducible.
    mean = imputer.transform(X)["a"][~observed].to_numpy()
    spread = np.std(first["a"][~observed].to_numpy() - mean)
    assert 0.01 < spread < 0.75 * X["a"].std()  # tighter than the column's own spread
    again = small(sample_posterior=True).fit(X)
    pd.testing.assert_frame_equal(again.transform(X), first)
    pd.testing.assert_frame_equal(again.transform(X), second)


def test_a_frame_keeps_its_index(data):
    _, X, _ = data
    shifted = X.set_axis(X.index + 1000)
    imputer = small(max_iter=2).fit(shifted)
    filled = imputer.transform(shifted)
    pd.testing.assert_index_equal(filled.index, shifted.index)
    observed = shifted["a"].notna()
    assert ((shifted["a"] - filled["a"])[observed] == 0).all()  # aligned, not shifted


def test_add_indicator_appends_the_columns_that_had_holes():
    complete, X, holes = correlated(n=200, missing=0.0)
    X = X.copy()
    X.loc[::5, "b"] = np.nan
    imputer = small(add_indicator=True, max_iter=5).fit(X)
    out = imputer.transform(X)
    assert list(out.columns) == ["a", "b", "c", "sign", "missingindicator_b"]
    np.testing.assert_array_equal(out["missingindicator_b"], X["b"].isna())
    assert list(imputer.get_feature_names_out()) == list(out.columns)


def test_a_placeholder_marks_holes_as_nan_does(data):
    _, X, _ = data
    numbers = X[["a", "b", "c"]].to_numpy()
    placeholder = np.where(np.isnan(numbers), -999.0, numbers)
    with_nan = small(max_iter=10).fit_transform(numbers)
    with_placeholder = small(max_iter=10, missing_values=-999.0).fit_transform(placeholder)
    np.testing.assert_array_equal(with_nan, with_placeholder)
    assert placeholder.min() == -999.0  # the input is not modified


def test_a_placeholder_is_not_a_category():
    rng = np.random.RandomState(0)
    table = pd.DataFrame({"a": rng.normal(size=60), "c": pd.Categorical(
        rng.choice(["?", "p", "q"], 60, p=[0.5, 0.25, 0.25]))})
    imputer = small(missing_values="?", max_iter=5).fit(table)
    assert imputer._model.schema.categories[1] == ["p", "q"]
    assert set(imputer.transform(table)["c"]) <= {"p", "q"}
    assert "?" in table["c"].cat.categories  # the input is not modified


def test_it_works_in_a_pipeline_before_a_classifier(data):
    complete, X, _ = data
    y = (complete["a"] > 0).to_numpy()
    numbers = X[["b", "c"]].to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning in an ordinary pipeline
        model = make_pipeline(small(max_iter=30), LogisticRegression()).fit(numbers, y)
    assert model.score(numbers, y) > 0.9


def test_a_saved_imputer_imputes_the_same(imputer, data, tmp_path):
    _, X, _ = data
    path = tmp_path / "imputer.skvae"
    skvae.save(imputer, path)
    pd.testing.assert_frame_equal(skvae.load(path).transform(X), imputer.transform(X))
