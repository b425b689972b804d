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


def _conv_sizes(size, n_layers):
    """Spatial size after each stride-2, padding-1, 3x3 convolution: ceil(size / 2)."""
    sizes = [size]
    for _ in range(n_layers):
        sizes.append((sizes[-1] + 1) // 2)
    return sizes


class ConvEncoder(nn.Module):
    """Convolutions, then one dense layer, to the mean and log-variance of q(z | x).

    Each convolution is 3x3 with stride 2 and padding 1, so it halves the height
    and width (rounding up) of any image, down to 1 x 1. Rows arrive flat and are
    reshaped here to ``image_shape`` (channel-first), so the rest of the package
    sees flat rows only.
    """

    def __init__(self, image_shape, conv_channels, dense_width, n_components, activation):
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.n_components = n_components
        n_channels, height, width = self.image_shape
        layers = []
        for channels in conv_channels:
            layers += [
                nn.Conv2d(n_channels, channels, 3, stride=2, padding=1),
                ACTIVATIONS[activation](),
            ]
            n_channels = channels
        self.convolutions = nn.Sequential(*layers)
        n_flat = (
            n_channels
            * _conv_sizes(height, len(conv_channels))[-1]
            * _conv_sizes(width, len(conv_channels))[-1]
        )
        self.body = nn.Sequential(
            nn.Linear(n_flat, dense_width), ACTIVATIONS[activation]()
        )
        self.head = nn.Linear(dense_width, 2 * n_components)

    def forward(self, x):
        images = x.reshape(x.shape[:-1] + self.image_shape)
        features = self.convolutions(images).flatten(start_dim=-3)
        mean, log_variance = self.head(self.body(features)).chunk(2, dim=-1)
        return mean, log_variance.clamp(-_LOG_VARIANCE_BOUND, _LOG_VARIANCE_BOUND)


class ConvDecoder(nn.Module):
    """One dense layer, then transposed convolutions mirroring :class:`ConvEncoder`.

    Each transposed convolution doubles the height and width; its
    ``output_padding`` (0 or 1) is chosen per dimension so that every layer gives
    back exactly the size the matching encoder layer received, so the output is
    ``image_shape`` for any image size, odd or even, with no cropping. A final
    stride-1 transposed convolution maps to ``n_output_channels`` (the
    likelihood's parameters per pixel), and the result is flattened.
    """

    def __init__(
        self, n_components, conv_channels, image_shape, n_output_channels, activation
    ):
        super().__init__()
        _, height, width = image_shape
        heights = _conv_sizes(height, len(conv_channels))
        widths = _conv_sizes(width, len(conv_channels))
        self.start_shape = (conv_channels[-1], heights[-1], widths[-1])
        self.body = nn.Sequential(
            nn.Linear(n_components, conv_channels[-1] * heights[-1] * widths[-1]),
            ACTIVATIONS[activation](),
        )
        layers = []
        n_channels = conv_channels[-1]
        for i, channels in enumerate(reversed(conv_channels)):
            level = len(conv_channels) - i  # size goes heights[level] -> heights[level - 1]
            output_padding = tuple(
                sizes[level - 1] - (2 * sizes[level] - 1) for sizes in (heights, widths)
            )
            layers += [
                nn.ConvTranspose2d(
                    n_channels, channels, 3, stride=2, padding=1,
                    output_padding=output_padding,
                ),
                ACTIVATIONS[activation](),
            ]
            n_channels = channels
        layers.append(nn.ConvTranspose2d(n_channels, n_output_channels, 3, padding=1))
        self.deconvolutions = nn.Sequential(*layers)

    def forward(self, z):
        images = self.body(z).reshape(z.shape[:-1] + self.start_shape)
        return self.deconvolutions(images).flatten(start_dim=-3)


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

    @property
    def n_components(self):
        """Dimension of the latent space (the encoder head gives mean and log-variance)."""
        return self.encoder.head.out_features // 2

    def loss(self, x, noise, beta):
        """Negative ELBO of each row (one reparameterised sample per row)."""
        mean, log_variance = self.encoder(x)
        z = reparameterize(mean, log_variance, noise)
        reconstruction = self.likelihood.log_prob(x, self.decoder(z))
        kl = kl_divergence_standard_normal(mean, log_variance)
        return negative_elbo(reconstruction, kl, beta)

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


def build_conv_vae(
    image_shape, n_components, conv_channels, dense_width, activation, likelihood_class
):
    """A VAE with convolutional encoder and mirrored transposed-convolution decoder.

    ``image_shape`` is ``(channels, height, width)``; the rows the VAE sees are the
    flattened images, ``channels * height * width`` values each.
    """
    n_channels, height, width = image_shape
    likelihood = likelihood_class(n_channels * height * width)
    n_outputs = likelihood.n_decoder_outputs
    if n_outputs % (height * width):
        raise ValueError(
            f"The {likelihood.name} likelihood needs {n_outputs} decoder outputs, "
            f"not a whole number of {height} x {width} images; it cannot be used "
            "with architecture='conv'."
        )
    return VAE(
        ConvEncoder(image_shape, conv_channels, dense_width, n_components, activation),
        ConvDecoder(
            n_components, conv_channels, image_shape, n_outputs // (height * width),
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
