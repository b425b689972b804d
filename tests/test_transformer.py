"""VAETransformer's behaviour: API, determinism, scoring, persistence, errors."""

import pickle
import warnings

import joblib
import numpy as np
import pytest
import torch
from scipy import sparse, stats
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from skvae import VAETransformer


def small_vae(**params):
    defaults = dict(hidden_layer_sizes=(32,), max_iter=20, random_state=0, device="cpu")
    return VAETransformer(**{**defaults, **params})


def fit_quietly(estimator, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X)


@pytest.fixture(scope="module")
def gaussian_data():
    return np.random.RandomState(0).normal(size=(120, 5)) * [1, 2, 3, 4, 5] + 10


@pytest.fixture(scope="module")
def unit_data():
    """Grey levels in [0, 1], 40% of them black (exactly 0), as in images."""
    X = np.random.RandomState(1).uniform(size=(120, 6))
    X[X < 0.4] = 0.0
    return X


@pytest.fixture(scope="module")
def fitted(gaussian_data):
    return fit_quietly(small_vae(n_components=3), gaussian_data)


def test_output_shapes_and_dtypes(fitted, gaussian_data):
    Z = fitted.transform(gaussian_data)
    assert Z.shape == (120, 3) and Z.dtype == np.float64
    assert fitted.transform(gaussian_data.astype(np.float32)).dtype == np.float32
    assert fitted.inverse_transform(Z).shape == (120, 5)
    assert fitted.sample(7, random_state=0).shape == (7, 5)
    scores = fitted.score_samples(gaussian_data)
    assert scores.shape == (120,) and np.all(np.isfinite(scores))
    assert fitted.score(gaussian_data) == pytest.approx(scores.mean())


def test_auto_likelihood_is_recorded(fitted, unit_data):
    assert fitted.likelihood_ == "gaussian"
    assert fit_quietly(small_vae(max_iter=1), unit_data).likelihood_ == "gaussian"
    binary = (unit_data > 0.5).astype(float)
    assert fit_quietly(small_vae(max_iter=1), binary).likelihood_ == "bernoulli"


def test_transform_and_scores_do_not_depend_on_batch_or_order(fitted, gaussian_data):
    Z, scores = fitted.transform(gaussian_data), fitted.score_samples(gaussian_data)
    order = np.random.RandomState(0).permutation(len(gaussian_data))
    np.testing.assert_array_equal(fitted.transform(gaussian_data[order]), Z[order])
    np.testing.assert_array_equal(fitted.score_samples(gaussian_data[order]), scores[order])
    for i in (0, 57, 119):
        np.testing.assert_array_equal(fitted.transform(gaussian_data[i : i + 1]), Z[i : i + 1])
        np.testing.assert_array_equal(
            fitted.score_samples(gaussian_data[i : i + 1]), scores[i : i + 1]
        )
    np.testing.assert_array_equal(fitted.score_samples(gaussian_data), scores)


def test_same_random_state_gives_bit_identical_models(gaussian_data):
    a = fit_quietly(small_vae(), gaussian_data)
    b = fit_quietly(small_vae(), gaussian_data)
    np.testing.assert_array_equal(a.transform(gaussian_data), b.transform(gaussian_data))
    np.testing.assert_array_equal(
        a.score_samples(gaussian_data), b.score_samples(gaussian_data)
    )
    c = fit_quietly(small_vae(random_state=1), gaussian_data)
    assert not np.array_equal(a.transform(gaussian_data), c.transform(gaussian_data))


@pytest.mark.parametrize("random_state", [None, 0])
def test_fit_leaves_global_random_state_alone(gaussian_data, random_state):
    np.random.seed(123)
    torch.manual_seed(123)
    numpy_before, torch_before = np.random.get_state()[1].copy(), torch.get_rng_state()
    fit_quietly(small_vae(max_iter=2, random_state=random_state), gaussian_data)
    np.testing.assert_array_equal(np.random.get_state()[1], numpy_before)
    assert torch.equal(torch.get_rng_state(), torch_before)


def test_sample_is_seeded_and_offers_the_mean(fitted):
    np.testing.assert_array_equal(
        fitted.sample(5, random_state=3), fitted.sample(5, random_state=3)
    )
    assert not np.array_equal(fitted.sample(5, random_state=3), fitted.sample(5, random_state=4))
    # The mean of p(x|z) is the decoder output for the same latent draws, from
    # the fitted mixture prior (sampling_prior="mixture", the default).
    means = fitted.sample(5, random_state=3, return_mean=True)
    z = fitted._model.prior.sample(5, torch.Generator().manual_seed(3))
    np.testing.assert_allclose(means, fitted.inverse_transform(z.numpy().astype(np.float64)))


def test_bernoulli_samples_are_binary_and_means_are_probabilities(unit_data):
    vae = fit_quietly(small_vae(max_iter=2, likelihood="bernoulli"), unit_data)
    assert set(np.unique(vae.sample(50, random_state=0))) <= {0.0, 1.0}
    means = vae.sample(50, random_state=0, return_mean=True)
    assert np.all((means > 0) & (means < 1))


