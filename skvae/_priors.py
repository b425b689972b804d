"""Latent priors beyond N(0, I): a Gaussian mixture fitted to the posterior codes.

A VAE trained against N(0, I) does not fill it: the encoder's codes, the
aggregate posterior ``q(z) = mean_i q(z | x_i)``, leave holes, and decoding
draws from those holes gives rows unlike the data. Fitting a Gaussian mixture
to posterior draws of the training rows after training ("ex-post density
estimation", Ghosh et al., 2020) gives a prior where the codes are; the decoder
is unchanged. The aggregate posterior is also the prior that maximises the
ELBO for a fixed encoder and decoder, so the fitted mixture is a better prior
for the likelihood, not only for sampling.

:func:`mixture_log_prob` is the mixture's log-density as a pure torch function
(tested against :meth:`sklearn.mixture.GaussianMixture.score_samples`);
:class:`MixturePrior` holds the parameters, checks them when they come from a
file, and samples; :func:`posterior_draws` gives the points it is fitted to.
The fitting itself, by scikit-learn, is in :mod:`skvae._prior_fitting`: this
module, which the fitted model imports, knows torch and numpy only.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch

_LOG_2PI = math.log(2.0 * math.pi)

# Mixture components: enough for the few clusters of a table's codes, few enough
# that each has hundreds of points on a few thousand rows.
N_MIXTURE_COMPONENTS = 10
# Full covariances up to this many latent dimensions, diagonal ones beyond (kept
# as full matrices): EM's cost grows as d**3 with full ones, 15 s for d = 400.
MAX_FULL_COVARIANCE_DIMENSIONS = 32
# Posterior draws per training row that the mixture is fitted to: draws rather
# than means, so the mixture covers each posterior's spread (fitted to the means
# alone it is narrower than q(z), and the importance-weighted bound pays for
# every posterior draw beyond it); at most _MAX_POINTS in all, rows subsampled.
_DRAWS_PER_ROW = 5
_MAX_POINTS = 20_000
# The most components a model file may declare (a file's sizes are bounded before
# anything is computed from them).
MAX_MIXTURE_COMPONENTS = 1000
# The tensors a mixture prior adds to a model file, under these names.
PRIOR_TENSORS = ("prior.weights", "prior.means", "prior.covariances")


def mixture_log_prob(z, log_weights, means, precision_cholesky):
    """log of a full-covariance Gaussian mixture's density at each point of ``z``.

    ``log sum_k w_k N(z; mu_k, Sigma_k)``, with each precision
    ``Sigma_k^-1 = P_k P_k^T`` given by its Cholesky factor ``P_k`` (scikit-learn's
    ``precisions_cholesky_``), so ``log N = -d/2 log(2 pi) + sum log diag(P_k)
    - |(z - mu_k)^T P_k|^2 / 2``.

    Parameters
    ----------
    z : torch.Tensor of shape (..., d)
    log_weights : torch.Tensor of shape (K,)
    means : torch.Tensor of shape (K, d)
    precision_cholesky : torch.Tensor of shape (K, d, d)

    Returns
    -------
    torch.Tensor of shape (...)
    """
    k, d = means.shape
    # Each point's whitened offset from each component, shape (n, K, d): one matrix
    # product for all components (einsum and broadcast matmul copy P per point).
    points = z.reshape(-1, d)
    whitened = (points @ precision_cholesky.permute(1, 0, 2).reshape(d, k * d)).reshape(-1, k, d)
    whitened = whitened - (means[:, None, :] @ precision_cholesky)[:, 0, :]
    log_det = torch.log(torch.diagonal(precision_cholesky, dim1=-2, dim2=-1)).sum(-1)
    log_normal = -0.5 * (d * _LOG_2PI + (whitened**2).sum(-1)) + log_det
    return torch.logsumexp(log_weights + log_normal, dim=-1).reshape(z.shape[:-1])


def diagonal_mixture_log_prob(z, log_weights, means, precision_sd):
    """:func:`mixture_log_prob` for diagonal covariances, at a cost linear in d.

    ``precision_sd`` (shape (K, d)) holds ``1 / sigma_kj``, the diagonal of ``P_k``.
    """
    d = z.shape[-1]
    # |(z - mu_k) / sigma_k|^2 expanded into matrix products: no (n, K, d)
    # temporary, which for d = 400 is half a GB per chunk of rows.
    precision = precision_sd**2  # (K, d)
    squares = ((z**2) @ precision.T - 2 * z @ (means * precision).T
               + (means**2 * precision).sum(-1))
    log_normal = -0.5 * (d * _LOG_2PI + squares) + torch.log(precision_sd).sum(-1)
    return torch.logsumexp(log_weights + log_normal, dim=-1)


def posterior_draws(means, log_variances, seed):
    """Draws ``z = mean + sigma * eps`` from each row's posterior, for fitting the prior.

    ``means`` and ``log_variances`` (numpy, shape (n, d)) are the encoder's
    posteriors of the training rows. ``_DRAWS_PER_ROW`` draws per row, at most
    ``_MAX_POINTS`` in all (rows subsampled beyond). Returns the points, shape
    (m, d) in float64, and a seed for the mixture's initialisation: both are
    functions of ``seed``.
    """
    generator = np.random.default_rng(seed)
    n_rows = means.shape[0]
    draws = max(1, min(_DRAWS_PER_ROW, _MAX_POINTS // max(n_rows, 1)))
    if n_rows * draws > _MAX_POINTS:
        kept = np.sort(generator.choice(n_rows, _MAX_POINTS, replace=False))
        means, log_variances = means[kept], log_variances[kept]
    sigma = np.exp(0.5 * np.asarray(log_variances, dtype=np.float64))
    noise = generator.standard_normal((draws, *means.shape))
    points = (np.asarray(means, dtype=np.float64) + sigma * noise).reshape(-1, means.shape[1])
    return points, int(generator.integers(2**31))


def _as_float64(values, name):
    if not isinstance(values, torch.Tensor):
        raise ValueError(f"the sampling prior's {name} is not a tensor.")
    if values.dtype != torch.float64:
        raise ValueError(f"the sampling prior's {name} are {values.dtype}, not float64.")
    values = values.detach().cpu()
    if not torch.all(torch.isfinite(values)):
        raise ValueError(f"the sampling prior's {name} hold NaN or infinite values.")
    return values


@dataclass(frozen=True, eq=False)
class MixturePrior:
    """A Gaussian-mixture prior p(z) over the latent space; build with :meth:`checked`.

    Parameters
    ----------
    weights : torch.Tensor of shape (K,)
        Mixture weights, non-negative, summing to 1 (float64).
    means : torch.Tensor of shape (K, d)
    covariances : torch.Tensor of shape (K, d, d)
        Symmetric positive definite.
    """

    weights: torch.Tensor
    means: torch.Tensor
    covariances: torch.Tensor
    # Derived once in checked(): what log_prob and sample use.
    _log_weights: torch.Tensor = None
    _precision_cholesky: torch.Tensor = None
    _cholesky: torch.Tensor = None
    # 1 / sigma when every covariance is diagonal, else None.
    _precision_sd: torch.Tensor = None

    def __eq__(self, other):
        # By value, as DataSpace compares: the same mixture, whatever the object.
        return type(other) is type(self) and all(
            torch.equal(a, b) for a, b in ((self.weights, other.weights),
                                           (self.means, other.means),
                                           (self.covariances, other.covariances)))

    __hash__ = None  # tensors inside

    @property
    def n_components(self):
        """Latent dimensions, d."""
        return self.means.shape[1]

    @classmethod
    def checked(cls, weights, means, covariances, n_components):
        """The prior with these parameters, every one checked first.

        Raises ``ValueError`` naming the parameter that is not a float64 tensor
        of the right shape, not finite, weights that are negative or do not sum
        to 1, or a covariance that is not symmetric positive definite.
        """
        weights = _as_float64(weights, "weights")
        means = _as_float64(means, "means")
        covariances = _as_float64(covariances, "covariances")
        k = weights.shape[0] if weights.dim() == 1 else -1
        if not 1 <= k <= MAX_MIXTURE_COMPONENTS:
            raise ValueError(
                f"the sampling prior's weights have shape {tuple(weights.shape)}: "
                f"expected one weight per component, 1 to {MAX_MIXTURE_COMPONENTS}.")
        if tuple(means.shape) != (k, n_components):
            raise ValueError(f"the sampling prior's means have shape {tuple(means.shape)}, "
                             f"expected ({k}, {n_components}).")
        if tuple(covariances.shape) != (k, n_components, n_components):
            raise ValueError(
                f"the sampling prior's covariances have shape {tuple(covariances.shape)}, "
                f"expected ({k}, {n_components}, {n_components}).")
        if torch.any(weights < 0) or abs(float(weights.sum()) - 1.0) > 1e-6:
            raise ValueError(
                f"the sampling prior's weights sum to {float(weights.sum())!r} or hold "
                "negative values: mixture weights are non-negative and sum to 1.")
        scale = covariances.abs().amax(dim=(-2, -1), keepdim=True)
        if not torch.all(torch.abs(covariances - covariances.mT) <= 1e-9 * scale):
            raise ValueError("the sampling prior's covariances are not symmetric.")
        cholesky, info = torch.linalg.cholesky_ex(covariances)
        if torch.any(info != 0) or not torch.all(
                torch.diagonal(cholesky, dim1=-2, dim2=-1) > 0):
            raise ValueError("the sampling prior's covariances are not positive definite "
                             "(a variance that is zero or negative).")
        # Sigma = L L^T, so Sigma^-1 = L^-T L^-1 = P P^T with P = L^-T (upper).
        identity = torch.eye(n_components, dtype=torch.float64).expand_as(cholesky)
        precision_cholesky = torch.linalg.solve_triangular(
            cholesky, identity, upper=False).mT
        log_weights = torch.log(weights)  # -inf for an empty component: logsumexp skips it
        if not torch.all(torch.isfinite(precision_cholesky)):
            raise ValueError("the sampling prior's covariances are too close to singular.")
        diagonal = torch.diagonal(covariances, dim1=-2, dim2=-1)
        precision_sd = (1.0 / diagonal.sqrt()
                        if torch.equal(torch.diag_embed(diagonal), covariances) else None)
        return cls(weights, means, covariances, log_weights, precision_cholesky, cholesky,
                   precision_sd)

    def log_prob(self, z):
        """log p(z) at each point of ``z`` (shape (..., d)), in the dtype of ``z``."""
        device = z.device
        if self._precision_sd is None:
            value = mixture_log_prob(z.to(torch.float64), self._log_weights.to(device),
                                     self.means.to(device),
                                     self._precision_cholesky.to(device))
        else:  # diagonal covariances (more than 32 latent dimensions): O(d), not O(d**2)
            value = diagonal_mixture_log_prob(z.to(torch.float64),
                                              self._log_weights.to(device),
                                              self.means.to(device),
                                              self._precision_sd.to(device))
        return value.to(z.dtype)

    def sample(self, n_samples, generator):
        """``n_samples`` points from the mixture (float32, CPU), every draw from ``generator``."""
        chosen = torch.multinomial(self.weights, n_samples, replacement=True,
                                   generator=generator)
        noise = torch.randn((n_samples, self.n_components), generator=generator,
                            dtype=torch.float64)
        z = self.means[chosen] + (self._cholesky[chosen] @ noise[:, :, None])[:, :, 0]
        return z.to(torch.float32)

    def to_tensors(self):
        """The model file's entries for this prior, named as in ``PRIOR_TENSORS``."""
        return dict(zip(PRIOR_TENSORS, (self.weights.contiguous(), self.means.contiguous(),
                                        self.covariances.contiguous())))

    @classmethod
    def from_tensors(cls, tensors, n_components):
        """The prior a model file's entries describe, checked; None when it has none.

        Raises ``ValueError`` when only some of the entries are there, or when
        :meth:`checked` refuses them.
        """
        present = [name for name in PRIOR_TENSORS if name in tensors]
        if not present:
            return None
        if len(present) != len(PRIOR_TENSORS):
            raise ValueError(f"the sampling prior has the entries {present}, expected "
                             f"all of {list(PRIOR_TENSORS)}.")
        return cls.checked(*(tensors[name] for name in PRIOR_TENSORS), n_components)
