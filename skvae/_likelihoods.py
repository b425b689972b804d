"""Decoder likelihoods p(x | z): log-densities, means, draws and support checks.

Each likelihood is a small :class:`torch.nn.Module` that turns the decoder's raw
output into a distribution over the data. Modules, not plain functions, because a
likelihood may own learned parameters (the Gaussian's per-feature variance), which
must then train, move between devices and pickle with the rest of the network.
"""

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

# Smallest variance the Gaussian likelihood may learn, in standardised units (the
# estimator standardises real-valued features). Without a floor, a feature that the
# decoder reproduces exactly (a constant column) drives its variance to zero and the
# log-likelihood to +inf; with it, such a feature adds a finite ~+3.7 nats per row.
MIN_VARIANCE = 1e-4

_LOG_2PI = math.log(2.0 * math.pi)


class BernoulliLikelihood(nn.Module):
    """Independent Bernoulli per feature; the decoder outputs logits.

    For data that are not exactly 0 or 1 (grey levels in [0, 1]) the log-"likelihood"
    is the negative binary cross-entropy, the usual VAE choice for images; it is
    then not a normalised density over continuous values.
    """

    name = "bernoulli"

    def __init__(self, n_features):
        super().__init__()
        self.n_features = n_features

    @property
    def n_decoder_outputs(self):
        return self.n_features

    def log_prob(self, x, logits):
        """Sum over features of log p(x_j | z); shape ``logits.shape[:-1]``."""
        x = x.expand_as(logits)
        return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)

    def mean(self, logits):
        return torch.sigmoid(logits)

    def sample(self, logits, generator=None):
        return torch.bernoulli(torch.sigmoid(logits), generator=generator)


class GaussianLikelihood(nn.Module):
    """Independent Gaussian per feature with a learned, per-feature variance.

    The decoder outputs the mean; the variance is one free parameter per feature,
    shared by all rows. A per-row variance from the decoder fits better in theory
    but lets the model shrink the variance around single points without bound,
    which makes training unstable; a shared variance cannot.
    """

    name = "gaussian"

    def __init__(self, n_features):
        super().__init__()
        self.n_features = n_features
        # softplus(0.5413) = 1: start at unit variance, the variance of
        # standardised data.
        self.raw_variance = nn.Parameter(torch.full((n_features,), 0.5413))

    @property
    def n_decoder_outputs(self):
        return self.n_features

    @property
    def variance(self):
        return F.softplus(self.raw_variance) + MIN_VARIANCE

    def log_prob(self, x, loc):
        """Sum over features of log N(x_j; loc_j, variance_j); shape ``loc.shape[:-1]``."""
        return gaussian_log_prob(x, loc, self.variance)

    def mean(self, loc):
        return loc

    def sample(self, loc, generator=None):
        noise = torch.randn(
            loc.shape, generator=generator, device=loc.device, dtype=loc.dtype
        )
        return loc + self.variance.sqrt() * noise


def gaussian_log_prob(x, loc, variance):
    """Log-density of independent Gaussians, summed over the last dimension.

    Parameters
    ----------
    x, loc : torch.Tensor
        Broadcastable tensors; the last dimension indexes features.
    variance : torch.Tensor
        Per-feature variances, broadcastable to ``loc``.

    Returns
    -------
    torch.Tensor
        ``sum_j log N(x_j; loc_j, variance_j)``, of shape ``loc.shape[:-1]``.
    """
    variance = torch.as_tensor(variance, dtype=loc.dtype, device=loc.device)
    return -0.5 * (_LOG_2PI + variance.log() + (x - loc) ** 2 / variance).sum(-1)


LIKELIHOODS = {
    BernoulliLikelihood.name: BernoulliLikelihood,
    GaussianLikelihood.name: GaussianLikelihood,
}


# Values this close to 0 or 1 count as lying on the bound: scaling leaves maxima
# such as 1.0000000000000004 (MinMaxScaler), which must not flip the choice.
BOUND_TOLERANCE = 1e-6


def choose_likelihood(X):
    """Name of the likelihood that ``likelihood="auto"`` picks for data ``X``.

    ``"bernoulli"`` for binary data: every value 0 or 1 (within
    ``BOUND_TOLERANCE``). ``"gaussian"`` for everything else, grey levels and
    continuous features rescaled into [0, 1] included. The rule depends on what
    the values are, not on how many of them are which, so every cross-validation
    fold of the same data gets the same choice (a rule on the share of values at
    0 or 1 flips for data near its threshold). Grey-level images in [0, 1] are
    usually modelled as Bernoulli: ask for it with ``likelihood="bernoulli"``.
    """
    if X.size == 0:
        return GaussianLikelihood.name
    binary = np.count_nonzero(np.abs(X) <= BOUND_TOLERANCE) + np.count_nonzero(
        np.abs(X - 1.0) <= BOUND_TOLERANCE
    )
    return BernoulliLikelihood.name if binary == X.size else GaussianLikelihood.name


def outside_support(X, likelihood):
    """``(min, max)`` of ``X`` if it holds values the likelihood cannot model, else None.

    Only the Bernoulli likelihood has bounds; values within ``BOUND_TOLERANCE``
    of them count as inside (they are clipped when the data become tensors).
    """
    if likelihood != BernoulliLikelihood.name or X.size == 0:
        return None
    low, high = float(np.min(X)), float(np.max(X))
    if low < -BOUND_TOLERANCE or high > 1.0 + BOUND_TOLERANCE:
        return low, high
    return None


def check_support(X, likelihood, *, estimator_name, what="X"):
    """Raise ``ValueError`` if ``X`` holds values the likelihood cannot model."""
    bounds = outside_support(X, likelihood)
    if bounds is not None:
        low, high = bounds
        raise ValueError(
            f"{what} contains values outside [0, 1] (min={low:.6g}, max={high:.6g}), "
            f"but {estimator_name} uses the 'bernoulli' likelihood, which is "
            "defined on [0, 1] only. Scale the data into [0, 1] (for example "
            "MinMaxScaler(clip=True)) or use likelihood='gaussian'."
        )