def test_score_samples_is_in_the_units_of_the_data(gaussian_data):
    # Fitting on a * X standardises to the same data, so the density of a * X is
    # the density of X divided by a**d: log-likelihoods shift by -d * log(a).
    a = 7.0
    base = fit_quietly(small_vae(), gaussian_data).score_samples(gaussian_data)
    scaled = fit_quietly(small_vae(), a * gaussian_data).score_samples(a * gaussian_data)
    np.testing.assert_allclose(scaled, base - 5 * np.log(a), rtol=1e-4, atol=1e-3)


@pytest.mark.slow
def test_score_samples_approaches_the_true_gaussian_log_density():
    rng = np.random.RandomState(0)
    cov = np.array([[2.0, 1.2, 0.0], [1.2, 1.5, 0.3], [0.0, 0.3, 0.5]])
    truth = stats.multivariate_normal(mean=[1.0, -2.0, 0.5], cov=cov)
    X = truth.rvs(size=2000, random_state=rng)
    X_train, X_test = X[:1500], X[1500:]
    vae = fit_quietly(
        VAETransformer(n_components=2, hidden_layer_sizes=(64, 32), random_state=0),
        X_train,
    )
    true_mean = truth.logpdf(X_test).mean()
    assert abs(vae.score(X_test) - true_mean) < 0.1
    # More importance samples can only tighten the bound (up to noise).
    vae.set_params(n_importance_samples=1)
    assert vae.score(X_test) < true_mean


def test_pickle_and_joblib_round_trips_are_identical(fitted, gaussian_data, tmp_path):
    expected = (fitted.transform(gaussian_data), fitted.score_samples(gaussian_data),
                fitted.sample(4, random_state=0))
    joblib.dump(fitted, tmp_path / "vae.joblib")
    for clone in (pickle.loads(pickle.dumps(fitted)), joblib.load(tmp_path / "vae.joblib")):
        got = (clone.transform(gaussian_data), clone.score_samples(gaussian_data),
               clone.sample(4, random_state=0))
        for e, g in zip(expected, got):
            np.testing.assert_array_equal(e, g)


def test_history_and_convergence_warning(gaussian_data):
    with pytest.warns(ConvergenceWarning, match="max_iter=3"):
        vae = small_vae(max_iter=3, learning_rate="constant").fit(gaussian_data)
    assert vae.n_iter_ == 3 and len(vae.loss_curve_) == 3
    assert vae.best_loss_ == min(vae.loss_curve_)
    assert vae.validation_scores_ is None
    # The loss is the negative ELBO in the data's units, so it bounds -score.
    assert vae.loss_curve_[-1] > -vae.set_params(n_importance_samples=200).score(gaussian_data) - 1.0


def test_early_stopping_restores_the_best_epoch(gaussian_data):
    vae = fit_quietly(
        small_vae(early_stopping=True, max_iter=200, n_iter_no_change=3, tol=0.0),
        gaussian_data,
    )
    assert vae.n_iter_ < 200
    assert len(vae.validation_scores_) == vae.n_iter_
    assert vae.best_validation_score_ == max(vae.validation_scores_)
    assert np.argmax(vae.validation_scores_) == vae.n_iter_ - 1 - 3


def test_warm_start_continues_training(gaussian_data):
    vae = fit_quietly(small_vae(max_iter=4, warm_start=True), gaussian_data)
    first_curve = list(vae.loss_curve_)
    fit_quietly(vae, gaussian_data)
    assert vae.n_iter_ == 8 and vae.loss_curve_[:4] == first_curve


def test_pipeline_classifier_and_grid_search_by_likelihood():
    X, y = load_digits(return_X_y=True)
    X, y = X[:600], y[:600]
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    clf = make_pipeline(
        MinMaxScaler(), small_vae(n_components=8, hidden_layer_sizes=(64,), max_iter=30),
        LogisticRegression(max_iter=500),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        assert clf.fit(X_train, y_train).score(X_test, y_test) > 0.7
        search = GridSearchCV(small_vae(max_iter=10), {"n_components": [1, 4]}, cv=2)
        search.fit(X_train / 16)
    assert search.best_params_ == {"n_components": 4}
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))


def test_feature_names_and_pandas_output(gaussian_data):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(gaussian_data, columns=list("abcde"))
    vae = fit_quietly(small_vae(n_components=2, max_iter=1), frame)
    np.testing.assert_array_equal(vae.feature_names_in_, list("abcde"))
    np.testing.assert_array_equal(
        vae.get_feature_names_out(), ["vaetransformer0", "vaetransformer1"]
    )
    out = vae.set_output(transform="pandas").transform(frame)
    assert list(out.columns) == ["vaetransformer0", "vaetransformer1"]


# ------------------------------------------------------------------ bad input


def test_unfitted_model_says_so():
    for method in ("transform", "score_samples", "inverse_transform"):
        with pytest.raises(NotFittedError, match="not fitted yet"):
            getattr(VAETransformer(), method)(np.zeros((2, 2)))
    with pytest.raises(NotFittedError):
        VAETransformer().sample(2)


