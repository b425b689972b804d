"""The training loop's steps, independent of the estimators."""

import copy

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
    module = build_dense_vae(3, 2, (8,), "relu", GaussianLikelihood)
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
