"""Torch modules: encoders, decoders and the VAE that joins them to a likelihood.

Only ``nn.Module`` definitions live here. Training loops, seeding and numpy
conversion belong to ``_training`` and the estimator layer.
"""

import torch
from torch import nn

from ._losses import (
    diagonal_normal_log_prob,
    importance_weighted_log_likelihood,
    kl_divergence_standard_normal,
    negative_elbo,
    reparameterize,
    standard_normal_log_prob,
)

ACTIVATIONS = {
    "identity": nn.Identity,
    "logistic": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
}

# exp(20) and exp(-20) bound the posterior variance; beyond them the exponent
# overflows float32 long before the optimiser notices anything is wrong.
_LOG_VARIANCE_BOUND = 20.0


def dense_stack(n_inputs, layer_sizes, activation):
    """Linear layers of the given widths, each followed by the activation."""
    layers = []
    for width in layer_sizes:
        layers += [nn.Linear(n_inputs, width), ACTIVATIONS[activation]()]
        n_inputs = width
    return nn.Sequential(*layers), n_inputs


class DenseEncoder(nn.Module):
    """Multilayer perceptron from x to the mean and log-variance of q(z | x)."""

    def __init__(self, n_features, hidden_layer_sizes, n_components, activation):
        super().__init__()
        self.body, width = dense_stack(n_features, hidden_layer_sizes, activation)
        self.head = nn.Linear(width, 2 * n_components)

    def forward(self, x):
        mean, log_variance = self.head(self.body(x)).chunk(2, dim=-1)
        return mean, log_variance.clamp(-_LOG_VARIANCE_BOUND, _LOG_VARIANCE_BOUND)


class DenseDecoder(nn.Module):
    """Multilayer perceptron from z to the likelihood's parameters."""

    def __init__(self, n_components, hidden_layer_sizes, n_outputs, activation):
        super().__init__()
        self.body, width = dense_stack(n_components, hidden_layer_sizes, activation)
        self.head = nn.Linear(width, n_outputs)

    def forward(self, z):
        return self.head(self.body(z))


class VAE(nn.Module):
    """Encoder, decoder and likelihood, with the objective and the bound on log p(x).

    Random noise is always passed in, never drawn here, so the caller decides how
    it is seeded and shared between rows.
    """

    def __init__(self, encoder, decoder, likelihood):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.likelihood = likelihood

    def loss(self, x, noise, beta):
        """Mean over the batch of the negative ELBO, and its per-row values."""
        mean, log_variance = self.encoder(x)
        z = reparameterize(mean, log_variance, noise)
        reconstruction = self.likelihood.log_prob(x, self.decoder(z))
        kl = kl_divergence_standard_normal(mean, log_variance)
        per_row = negative_elbo(reconstruction, kl, beta)
        return per_row.mean(), per_row

    def log_likelihood(self, x, noise):
        """Importance-weighted estimate of log p(x), one value per row.

        ``noise`` has shape (K, n_components) and is shared by all rows, so a row's
        estimate does not depend on the other rows in the batch.
        """
        mean, log_variance = self.encoder(x)
        z = reparameterize(mean, log_variance, noise[:, None, :])  # (K, n, d)
        decoded = self.decoder(z.reshape(-1, z.shape[-1]))
        decoded = decoded.reshape(z.shape[0], z.shape[1], -1)
        return importance_weighted_log_likelihood(
            self.likelihood.log_prob(x, decoded),
            standard_normal_log_prob(z),
            diagonal_normal_log_prob(z, mean, log_variance),
        )


def build_dense_vae(
    n_features, n_components, hidden_layer_sizes, activation, likelihood_class
):
    """A VAE with dense encoder and mirrored dense decoder."""
    likelihood = likelihood_class(n_features)
    return VAE(
        DenseEncoder(n_features, hidden_layer_sizes, n_components, activation),
        DenseDecoder(
            n_components,
            tuple(reversed(hidden_layer_sizes)),
            likelihood.n_decoder_outputs,
            activation,
        ),
        likelihood,
    )


@torch.no_grad()
def map_in_fixed_chunks(function, x, chunk_size):
    """Apply ``function`` to ``x`` in chunks of exactly ``chunk_size`` rows.

    The last chunk is padded with zero rows and the padding's output dropped. A
    fixed shape makes the backend pick the same matrix kernels every time, so a
    row's output is bit-identical whatever else is in the batch (on CPU, a 1-row
    matmul and a 1000-row one sum in different orders).
    """
    outputs = []
    for start in range(0, x.shape[0], chunk_size):
        chunk = x[start : start + chunk_size]
        n_rows = chunk.shape[0]
        if n_rows < chunk_size:
            padding = chunk.new_zeros((chunk_size - n_rows,) + chunk.shape[1:])
            chunk = torch.cat([chunk, padding])
        result = function(chunk)
        if isinstance(result, tuple):
            outputs.append(tuple(r[:n_rows] for r in result))
        else:
            outputs.append(result[:n_rows])
    if outputs and isinstance(outputs[0], tuple):
        return tuple(torch.cat(parts) for parts in zip(*outputs))
    return torch.cat(outputs)