@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_infinite_input_is_refused_naming_the_column(fitted, gaussian_data, bad):
    X = gaussian_data.copy()
    X[3, 2] = bad
    for call in (small_vae().fit, fitted.transform, fitted.score_samples):
        with pytest.raises(ValueError, match=r"infinite values \(column 2\)"):
            call(X)


def test_wrong_number_of_features_is_named(fitted):
    with pytest.raises(ValueError, match="X has 4 features, but VAETransformer is expecting 5"):
        fitted.transform(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="Z has 2 columns.*3 latent dimensions"):
        fitted.inverse_transform(np.zeros((2, 2)))


def test_bernoulli_refuses_training_values_outside_the_unit_interval(unit_data):
    with pytest.raises(ValueError, match=r"outside \[0, 1\].*max=2.99"):
        small_vae(likelihood="bernoulli").fit(unit_data * 3)
    vae = fit_quietly(small_vae(max_iter=1, likelihood="bernoulli"), unit_data)
    with pytest.warns(UserWarning, match=r"min=-1.*nearest of 0 and 1.*likelihood='gaussian'"):
        vae.score_samples(unit_data - 1)


def test_sparse_and_non_numeric_input_get_clear_errors(unit_data):
    with pytest.raises(TypeError, match="dense data is required.*toarray"):
        small_vae().fit(sparse.csr_matrix(unit_data))
    # Strings are categories unless the user says every column holds numbers.
    with pytest.raises(ValueError, match="could not convert string to float"):
        small_vae(categorical_features=None).fit(
            np.array([["a", "b"], ["c", "d"]], dtype=object))


def test_invalid_parameters_are_named(unit_data):
    with pytest.raises(ValueError, match="n_components"):
        small_vae(n_components=0).fit(unit_data)
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        small_vae(hidden_layer_sizes=(8, -1)).fit(unit_data)
    with pytest.raises(ValueError, match="device='tpu:9'"):
        small_vae(device="tpu:9").fit(unit_data)


def test_inputs_are_never_modified(unit_data):
    X = unit_data.copy()
    X.setflags(write=False)
    vae = fit_quietly(small_vae(max_iter=2), X)
    Z = vae.transform(X)
    Z_before = Z.copy()
    vae.score_samples(X)
    vae.inverse_transform(Z)
    np.testing.assert_array_equal(X, unit_data)
    np.testing.assert_array_equal(Z, Z_before)


def test_unpickles_on_the_cpu_when_the_training_device_is_missing(fitted, gaussian_data):
    # A model trained on a GPU records device_ = cuda; its pickle holds CPU weights
    # (see BaseVAE.__getstate__), and without CUDA inference falls back to the CPU.
    expected = fitted.score_samples(gaussian_data)
    clone = pickle.loads(pickle.dumps(fitted))
    clone.device_ = torch.device("cuda:0")
    restored = pickle.loads(pickle.dumps(clone))
    assert all(p.device.type == "cpu" for p in restored.module_.parameters())
    if not torch.cuda.is_available():
        assert restored._model.device_here == torch.device("cpu")
    np.testing.assert_array_equal(restored.score_samples(gaussian_data), expected)


def test_interpolate_decodes_the_line_between_two_codes():
    X = np.random.RandomState(0).uniform(size=(120, 16))
    vae = small_vae(max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        vae.fit(X)
    path = vae.interpolate(X[:2], X[2:4], n_steps=5)
    assert path.shape == (10, 16)
    Z_start, Z_end = vae.transform(X[:2]), vae.transform(X[2:4])
    np.testing.assert_allclose(path[0], vae.inverse_transform(Z_start[:1])[0], rtol=1e-6)
    np.testing.assert_allclose(path[4], vae.inverse_transform(Z_end[:1])[0], rtol=1e-6)
    np.testing.assert_allclose(path[7], vae.inverse_transform(
        (Z_start[1:] + Z_end[1:]) / 2)[0], rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="n_steps=1 must be an integer of at least 2"):
        vae.interpolate(X[:1], X[1:2], n_steps=1)
    with pytest.raises(ValueError, match="X_start has 2 rows and X_end 1"):
        vae.interpolate(X[:2], X[2:3])


def test_interpolation_display_draws_one_line_per_grid_row():
    import matplotlib

    matplotlib.use("Agg")
    from skvae.plotting import InterpolationDisplay

    X = np.random.RandomState(0).uniform(size=(60, 16))
    vae = small_vae(max_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        vae.fit(X)
    display = InterpolationDisplay.from_estimator(vae, X[:3], X[3:6], n_steps=4,
                                                  image_shape=(4, 4))
    # 3 lines of 4 images of 4 x 4 with one-pixel gaps.
    assert display.ax_.get_images()[0].get_array().shape == (3 * 5 - 1, 4 * 5 - 1)
    np.testing.assert_allclose(display.images, vae.interpolate(X[:3], X[3:6], n_steps=4))
