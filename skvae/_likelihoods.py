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

    def log_prob(self, x, logits, observed=None):
        """Sum over features of log p(x_j | z); shape ``logits.shape[:-1]``.

        ``observed`` (a boolean tensor like ``x``, or None for all) leaves
        missing entries out of the sum; ``x`` holds 0 there, not NaN.
        """
        x = x.expand_as(logits)
        # Negated after the sum: one sign flip per row, not per pixel, on the
        # training hot path; exact, as IEEE rounding is symmetric in sign.
        bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
        return -_observed_sum(bce, observed)

    def log_prob_terms(self, x, logits):
        """log p(x_j | z) of each feature, before the sum; shape ``logits.shape``.

        One entry per feature: :meth:`log_prob` is their sum over observed entries.
        """
        return -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits),
                                                   reduction="none")

    def column_entropy(self, logits):
        """:meth:`entropy`: one entry per feature, as :meth:`log_prob_terms`."""
        return self.entropy(logits)

    def column_observed(self, observed):
        """Which entries of :meth:`log_prob_terms` are observed: ``observed`` itself."""
        return observed

    def mean(self, logits):
        return torch.sigmoid(logits)

    def sample(self, logits, generator=None):
        return torch.bernoulli(torch.sigmoid(logits), generator=generator)

    def entropy(self, logits):
        """Entropy of each feature's distribution, in nats; shape ``logits.shape``."""
        return F.binary_cross_entropy_with_logits(
            logits, torch.sigmoid(logits), reduction="none")


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
        self.raw_variance = nn.Parameter(torch.empty(n_features))
        self.reset_parameters()

    def reset_parameters(self):
        # softplus(0.5413) = 1: start at unit variance, the variance of
        # standardised data.
        with torch.no_grad():
            self.raw_variance.fill_(0.5413)

    @property
    def n_decoder_outputs(self):
        return self.n_features

    @property
    def variance(self):
        return F.softplus(self.raw_variance) + MIN_VARIANCE

    def log_prob(self, x, loc, observed=None):
        """Sum over features of log N(x_j; loc_j, variance_j); shape ``loc.shape[:-1]``.

        ``observed`` (a boolean tensor like ``x``, or None for all) leaves
        missing entries out of the sum; ``x`` holds 0 there, not NaN.
        """
        if observed is None:
            return gaussian_log_prob(x, loc, self.variance)
        return _observed_sum(-0.5 * gaussian_minus_twice_log_density(x, loc, self.variance),
                             observed)

    def log_prob_terms(self, x, loc):
        """log N(x_j; loc_j, variance_j) of each feature, before the sum; shape ``loc.shape``.

        One entry per feature: :meth:`log_prob` is their sum over observed entries.
        """
        return -0.5 * gaussian_minus_twice_log_density(x, loc, self.variance)

    def entropy(self, loc):
        """Entropy of each feature's distribution, in nats; shape ``loc.shape``."""
        return (0.5 * (_LOG_2PI + 1.0 + self.variance.log())).expand_as(loc)

    def column_entropy(self, loc):
        """:meth:`entropy`: one entry per feature, as :meth:`log_prob_terms`."""
        return self.entropy(loc)

    def column_observed(self, observed):
        """Which entries of :meth:`log_prob_terms` are observed: ``observed`` itself."""
        return observed

    def mean(self, loc):
        return loc

    def sample(self, loc, generator=None):
        noise = torch.randn(
            loc.shape, generator=generator, device=loc.device, dtype=loc.dtype
        )
        return loc + self.variance.sqrt() * noise


def gaussian_minus_twice_log_density(x, loc, variance):
    """``-2 log N(x; loc, variance)`` of each entry: the one Gaussian formula of the data.

    Every Gaussian log-density of the data goes through here; the callers apply
    the factor ``-0.5`` before or after summing, as they always have, because
    the two orders train to weights that differ in the last bit. (The latent
    space's density, :func:`skvae._losses.diagonal_normal_log_prob`, takes a
    log-variance, as the encoder gives it.)
    """
    return _LOG_2PI + variance.log() + (x - loc) ** 2 / variance


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
    return -0.5 * gaussian_minus_twice_log_density(x, loc, variance).sum(-1)


def _observed_sum(terms, observed):
    """Sum of per-feature ``terms`` over the last axis, over observed entries only."""
    if observed is None:
        return terms.sum(-1)
    return torch.where(observed, terms, 0.0).sum(-1)


def categorical_log_prob(one_hot, logits):
    """log p(category) under softmax(``logits``), summed over the last axis with ``one_hot``.

    A missing category is an all-zero ``one_hot`` row and adds nothing.
    """
    return (one_hot * torch.log_softmax(logits, dim=-1)).sum(-1)


