"""VAETransformer(numeric_transform=...): quantile maps of the real-valued columns."""

import copy
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import ks_2samp
from sklearn.exceptions import ConvergenceWarning

import skvae
from skvae import VAETransformer
from skvae._persistence import ModelFileError, load, save

from _model_files import read_model_file, write_model_file

pd = pytest.importorskip("pandas")


def fit(X, **params):
    params = {"n_components": 2, "hidden_layer_sizes": (32,), "max_iter": 80,
              "random_state": 0, **params}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return VAETransformer(**params).fit(X)


def table(n=400, seed=0):
    """A skewed price recorded to cents, a count piled up at zero, a weight
    recorded to one decimal (each value shared by many rows), a category."""
    rng = np.random.RandomState(seed)
    colour = rng.choice(["red", "green", "blue"], size=n)
    return pd.DataFrame({
        "price": np.round(rng.lognormal(3.0 + (colour == "red"), 0.8), 2),
        "count": rng.poisson(0.7, size=n),
        "weight": np.round(rng.lognormal(1.0, 0.3, size=n), 1),
        "colour": colour,
    })


@pytest.fixture(scope="module")
def both():
    X = table()
    return X, fit(X, numeric_transform="none"), fit(X)


def test_auto_maps_a_tables_numeric_columns(both):
    _, none, auto = both
    assert none._model.data_space.maps is None
    assert auto._model.data_space.maps.columns == (0, 1, 2)
    numbers = table()[["price", "count", "weight"]].to_numpy(float)
    assert fit(numbers, max_iter=2)._model.data_space.maps is None
    assert fit(numbers, max_iter=2, numeric_transform="quantile")._model.data_space.maps


def test_samples_have_the_columns_shape_and_repeat_its_values(both):
    X, none, auto = both
    real = table(2000, seed=1)
    for vae, ks_bound in ((auto, 0.1), (none, None)):
        samples = vae.sample(2000, random_state=0)
        ks = ks_2samp(samples["price"], real["price"]).statistic
        if ks_bound is not None:
            assert ks < ks_bound
        else:
            assert ks > 0.1  # a bell: the skew is lost
    samples = auto.sample(2000, random_state=0)
    # Weights come back as weights the data hold (as a QuantileTransformer's
    # inverse gives them: a draw near a repeated value's image is that value).
    assert np.isin(samples["weight"], X["weight"]).mean() > 0.8
    unmapped = none.sample(2000, random_state=0)
    assert np.isin(unmapped["weight"], X["weight"]).mean() < 0.1


def test_the_maps_raise_the_held_out_likelihood_of_skewed_columns(both):
    _, none, auto = both
    held_out = table(400, seed=2)
    assert auto.score(held_out) > none.score(held_out) + 0.1


def test_the_score_is_a_density_of_the_values_as_passed():
    # One column: exp(score_samples) over a fine grid integrates to about 1
    # (the importance-weighted bound is a little below the density), which
    # holds only if the maps' log-slopes are in the likelihood.
    rng = np.random.RandomState(0)
    # Values in the hundreds: without the log-slopes the integral would be about
    # the values' spread, about 60.
    X = 100.0 * rng.lognormal(0.0, 0.6, size=(500, 1))
    vae = fit(X, n_components=1, hidden_layer_sizes=(16,), numeric_transform="quantile",
              max_iter=60, n_importance_samples=200)
    grid = np.linspace(-100.0, X.max() + 400.0, 20001)[:, None]
    density = np.exp(vae.score_samples(grid))
    total = np.trapezoid(density, grid[:, 0])
    assert 0.9 < total < 1.05


def test_a_rows_columns_sum_to_its_completed_score_in_data_units(both):
    X, _, auto = both
    holed = X.iloc[:20].copy()
    holed.loc[holed.index[:5], "price"] = np.nan
    model = auto._model
    codes = model.schema.encode(holed)
    terms = model.reconstruction_feature_log_likelihood(codes)
    np.testing.assert_allclose(terms.sum(axis=1), model.reconstruction_log_likelihood(codes),
                               rtol=1e-6)


def test_a_model_file_keeps_the_maps(both, tmp_path):
    X, _, auto = both
    save(auto, tmp_path / "m.skvae")
    loaded = load(tmp_path / "m.skvae")
    assert loaded._model.data_space == auto._model.data_space
    assert loaded.numeric_transform == "auto"
    pd.testing.assert_frame_equal(loaded.sample(50, random_state=3), auto.sample(50, random_state=3))
    np.testing.assert_array_equal(loaded.score_samples(X), auto.score_samples(X))


