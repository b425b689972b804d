"""The same rows give bit-identical results from every method, whatever their memory
layout, dtype, container, batch or order."""

import warnings

import numpy as np
import pytest

from skvae._persistence import _estimator_classes

ESTIMATOR_CLASSES = [cls for _, cls in sorted(_estimator_classes().items())]
ROW_METHODS = ("transform", "encode", "score_samples", "decision_function", "predict")


@pytest.fixture(scope="module", params=[
    (cls, likelihood, architecture)
    for cls in ESTIMATOR_CLASSES
    for likelihood in ("bernoulli", "gaussian")
    for architecture in ("dense", "conv")
], ids=lambda p: f"{p[0].__name__}-{p[1]}-{p[2]}")
def fitted(request):
    estimator_class, likelihood, architecture = request.param
    rng = np.random.RandomState(0)
    # 300 rows: more than one full inference chunk (256 rows), which torch would
    # read in place, strides and all, from a column-major array.
    # float32 values, so that the float32 and float64 copies hold the same numbers.
    X = rng.uniform(size=(300, 30)).astype(np.float32).astype(np.float64)
    estimator = estimator_class(
        hidden_layer_sizes=(64, 32), conv_channels=(4,), conv_dense_width=8, max_iter=2,
        likelihood=likelihood, architecture=architecture, random_state=0,
        n_importance_samples=64, device="cpu",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator.fit(X)
    return estimator, X


def row_outputs(estimator, X):
    return {m: getattr(estimator, m)(X) for m in ROW_METHODS if hasattr(estimator, m)}


def layouts(X):
    wide = np.zeros((X.shape[0], 2 * X.shape[1]))
    wide[:, ::2] = X
    read_only = X.copy()
    read_only.setflags(write=False)
    return {
        "Fortran order": np.asfortranarray(X),
        "float32": X.astype(np.float32),
        "strided view": wide[:, ::2],
        "read-only": read_only,
        "list of lists": X.tolist(),
    }


def test_every_layout_and_dtype_gives_the_same_bits(fitted):
    estimator, X = fitted
    expected = row_outputs(estimator, X)
    for name, variant in layouts(X).items():
        for method, value in row_outputs(estimator, variant).items():
            np.testing.assert_array_equal(
                np.asarray(value, dtype=np.float64), expected[method],
                err_msg=f"{method} on {name}",
            )


def test_a_pandas_frame_gives_the_same_bits_as_an_array(fitted):
    pd = pytest.importorskip("pandas")
    estimator, X = fitted
    expected = row_outputs(estimator, X)
    frame = pd.DataFrame(X)  # pandas stores a float frame column by column
    for method, value in row_outputs(estimator, frame).items():
        np.testing.assert_array_equal(np.asarray(value), expected[method], err_msg=method)


def test_every_batching_and_order_gives_the_same_bits(fitted):
    estimator, X = fitted
    expected = row_outputs(estimator, X)
    rng = np.random.RandomState(1)
    order = rng.permutation(len(X))
    shuffled = row_outputs(estimator, X[order])
    cuts = np.sort(rng.choice(np.arange(1, len(X)), size=3, replace=False))
    pieces = [row_outputs(estimator, part) for part in np.split(X, cuts)]
    single = [row_outputs(estimator, X[i : i + 1]) for i in (0, 299)]
    for method in expected:
        np.testing.assert_array_equal(shuffled[method], expected[method][order], method)
        joined = np.concatenate([piece[method] for piece in pieces])
        np.testing.assert_array_equal(joined, expected[method], method)
        for i, row in zip((0, 299), single):
            np.testing.assert_array_equal(row[method], expected[method][i : i + 1], method)


def test_decoding_any_layout_of_codes_gives_the_same_bits(fitted):
    estimator, X = fitted
    Z = estimator.encode(X).astype(np.float32).astype(np.float64)
    expected = estimator.decode(Z)
    for name, variant in layouts(Z).items():
        np.testing.assert_array_equal(
            np.asarray(estimator.decode(variant), dtype=np.float64),
            expected.astype(np.float32) if name == "float32" else expected,
            err_msg=name,
        )
    np.testing.assert_array_equal(estimator.decode(Z[5:9]), expected[5:9])


def assert_scores_batch_invariant(n_rows, n_fit_rows, n_importance_samples, **params):
    """score_samples of a fitted VAETransformer: the same bits in any order and batch."""
    from skvae import VAETransformer

    X = np.random.RandomState(0).normal(size=(n_rows, 12))
    vae = VAETransformer(max_iter=2, random_state=0, device="cpu", **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vae.fit(X[:n_fit_rows])
    vae.set_params(n_importance_samples=n_importance_samples)
    order = np.random.RandomState(5).permutation(len(X))
    expected = vae.score_samples(X)
    np.testing.assert_array_equal(vae.score_samples(X[order]), expected[order])
    np.testing.assert_array_equal(vae.score_samples(X[7:9]), expected[7:9])


@pytest.mark.parametrize("n_importance_samples", [11, 14, 19, 20, 37, 48, 60, 113, 300])
def test_scores_are_batch_invariant_whatever_the_number_of_draws(n_importance_samples):
    assert_scores_batch_invariant(2100, 300, n_importance_samples, hidden_layer_sizes=(32,))


@pytest.mark.parametrize("n_importance_samples",
                         [3, 50, pytest.param(300, marks=pytest.mark.slow)])
def test_conv_scores_are_batch_invariant_whatever_the_number_of_draws(n_importance_samples):
    """The conv network's smaller importance chunks (64, 4 and 1 rows) keep the promise."""
    assert_scores_batch_invariant(150, 100, n_importance_samples, architecture="conv",
                                  image_shape=(3, 4), conv_channels=(4, 4),
                                  conv_dense_width=8)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_minus_zero_is_zero(likelihood):
    from skvae import VAETransformer

    X = (np.random.RandomState(0).uniform(size=(40, 4)) > 0.5).astype(float)
    X[:, 0] -= X[:, 0].mean()  # a column whose mean is exactly 0 after scaling
    vae = VAETransformer(hidden_layer_sizes=(8,), max_iter=2, likelihood=likelihood,
                         random_state=0, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vae.fit(np.abs(X) if likelihood == "bernoulli" else X)
    row = np.zeros((1, 4))
    np.testing.assert_array_equal(vae.score_samples(row), vae.score_samples(-row))
