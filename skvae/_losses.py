"""The variational objective as pure torch functions.

Nothing here holds state or knows about networks: each function maps tensors to
tensors and is tested against a closed form or a brute-force estimate.
"""

import math

import torch

_LOG_2PI = math.log(2.0 * math.pi)


def kl_divergence_standard_normal(mean, log_variance):
    """KL( N(mean, diag(exp(log_variance))) || N(0, I) ), summed over the last axis.

    Parameters
    ----------
    mean, log_variance : torch.Tensor of shape (..., n_components)
        Parameters of the diagonal Gaussian posterior q(z | x).

    Returns
    -------
    torch.Tensor of shape (...)
        The closed form ``0.5 * sum(exp(lv) + mean**2 - 1 - lv)``, in nats.
    """
    return 0.5 * (log_variance.exp() + mean**2 - 1.0 - log_variance).sum(-1)


def standard_normal_log_prob(z):
    """log N(z; 0, I), summed over the last axis."""
    return -0.5 * (z**2 + _LOG_2PI).sum(-1)


def diagonal_normal_log_prob(z, mean, log_variance):
    """log N(z; mean, diag(exp(log_variance))), summed over the last axis."""
    return -0.5 * (
        _LOG_2PI + log_variance + (z - mean) ** 2 * torch.exp(-log_variance)
    ).sum(-1)


def reparameterize(mean, log_variance, noise):
    """Posterior sample ``z = mean + sigma * noise``, differentiable in both parameters.

    ``noise`` is standard normal and broadcastable to ``mean``; passing it in, rather
    than drawing it here, keeps the function pure and lets callers control seeding.
    """
    return mean + torch.exp(0.5 * log_variance) * noise


def negative_elbo(reconstruction_log_prob, kl, beta=1.0):
    """Per-sample loss ``-(log p(x | z) - beta * KL(q(z | x) || p(z)))``."""
    # beta = 1 is the common case; skipping the multiply saves a kernel per step.
    return (kl if beta == 1 else beta * kl) - reconstruction_log_prob


def trimmed_mean(values, trim_fraction):
    """Mean of ``values`` without their ``trim_fraction`` largest entries.

    Used as a robust training objective: with per-row losses, the rows the model
    explains worst (in contaminated data, mostly the anomalies) do not pull on the
    weights. At least one value is always kept; 0 gives the plain mean.

    Parameters
    ----------
    values : torch.Tensor of shape (n,)
    trim_fraction : float in [0, 1)

    Returns
    -------
    torch.Tensor of shape ()
    """
    if trim_fraction == 0:
        return values.mean()
    n_kept = max(1, int(round(values.shape[0] * (1.0 - trim_fraction))))
    return torch.topk(values, n_kept, largest=False).values.mean()


def importance_weighted_log_likelihood(log_px_given_z, log_pz, log_qz_given_x):
    """Importance-weighted estimate of log p(x) from K posterior samples.

    ``log p(x) ~= logsumexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)] - log K``
    with ``z_k ~ q(z | x)`` (Burda et al., 2016). With K = 1 it is the ELBO; it is a
    lower bound in expectation that tightens as K grows.

    Parameters
    ----------
    log_px_given_z, log_pz, log_qz_given_x : torch.Tensor of shape (K, ...)
        The three log-densities at each of the K samples (axis 0).

    Returns
    -------
    torch.Tensor of shape (...)
    """
    log_weights = log_px_given_z + log_pz - log_qz_given_x
    n_samples = log_weights.shape[0]
    return torch.logsumexp(log_weights, dim=0) - math.log(n_samples)



def tukey_upper_fence(values, k=3.0):
    """``Q3 + k * IQR`` of ``values``, the far-out fence above which a value is an outlier."""
    q1, q3 = torch.quantile(values, torch.tensor([0.25, 0.75], dtype=values.dtype,
                                                 device=values.device))
    return q3 + k * (q3 - q1)


def labelled_anomaly_hinge(anomaly_losses, reference_losses):
    """Mean hinge ``max(0, fence - loss)`` over the labelled anomalies' losses.

    The term that trains a model to give labelled anomalies low likelihood, a
    hinge on their bound in the spirit of Deep SAD's term for labelled
    anomalies (Ruff et al., 2020): zero for an anomaly whose loss (negative
    ELBO) is above the far-out fence of the other rows' losses, ``Q3 + 3 IQR``
    of ``reference_losses`` (detached: the hinge moves the anomalies, not the
    target), and linear below it. That fence is where the detector's
    ``contamination="auto"`` threshold lies, so a labelled anomaly past it is
    flagged. Quartiles, unlike the maximum, are not moved by the unlabelled
    anomalies among the reference rows; a target that they could move would
    chase itself upwards as they come to look like the labelled ones. And
    being bounded, the hinge never rewards pushing a loss towards infinity.

    Parameters
    ----------
    anomaly_losses : torch.Tensor of shape (m,)
        Per-row losses of the labelled anomalies.
    reference_losses : torch.Tensor of shape (n,)
        Per-row losses of the other rows of the step.

    Returns
    -------
    torch.Tensor of shape ()
    """
    target = tukey_upper_fence(reference_losses.detach())
    return torch.relu(target - anomaly_losses).mean()
