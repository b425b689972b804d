"""Fitting the Gaussian-mixture prior with scikit-learn (see :mod:`skvae._priors`).

Kept apart from :mod:`skvae._priors` so that the fitted model, which holds and
evaluates the prior, does not import scikit-learn; the estimators call this at
the end of ``fit``.
"""

import warnings

import numpy as np
import torch
from sklearn import config_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from ._priors import (
    MAX_FULL_COVARIANCE_DIMENSIONS,
    N_MIXTURE_COMPONENTS,
    MixturePrior,
    posterior_draws,
)


def fit_mixture_prior(means, log_variances, seed):
    """The mixture prior fitted to posterior draws of the rows' codes.

    ``means`` and ``log_variances`` (numpy, shape (n, d)) are the encoder's
    posteriors of the training rows; ``seed`` seeds the draws, the rows kept
    and the mixture's initialisation, so the prior is a function of them.
    """
    points, mixture_seed = posterior_draws(means, log_variances, seed)
    full = points.shape[1] <= MAX_FULL_COVARIANCE_DIMENSIONS
    mixture = GaussianMixture(n_components=min(N_MIXTURE_COMPONENTS, points.shape[0]),
                              covariance_type="full" if full else "diag",
                              random_state=mixture_seed)
    # The points are numpy whatever the caller's array API setting, and
    # GaussianMixture's k-means start is refused under array API dispatch.
    with warnings.catch_warnings(), config_context(array_api_dispatch=False):
        # EM that stops at max_iter still gives a proper density; the prior only
        # has to be one, not the likelihood's maximum.
        warnings.simplefilter("ignore", ConvergenceWarning)
        mixture.fit(points)
    covariances = (mixture.covariances_ if full
                   else np.stack([np.diag(c) for c in mixture.covariances_]))
    return MixturePrior.checked(
        torch.as_tensor(mixture.weights_ / mixture.weights_.sum()),
        torch.as_tensor(mixture.means_), torch.as_tensor(covariances), points.shape[1])
