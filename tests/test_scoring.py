"""Monte-Carlo scores whose error averages out: independent, deterministic draws per row."""

import warnings

import numpy as np
import pytest
import torch
from scipy import stats

from skvae import VAEOutlierDetector, VAETransformer
from skvae._draws import mix64, row_keys, standard_normal_per_row

# ------------------------------------------------------------ the draws alone


def test_keys_depend_on_every_bit_of_the_row_and_on_the_seed():
    x = torch.rand(200, 7, generator=torch.Generator().manual_seed(0))
    keys = row_keys(x, seed=3)
    assert len(set(keys.tolist())) == 200
    assert torch.equal(keys[10:11], row_keys(x[10:11].clone(), seed=3))
    assert not torch.equal(keys, row_keys(x, seed=4))
    nudged = x.clone()
    nudged[:, 6] = torch.nextafter(nudged[:, 6], torch.tensor(2.0))
    assert not torch.any(row_keys(nudged, seed=3) == keys)
    swapped = x[:, [1, 0, 2, 3, 4, 5, 6]]
    assert not torch.any(row_keys(swapped, seed=3) == keys)


def test_mix64_is_a_bijection_on_a_sample_of_words():
    words = torch.arange(-50_000, 50_000, dtype=torch.int64) * 0x10001
    assert len(set(mix64(words).tolist())) == len(words)


def test_draws_are_standard_normal_and_independent_across_rows_and_counters():
    keys = row_keys(torch.rand(2000, 5, generator=torch.Generator().manual_seed(1)), 0)
    draws = standard_normal_per_row(keys, n_draws=20, n_dims=3)
    assert draws.shape == (20, 2000, 3) and draws.dtype == torch.float32
    values = draws.double().flatten().numpy()
    assert stats.kstest(values, "norm").pvalue > 1e-3
    assert abs(values.mean()) < 0.02 and abs(values.std() - 1) < 0.02
    # Neighbouring rows, draws and dimensions are uncorrelated.
    flat = draws.double().numpy()
    for a, b in [(flat[:, :-1], flat[:, 1:]), (flat[:-1], flat[1:]),
                 (flat[..., 0], flat[..., 1])]:
        assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 0.02
    # Draws are a function of the key alone.
    assert torch.equal(standard_normal_per_row(keys[5:6], 20, 3), draws[:, 5:6])


# ---------------------------------------------------------- on fitted models


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    latent = rng.normal(size=(400, 2))
    return np.tanh(latent @ rng.normal(size=(2, 8))) + 0.1 * rng.normal(size=(400, 8))


@pytest.fixture(scope="module", params=[
    (VAETransformer, {}), (VAETransformer, {"n_importance_samples": 1}),
    (VAEOutlierDetector, {}),
], ids=["transformer-IW50", "transformer-ELBO", "detector"])
def fitted(request, data):
    estimator_class, params = request.param
    estimator = estimator_class(hidden_layer_sizes=(32,), n_components=2, max_iter=10,
                                random_state=0, device="cpu", **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimator.fit(data)


def test_the_monte_carlo_error_of_the_mean_score_averages_out(fitted, data):
    estimates = np.array([fitted.score_samples(data, random_state=s) for s in range(8)])
    per_row_spread = estimates.std(axis=0).mean()
    spread_of_means = estimates.mean(axis=1).std()
    assert per_row_spread > 0.01  # the estimate is random at all
    # Independent errors: the mean's spread shrinks like 1 / sqrt(n_rows) (0.05 here);
    # draws shared by all rows would leave it near the per-row spread.
    assert spread_of_means < 0.2 * per_row_spread
    # The deterministic default is one such estimate, not an outlier among them.
    default = fitted.score_samples(data).mean()
    assert abs(default - estimates.mean()) < 4 * spread_of_means + 1e-6


def test_scores_are_deterministic_for_every_random_state(fitted, data):
    np.testing.assert_array_equal(fitted.score_samples(data), fitted.score_samples(data))
    np.testing.assert_array_equal(
        fitted.score_samples(data, random_state=5), fitted.score_samples(data, random_state=5)
    )
    assert not np.array_equal(
        fitted.score_samples(data, random_state=5), fitted.score_samples(data)
    )
    np.testing.assert_array_equal(
        fitted.score_samples(data[::-1], random_state=5)[::-1],
        fitted.score_samples(data, random_state=5),
    )


def test_scores_that_draw_nothing_ignore_random_state(data):
    detector = VAEOutlierDetector(anomaly_score="reconstruction", hidden_layer_sizes=(8,),
                                  max_iter=2, random_state=0, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        detector.fit(data)
    np.testing.assert_array_equal(
        detector.score_samples(data, random_state=1), detector.score_samples(data)
    )
