"""The objective's pure functions against closed forms."""

import math

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from skvae._losses import (
    diagonal_normal_log_prob,
    importance_weighted_log_likelihood,
    kl_divergence_standard_normal,
    negative_elbo,
    reparameterize,
    standard_normal_log_prob,
    trimmed_mean,
)


def test_kl_matches_torch_distributions():
    torch.manual_seed(0)
    mean, log_variance = torch.randn(5, 3), torch.randn(5, 3)
    expected = kl_divergence(
        Normal(mean, (0.5 * log_variance).exp()), Normal(0.0, 1.0)
    ).sum(-1)
    torch.testing.assert_close(kl_divergence_standard_normal(mean, log_variance), expected)


def test_kl_is_zero_only_at_the_prior():
    zero = kl_divergence_standard_normal(torch.zeros(1, 4), torch.zeros(1, 4))
    assert zero.item() == 0.0
    assert kl_divergence_standard_normal(torch.full((1, 4), 0.1), torch.zeros(1, 4)) > 0


def test_normal_log_probs_match_torch_distributions():
    torch.manual_seed(1)
    z, mean, log_variance = torch.randn(6, 2), torch.randn(6, 2), torch.randn(6, 2)
    torch.testing.assert_close(
        diagonal_normal_log_prob(z, mean, log_variance),
        Normal(mean, (0.5 * log_variance).exp()).log_prob(z).sum(-1),
    )
    torch.testing.assert_close(
        standard_normal_log_prob(z), Normal(0.0, 1.0).log_prob(z).sum(-1)
    )


def test_reparameterize_has_the_posterior_moments():
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(200_000, 1, generator=generator)
    z = reparameterize(torch.tensor([2.0]), torch.tensor([math.log(9.0)]), noise)
    assert abs(z.mean().item() - 2.0) < 0.02
    assert abs(z.std().item() - 3.0) < 0.02


def test_importance_weighted_bound_is_exact_with_the_true_posterior():
    # z ~ N(0, 1), x | z ~ N(z, s2): p(x) = N(0, 1 + s2) and the posterior is
    # N(x / (1 + s2), s2 / (1 + s2)). With q equal to the posterior every
    # importance weight equals p(x), so the estimate is exact for any K.
    s2, x = 0.5, torch.tensor([[0.3], [-1.7]])
    post_mean, post_var = x / (1 + s2), torch.full_like(x, s2 / (1 + s2))
    noise = torch.randn(7, 1, 1, generator=torch.Generator().manual_seed(0))
    z = reparameterize(post_mean, post_var.log(), noise)  # (7, 2, 1)
    estimate = importance_weighted_log_likelihood(
        Normal(z, math.sqrt(s2)).log_prob(x).sum(-1),
        standard_normal_log_prob(z),
        diagonal_normal_log_prob(z, post_mean, post_var.log()),
    )
    exact = Normal(0.0, math.sqrt(1 + s2)).log_prob(x).sum(-1)
    torch.testing.assert_close(estimate, exact)


def test_importance_weighted_bound_with_one_sample_is_the_elbo():
    torch.manual_seed(2)
    log_px_z, log_pz, log_qz = torch.randn(1, 4), torch.randn(1, 4), torch.randn(1, 4)
    torch.testing.assert_close(
        importance_weighted_log_likelihood(log_px_z, log_pz, log_qz),
        (log_px_z + log_pz - log_qz)[0],
    )


def test_importance_weighted_bound_tightens_with_more_samples():
    # Jensen: mean of log weights <= log of mean weight, for any weights.
    log_weights = torch.randn(50, 10, generator=torch.Generator().manual_seed(3))
    iw = importance_weighted_log_likelihood(log_weights, torch.zeros(()), torch.zeros(()))
    assert torch.all(iw >= log_weights.mean(0))


@pytest.mark.parametrize("beta", [0.0, 1.0, 4.0])
def test_negative_elbo_weights_the_kl_by_beta(beta):
    loss = negative_elbo(torch.tensor([-10.0]), torch.tensor([2.0]), beta)
    np.testing.assert_allclose(loss.numpy(), [10.0 + beta * 2.0])


def test_trimmed_mean_leaves_out_the_largest_values():
    values = torch.tensor([3.0, 100.0, 1.0, 2.0])
    assert trimmed_mean(values, 0.0).item() == pytest.approx(26.5)
    assert trimmed_mean(values, 0.25).item() == pytest.approx(2.0)
    assert trimmed_mean(values, 0.5).item() == pytest.approx(1.5)
    # At least one value is always kept.
    assert trimmed_mean(values, 0.99).item() == pytest.approx(1.0)