def test_maps_in_a_detectors_file_are_refused_and_set_params_after_fit_saves(both, tmp_path):
    X, _, auto = both
    save(auto, tmp_path / "m.skvae")
    maps = read_model_file(tmp_path / "m.skvae")[0]["fitted"]["data_space"]["maps"]
    # An estimator without the parameter: maps in its file were crafted.
    detector = skvae.VAEOutlierDetector(n_components=2, hidden_layer_sizes=(32,), max_iter=2,
                                        random_state=0).fit(X)
    save(detector, tmp_path / "d.skvae")
    content, weights = read_model_file(tmp_path / "d.skvae")
    content["fitted"]["data_space"]["maps"] = maps
    write_model_file(tmp_path / "bad_d.skvae", content, weights)
    with pytest.raises(ModelFileError, match="bad_d.skvae.*quantile maps"):
        load(tmp_path / "bad_d.skvae")
    # The transformer's parameter changed after fit describes the next fit: the
    # file keeps the fitted model, maps included, and loads.
    changed = copy.deepcopy(auto).set_params(numeric_transform="none")
    save(changed, tmp_path / "changed.skvae")
    loaded = load(tmp_path / "changed.skvae")
    assert loaded.numeric_transform == "none"
    assert loaded._model.data_space == auto._model.data_space
    np.testing.assert_array_equal(loaded.score_samples(X), auto.score_samples(X))


def test_a_crafted_map_in_a_file_is_refused(both, tmp_path):
    save(both[2], tmp_path / "m.skvae")
    content, weights = read_model_file(tmp_path / "m.skvae")
    knots = content["fitted"]["data_space"]["maps"]["knots"]
    knots[0] = list(reversed(knots[0]))
    write_model_file(tmp_path / "bad.skvae", content, weights)
    with pytest.raises(ModelFileError, match="bad.skvae.*strictly increasing"):
        load(tmp_path / "bad.skvae")


def test_a_continued_fit_keeps_its_maps_and_refuses_another_transform():
    X = table(200)
    vae = fit(X, max_iter=3, warm_start=True)
    vae.set_params(numeric_transform="none")
    with pytest.raises(ValueError, match="numeric_transform='none'"):
        vae.fit(X)
    assert vae._model.data_space.maps is not None  # the fitted model is kept
    vae = fit(X, max_iter=3, numeric_transform="none")
    vae.set_params(numeric_transform="quantile")
    with pytest.raises(ValueError, match="numeric_transform='quantile'"):
        vae.partial_fit(X)
    vae.set_params(numeric_transform="none").partial_fit(X)


def test_the_parameter_is_checked():
    with pytest.raises(ValueError, match="numeric_transform"):
        VAETransformer(numeric_transform="log").fit(table(50))
    assert "numeric_transform" not in skvae.VAEOutlierDetector().get_params()


# Saved by skvae's main at 72e61fd, before the quantile maps existed:
# VAETransformer(hidden_layer_sizes=(8,), max_iter=3, random_state=0, device="cpu")
# on the table in the .csv beside it (a price rounded to cents, a count, a
# colour), with its outputs then.
OLD_FILE = Path(__file__).parent / "data" / "transformer_table_before_quantile_maps.skvae"


def test_a_table_file_written_before_the_maps_loads_unmapped_and_gives_its_outputs():
    old = np.load(OLD_FILE.with_suffix(".npz"))
    frame = pd.read_csv(OLD_FILE.with_suffix(".csv"))
    loaded = load(OLD_FILE)
    assert loaded.numeric_transform == "none" and loaded._model.data_space.maps is None
    # Within float32 rounding: recorded on one CPU, see test_priors.py.
    np.testing.assert_allclose(loaded.score_samples(frame), old["score_samples"], rtol=1e-5)
    np.testing.assert_allclose(loaded.transform(frame), old["transform"], rtol=1e-5, atol=1e-6)
    samples = loaded.sample(6, random_state=1)[["price", "count"]].to_numpy(float)
    np.testing.assert_allclose(samples, old["sample"], rtol=1e-5)


def test_a_table_as_an_object_array_gets_the_maps_of_its_frame():
    X = table(120)
    frame_fit = fit(X, max_iter=2)
    array_fit = fit(X.to_numpy(dtype=object), max_iter=2)
    assert array_fit._model.data_space.maps == frame_fit._model.data_space.maps
    np.testing.assert_array_equal(array_fit.score_samples(X.to_numpy(dtype=object)),
                                  frame_fit.score_samples(X))