class MixedLikelihood(nn.Module):
    """One likelihood per column of a table: Gaussian, Bernoulli and categorical.

    The network's rows and the decoder's outputs share one layout: the
    ``n_gaussian`` standardised real columns (decoder: means; one learned
    variance per column), then the ``n_bernoulli`` binary columns (logits), then
    one block per categorical column, one-hot in the data and logits of a softmax
    in the decoder. Missing entries are left out of the sum, so the
    log-likelihood of a row with holes is that of its observed entries.
    """

    name = "mixed"

    def __init__(self, n_gaussian, n_bernoulli, levels):
        super().__init__()
        self.n_gaussian = n_gaussian
        self.n_bernoulli = n_bernoulli
        self.levels = tuple(levels)
        self.gaussian = GaussianLikelihood(n_gaussian)
        self.bernoulli = BernoulliLikelihood(n_bernoulli)
        self.n_features = n_gaussian + n_bernoulli + sum(self.levels)

    @property
    def n_decoder_outputs(self):
        return self.n_features

    def _parts(self, values):
        """``values`` split into its Gaussian, Bernoulli and categorical blocks."""
        sizes = [self.n_gaussian, self.n_bernoulli, *self.levels]
        return torch.split(values, sizes, dim=-1)

    def log_prob(self, x, params, observed=None):
        """Sum over columns of log p(x_j | z); shape ``params.shape[:-1]``."""
        x_parts, params_parts = self._parts(x), self._parts(params)
        observed_parts = (None,) * 2 if observed is None else self._parts(observed)
        total = self.gaussian.log_prob(x_parts[0], params_parts[0], observed_parts[0])
        total = total + self.bernoulli.log_prob(
            x_parts[1], params_parts[1], observed_parts[1])
        for one_hot, logits in zip(x_parts[2:], params_parts[2:]):
            total = total + categorical_log_prob(one_hot, logits)
        return total

    @property
    def n_columns(self):
        """Columns of the table: one per numeric column, one per categorical block."""
        return self.n_gaussian + self.n_bernoulli + len(self.levels)

    def log_prob_terms(self, x, params):
        """log p(x_j | z) of each *column*, before the sum; shape ``(..., n_columns)``.

        The Gaussian columns, then the Bernoulli columns, then one entry per
        categorical column (the log-probability of its category, its whole
        one-hot block in one entry): :meth:`log_prob` is their sum over observed
        columns. A missing category (an all-zero block) gives 0.
        """
        x_parts, params_parts = self._parts(x.expand_as(params)), self._parts(params)
        terms = [self.gaussian.log_prob_terms(x_parts[0], params_parts[0]),
                 self.bernoulli.log_prob_terms(x_parts[1], params_parts[1])]
        terms += [categorical_log_prob(one_hot, logits)[..., None]
                  for one_hot, logits in zip(x_parts[2:], params_parts[2:])]
        return torch.cat(terms, dim=-1)

    def column_entropy(self, params):
        """Entropy of each column's distribution, one entry per column as in log_prob_terms."""
        parts = self._parts(params)
        blocks = [self.gaussian.entropy(parts[0]), self.bernoulli.entropy(parts[1])]
        blocks += [_categorical_entropy(logits) for logits in parts[2:]]
        return torch.cat(blocks, dim=-1)

    def column_observed(self, observed):
        """Which columns are observed, from the mask of the tensor's entries.

        A categorical block is missing or observed as a whole: its first entry says which.
        """
        parts = self._parts(observed)
        return torch.cat(list(parts[:2]) + [block[..., :1] for block in parts[2:]], dim=-1)

    def mean(self, params):
        """Means of the numeric columns and probabilities of the categories."""
        parts = self._parts(params)
        return torch.cat(
            [parts[0], torch.sigmoid(parts[1])]
            + [torch.softmax(logits, dim=-1) for logits in parts[2:]], dim=-1,
        )

    def sample(self, params, generator=None):
        """One draw per row; categories drawn as one-hot rows."""
        parts = self._parts(params)
        draws = [
            self.gaussian.sample(parts[0], generator),
            self.bernoulli.sample(parts[1], generator),
        ]
        for logits in parts[2:]:
            probabilities = torch.softmax(logits, dim=-1).reshape(-1, logits.shape[-1])
            codes = torch.multinomial(probabilities, 1, generator=generator)
            one_hot = torch.zeros_like(probabilities).scatter_(1, codes, 1.0)
            draws.append(one_hot.reshape(logits.shape))
        return torch.cat(draws, dim=-1)

    def entropy(self, params):
        """Entropy of each column's distribution, spread over its block's entries.

        A categorical column's entropy sits in the first entry of its block and
        the others hold 0, so that a mask of missing entries picks it once.
        """
        parts = self._parts(params)
        blocks = [self.gaussian.entropy(parts[0]), self.bernoulli.entropy(parts[1])]
        for logits in parts[2:]:
            column = _categorical_entropy(logits)
            blocks.append(torch.cat([column, torch.zeros_like(logits[..., 1:])], dim=-1))
        return torch.cat(blocks, dim=-1)


def _categorical_entropy(logits):
    """Entropy of softmax(``logits``) over the last axis, kept as an axis of size 1."""
    log_p = torch.log_softmax(logits, dim=-1)
    return -(log_p.exp() * log_p).sum(-1, keepdim=True)


LIKELIHOODS = {
    BernoulliLikelihood.name: BernoulliLikelihood,
    GaussianLikelihood.name: GaussianLikelihood,
    MixedLikelihood.name: MixedLikelihood,
}


# Values this close to 0 or 1 count as lying on the bound: scaling leaves maxima
# such as 1.0000000000000004 (MinMaxScaler), which must not flip the choice.
BOUND_TOLERANCE = 1e-6


def outside_support(X, likelihood):
    """``(min, max)`` of ``X`` if it holds values the likelihood cannot model, else None.

    Only the Bernoulli likelihood has bounds; values within ``BOUND_TOLERANCE``
    of them count as inside (they are clipped when the data become tensors).
    """
    if likelihood != BernoulliLikelihood.name or X.size == 0:
        return None
    low, high = float(np.min(X)), float(np.max(X))
    if math.isnan(low) or math.isnan(high):  # missing entries: bounds of the rest
        observed = X[~np.isnan(X)]
        if observed.size == 0:
            return None
        low, high = float(observed.min()), float(observed.max())
    if low < -BOUND_TOLERANCE or high > 1.0 + BOUND_TOLERANCE:
        return low, high
    return None


def refuse_outside_support(X, likelihood, *, estimator_name, what="X"):
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
