"""The likelihood's variances learn at a multiple of the network's rate."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning

from skvae import VAEImputer, VAEOutlierDetector, VAETransformer
from skvae._fitting import parameter_groups
from skvae._likelihoods import BernoulliLikelihood, GaussianLikelihood
from skvae._networks import build_dense_vae


def nearly_one_factor(n=256, seed=0):
    """Three columns that one latent factor sets up to a noise of 1% of their scale."""
    rng = np.random.RandomState(seed)
    t = rng.normal(size=(n, 1))
    return np.hstack([t, 2 * t, -t]) + 0.01 * rng.normal(size=(n, 3))


def fit_quietly(estimator, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X)


@pytest.mark.parametrize("likelihood", [GaussianLikelihood(3), BernoulliLikelihood(3)])
def test_the_groups_hold_every_weight_once_and_the_variances_alone_get_the_factor(likelihood):
    module = build_dense_vae(3, 2, (8,), "relu", likelihood)
    groups = parameter_groups(module, 10.0)
    grouped = [id(p) for group in groups for p in group["params"]]
    assert sorted(grouped) == sorted(id(p) for p in module.parameters())
    assert groups[0]["rate_factor"] == 1.0
    if isinstance(likelihood, GaussianLikelihood):
        assert len(groups) == 2 and groups[1]["rate_factor"] == 10.0
        assert groups[1]["params"] == [likelihood.raw_variance]
    else:  # nothing of its own: the one group Adam always had
        assert len(groups) == 1


@pytest.mark.parametrize("estimator, factor", [
    (VAETransformer(hidden_layer_sizes=(8,), random_state=0), 10.0),
    (VAEOutlierDetector(hidden_layer_sizes=(8,), random_state=0), 1.0),
    (VAEImputer(hidden_layer_sizes=(8,), random_state=0), 1.0),
])
def test_each_estimator_steps_its_variances_at_its_own_multiple(estimator, factor):
    X = nearly_one_factor()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.partial_fit(X).partial_fit(X)  # Adam's state is kept between calls
    network, variances = vars(estimator)["_optimizer_state"]["param_groups"]
    assert variances["lr"] == pytest.approx(factor * network["lr"])
    assert network["lr"] == pytest.approx(estimator._AUTO_LEARNING_RATE["dense"]
                                          if estimator.learning_rate_init == "auto"
                                          else estimator.learning_rate_init)


def test_the_variances_settle_within_a_short_fit():
    # 8 steps an epoch, 320 in all: at the network's rate (2e-3) the variances
    # of the standardised columns end near 0.8 (measured); the residual noise
    # is 1e-4 of them, and at ten times the rate they reach about 0.05.
    vae = fit_quietly(VAETransformer(hidden_layer_sizes=(32,), max_iter=40, random_state=0),
                      nearly_one_factor(1024))
    variance = vae._model.module.likelihood.variance.detach()
    assert torch.all(variance < 0.2), variance


def test_a_partial_fit_pickled_with_one_group_of_weights_continues_with_its_moments(
        monkeypatch):
    # Before the variances had a rate of their own, Adam held one group of all
    # the weights in the module's order; an estimator pickled then continues.
    import skvae._fitting as fitting

    X = nearly_one_factor()  # 2 steps a call
    vae = VAETransformer(hidden_layer_sizes=(8,), random_state=0)
    with monkeypatch.context() as patch:
        patch.setattr(fitting, "parameter_groups",
                      lambda module, factor: [{"params": list(module.parameters()),
                                               "rate_factor": 1.0}])
        vae.partial_fit(X)
    old = vars(vae)["_optimizer_state"]
    del old["param_groups"][0]["rate_factor"]  # the key came with the groups
    assert len(old["param_groups"]) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        vae.partial_fit(X)
    state = vars(vae)["_optimizer_state"]
    network, variances = state["param_groups"]
    assert variances["lr"] == pytest.approx(10 * network["lr"])
    # Every weight's moments went on: 2 steps before, 2 now.
    assert all(int(state["state"][i]["step"]) == 4
               for group in (network, variances) for i in group["params"])
    np.testing.assert_array_equal(  # the variance's own moments, not another weight's
        state["state"][variances["params"][0]]["exp_avg"].shape, (3,))


def test_a_partial_fit_pickled_before_the_rate_factors_continues_with_one_group():
    # A Bernoulli model's Adam had, and has, one group; the pickled one lacks
    # the rate factor the schedule reads.
    X = (nearly_one_factor() > 0).astype(float)
    vae = VAETransformer(hidden_layer_sizes=(8,), random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        vae.partial_fit(X)
        (group,) = vars(vae)["_optimizer_state"]["param_groups"]
        del group["rate_factor"]
        vae.partial_fit(X)
    (group,) = vars(vae)["_optimizer_state"]["param_groups"]
    assert group["rate_factor"] == 1.0
    assert group["lr"] == pytest.approx(VAETransformer._AUTO_LEARNING_RATE["dense"])
