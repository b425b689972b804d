"""The training loop's steps, independent of the estimators."""

import copy
import warnings

import numpy as np
import torch

from skvae._likelihoods import GaussianLikelihood
from skvae._networks import build_dense_vae
from skvae._training import train_step


def _step_weights(module, batch, trim_fraction):
    module = copy.deepcopy(module)
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-2)
    noise = torch.randn((batch.shape[0], 2), generator=torch.Generator().manual_seed(0))
    train_step(module, optimizer, batch, noise, 1.0, trim_fraction)
    return torch.cat([p.detach().flatten() for p in module.parameters()])


def test_trimmed_step_ignores_the_worst_explained_rows():
    torch.manual_seed(0)
    module = build_dense_vae(3, 2, (8,), "relu", GaussianLikelihood(3))
    normal = torch.randn(7, 3, generator=torch.Generator().manual_seed(1))
    far, farther = torch.full((1, 3), 50.0), torch.full((1, 3), 80.0)
    # Trimming 1 row of 8: where the outlier lies does not matter to the step.
    assert torch.equal(
        _step_weights(module, torch.cat([normal, far]), 0.125),
        _step_weights(module, torch.cat([normal, farther]), 0.125),
    )
    # Without trimming it does.
    assert not torch.equal(
        _step_weights(module, torch.cat([normal, far]), 0.0),
        _step_weights(module, torch.cat([normal, farther]), 0.0),
    )


def test_early_stopping_restores_the_weights_of_the_best_validation_epoch():
    from skvae import VAETransformer

    X = np.random.RandomState(0).normal(size=(40, 6))
    params = dict(hidden_layer_sizes=(64,), early_stopping=True, validation_fraction=0.25,
                  n_iter_no_change=30, learning_rate_init=3e-2, batch_size=10,
                  learning_rate="constant",  # a schedule's rates depend on max_iter
                  random_state=0, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vae = VAETransformer(max_iter=30, **params).fit(X)
        best_epoch = int(np.argmax(vae.validation_scores_)) + 1
        # The best epoch is well inside the run, so keeping the last weights differs.
        assert 1 < best_epoch < vae.n_iter_ - 5
        # Training is deterministic: a run that ends at the best epoch has its weights.
        reference = VAETransformer(max_iter=best_epoch, **params).fit(X)
    assert vae.best_validation_score_ == max(vae.validation_scores_)
    np.testing.assert_array_equal(vae.transform(X), reference.transform(X))


def test_several_training_draws_train_on_the_importance_weighted_bound():
    torch.manual_seed(0)
    module = build_dense_vae(3, 2, (8,), "relu", GaussianLikelihood(3))
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    x[0, 1] = float("nan")  # a hole: MIWAE's bound on the observed entries
    noise = torch.randn((7, 5, 2), generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(module.loss(x, noise, 1.0), -module.log_likelihood(x, noise))
    # Against the definition: -log mean_k p(x, z_k) / q(z_k | x).
    filled, observed = module._split_missing(x)
    mean, log_variance = module.encode(x)
    z = mean + torch.exp(0.5 * log_variance) * noise
    log_weights = torch.stack([
        module.likelihood.log_prob(filled, module.decoder(z[k]), observed)
        + torch.distributions.Normal(0, 1).log_prob(z[k]).sum(-1)
        - torch.distributions.Normal(mean, torch.exp(0.5 * log_variance)).log_prob(z[k]).sum(-1)
        for k in range(7)
    ])
    expected = -(torch.logsumexp(log_weights, 0) - np.log(7))
    torch.testing.assert_close(module.loss(x, noise, 1.0), expected)


def test_the_importance_weighted_objective_has_no_beta():
    import pytest

    from skvae import VAETransformer

    X = np.random.RandomState(0).normal(size=(50, 3))
    with pytest.raises(ValueError, match="n_training_samples=5.*beta=0.5"):
        VAETransformer(n_training_samples=5, beta=0.5).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        elbo = VAETransformer(hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(X)
        iwae = VAETransformer(hidden_layer_sizes=(8,), max_iter=3, random_state=0,
                              n_training_samples=5).fit(X)
    assert not np.array_equal(elbo.transform(X), iwae.transform(X))
