"""Decoder likelihoods against scipy's densities."""

import numpy as np
import pytest
import torch
from scipy import stats

from skvae._likelihoods import (
    MIN_VARIANCE,
    BernoulliLikelihood,
    GaussianLikelihood,
    refuse_outside_support,
)
from skvae._data import _choose_likelihood


def test_bernoulli_log_prob_is_the_bernoulli_log_pmf():
    rng = np.random.RandomState(0)
    x = (rng.uniform(size=(4, 5)) > 0.5).astype(np.float32)
    logits = rng.normal(size=(4, 5)).astype(np.float32)
    p = 1 / (1 + np.exp(-logits.astype(np.float64)))
    expected = stats.bernoulli(p).logpmf(x).sum(-1)
    got = BernoulliLikelihood(5).log_prob(torch.tensor(x), torch.tensor(logits))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5)


def test_gaussian_log_prob_is_the_normal_log_pdf():
    rng = np.random.RandomState(1)
    x, loc = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    likelihood = GaussianLikelihood(4).double()
    variance = likelihood.variance.detach().numpy()
    expected = stats.norm(loc, np.sqrt(variance)).logpdf(x).sum(-1)
    got = likelihood.log_prob(torch.tensor(x), torch.tensor(loc))
    np.testing.assert_allclose(got.detach().numpy(), expected, rtol=1e-10)


def test_gaussian_variance_starts_at_one_and_has_a_floor():
    likelihood = GaussianLikelihood(3)
    np.testing.assert_allclose(likelihood.variance.detach().numpy(), 1.0, rtol=1e-4)
    with torch.no_grad():
        likelihood.raw_variance.fill_(-1e4)
    assert torch.all(likelihood.variance >= MIN_VARIANCE)


def test_samples_follow_the_mean():
    generator = torch.Generator().manual_seed(0)
    logits = torch.full((20_000, 1), 1.0)
    draws = BernoulliLikelihood(1).sample(logits, generator=generator)
    assert set(draws.unique().tolist()) == {0.0, 1.0}
    assert abs(draws.mean().item() - torch.sigmoid(torch.tensor(1.0)).item()) < 0.01


@pytest.mark.parametrize(
    "X, expected",
    [
        (np.array([[0.0, 1.0], [1.0, 0.0]]), "bernoulli"),
        (np.array([[0.0, 1.0], [0.5, 0.25]]), "gaussian"),  # grey levels: ask for it
        (np.array([[0.0, 1.5]]), "gaussian"),
        (np.array([[-0.1, 0.5]]), "gaussian"),
    ],
)
def test_auto_likelihood_follows_the_range(X, expected):
    assert _choose_likelihood(X) == expected


def test_support_error_names_the_values_and_the_fix():
    with pytest.raises(ValueError, match=r"min=-0\.5, max=2.*MinMaxScaler"):
        refuse_outside_support(np.array([[-0.5, 2.0]]), "bernoulli", estimator_name="VAE")
    refuse_outside_support(np.array([[-0.5, 2.0]]), "gaussian", estimator_name="VAE")
