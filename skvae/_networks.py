"""Torch modules: encoders, decoders and the VAE that joins them to a likelihood.

``nn.Module`` definitions, and :class:`NetworkSpec`, the plain description of a
network that builds it: the estimator turns its parameters into a spec once, at
fit time, so the network can be rebuilt exactly (by ``skvae.load``) whatever
``set_params`` did since. Training loops, seeding and numpy conversion belong to
``_training`` and the estimator layer.
"""

import math
from dataclasses import asdict, dataclass
from numbers import Integral

import numpy as np
import torch
from torch import nn

from ._likelihoods import LIKELIHOODS, MixedLikelihood
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

# Bounds on the networks a spec may describe, checked arithmetically before
# anything is built: parameters and model files beyond them are refused with a
# message naming the size, instead of overflowing torch's 64-bit sizes or
# costing minutes and gigabytes. MAX_WEIGHTS weights are 64 GiB in float32 and
# 256 GiB with Adam's state during training, beyond any single accelerator;
# every size (a width, a channel count, n_components, n_features, an image
# side) is one dimension of a weight or of a row, so none may exceed it either.
MAX_WEIGHTS = 2**34
# Layers per stack (hidden_layer_sizes, conv_channels): far deeper than a VAE
# without skip connections trains, and it bounds what building a network costs
# (50,000 layers take half a minute even on torch's ``meta`` device).
MAX_LAYERS = 256
# The most tensors a network within MAX_LAYERS holds: two per layer in each of
# the encoder's and the decoder's stacks; two per head, dense layer and last
# transposed convolution (8 for "conv"); one for the Gaussian variances.
MAX_WEIGHT_TENSORS = 4 * MAX_LAYERS + 9

# hidden_layer_sizes="auto": the widths for rows of at least WIDE_ROW values
# (images such as MNIST's 784 pixels), and for narrower rows (tables, the 64
# pixels of the digits). The narrow network has a third of the wide one's
# weights on a 64-value row (50,000 against 167,000 in the encoder), and with
# it the new defaults beat the held-out likelihood of the old (512, 256) ones
# on the digits and two real tables in 0.34-0.64 of their one-thread time
# (benchmarks/results_defaults.md, issue 20). MNIST-8k keeps the (512, 256) it
# was tuned with.
WIDE_ROW = 256
AUTO_HIDDEN_LAYER_SIZES = {"wide": (512, 256), "narrow": (256, 128)}


def auto_hidden_layer_sizes(n_values):
    """The encoder widths ``hidden_layer_sizes="auto"`` gives rows of ``n_values`` values.

    Examples
    --------
    >>> from skvae._networks import auto_hidden_layer_sizes
    >>> auto_hidden_layer_sizes(784), auto_hidden_layer_sizes(64)
    ((512, 256), (256, 128))
    """
    return AUTO_HIDDEN_LAYER_SIZES["wide" if n_values >= WIDE_ROW else "narrow"]


def dense_stack(n_inputs, layer_sizes, activation):
    """Linear layers of the given widths, each followed by the activation."""
    layers = []
    for width in layer_sizes:
        layers += [nn.Linear(n_inputs, width), ACTIVATIONS[activation]()]
        n_inputs = width
    return nn.Sequential(*layers), n_inputs


# Rounds of filling a row's holes with its reconstruction before an encoder that
# never saw holes reads it (see VAE._completed).
_COMPLETION_ROUNDS = 3


def initialize_weights(module, generator):
    """Draw the initial weights of every layer of ``module`` from ``generator``.

    The draws are torch's own default initialisation (``reset_parameters`` of
    ``nn.Linear`` and the convolutions, in the order the layers were built),
    but from a generator of the caller's rather than torch's process-wide one:
    fitting never reads or changes the global random state, so fits in other
    threads and the user's own seeded draws are undisturbed. With a generator
    seeded as ``torch.manual_seed`` would seed the global one, the weights are
    bit-identical to torch's. Parameters that are not drawn (the Gaussian's
    starting variance) are set by their module's ``reset_parameters``.
    """
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, (nn.Linear, nn.modules.conv._ConvNd)):
                nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
                if layer.bias is not None:
                    fan_in, _ = nn.init._calculate_fan_in_and_fan_out(layer.weight)
                    bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
                    nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
            elif layer is not module and hasattr(layer, "reset_parameters"):
                layer.reset_parameters()
    return module


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

    The dense layer has ``dense_width`` units and the network's activation. Its
    inputs are the last convolution's activations, thousands of them, all
    non-negative with ReLU, so one Adam step moves a unit's pre-activation for
    all images at once, and a ReLU unit can die in the first few dozen steps
    and never recover. With the Keras example's 16 units that happens to most
    of them (on MNIST, 9 of 16 by step 38 at lr 1e-3; all but one at lr 3e-3,
    where every image then decodes to the average digit). A wide layer keeps
    the encoder nonlinear past the convolutions, which the 2-D code needs, and
    learns: on MNIST-8k at 30 epochs (batches of 32), 512 ReLU
    units reach -148.5 nats and 256 reach -149.2, where 16 linear units reached
    -155.1 and the Keras example's 16 ReLU units -179.8 (see
    ``benchmarks/results_conv_plateau.md``). 256 is the transformer's
    default: on MNIST-8k (16-D code, 10 epochs) it fitted as well as 512 at a
    fifth less CPU time an epoch (``benchmarks/results_conv_cost.md``).
    """

    def __init__(self, image_shape, conv_channels, dense_width, n_components, activation):
        super().__init__()
        self.image_shape = tuple(image_shape)
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
        self.body = nn.Sequential(nn.Linear(n_flat, dense_width), ACTIVATIONS[activation]())
        self.head = nn.Linear(dense_width, 2 * n_components)

    def forward(self, x):
        images = x.reshape(x.shape[:-1] + self.image_shape)
        features = self.convolutions(images).flatten(start_dim=-3)
        mean, log_variance = self.head(self.body(features)).chunk(2, dim=-1)
        return mean, log_variance.clamp(-_LOG_VARIANCE_BOUND, _LOG_VARIANCE_BOUND)


# How a ConvDecoder climbs back to full resolution (``NetworkSpec.conv_decoder``).
# "mirror": each transposed convolution undoes one encoder convolution, the last
# one giving the likelihood's parameters per pixel, so the decoder costs what
# the encoder does. "full_resolution": the Keras example's layout, of files
# written before it was added: each transposed convolution gives the channels
# of the encoder layer *below* it (the widest at the full image size), then a
# stride-1 transposed convolution maps to the parameters. It spends 5.4 of the
# network's 8.3 million multiply-adds per 28 x 28 image in its layers at
# 14 x 14 and 28 x 28 (the "mirror" network needs 3.6 million), its epoch takes
# twice as long. On MNIST the "mirror" network was 3.7 nats behind after the
# same 10 epochs, and 1.7 nats ahead after the same CPU time (one seed; see
# benchmarks/results_conv_cost.md).
CONV_DECODERS = ("mirror", "full_resolution")


class ConvDecoder(nn.Module):
    """One dense layer, then transposed convolutions mirroring :class:`ConvEncoder`.

    Each stride-2 transposed convolution doubles the height and width; its
    ``output_padding`` (0 or 1) is chosen per dimension so that every layer gives
    back exactly the size the matching encoder layer received, so the output is
    ``image_shape`` for any image size, odd or even, with no cropping. With
    ``layout="mirror"`` the transposed convolutions give the encoder's channels
    in reverse, the last one the likelihood's ``n_output_channels`` parameters
    per pixel. With ``layout="full_resolution"`` (model files written before
    ``"mirror"`` existed) they give ``reversed(conv_channels)``, and a final
    stride-1 transposed convolution maps to the parameters. The result is
    flattened.
    """

    def __init__(
        self, n_components, conv_channels, image_shape, n_output_channels, activation,
        layout="full_resolution",
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
        outputs = _deconvolution_channels(conv_channels, n_output_channels, layout)
        layers = []
        n_channels = conv_channels[-1]
        for i, channels in enumerate(outputs[: len(conv_channels)]):
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
        if layout == "mirror":
            layers.pop()  # the parameters are unbounded: no activation on them
        else:
            layers.append(nn.ConvTranspose2d(n_channels, n_output_channels, 3, padding=1))
        self.deconvolutions = nn.Sequential(*layers)

    def forward(self, z):
        images = self.body(z).reshape(z.shape[:-1] + self.start_shape)
        return self.deconvolutions(images).flatten(start_dim=-3)


def _deconvolution_channels(conv_channels, n_output_channels, layout):
    """Output channels of each transposed convolution of a :class:`ConvDecoder`."""
    conv_channels = tuple(conv_channels)
    if layout == "mirror":
        return conv_channels[-2::-1] + (n_output_channels,)
    if layout == "full_resolution":
        return conv_channels[::-1] + (n_output_channels,)
    raise ValueError(f"conv decoder layout {layout!r} is not one of {CONV_DECODERS}.")


class VAE(nn.Module):
    """Encoder, decoder and likelihood, with the objective and the bound on log p(x).

    Random noise is always passed in, never drawn here, so the caller decides how
    it is seeded and shared between rows.

    Missing entries are NaN in ``x``. The encoder reads them as 0 (the mean of a
    standardised column, no category) and, with ``mask_input``, also reads which
    entries are observed; the likelihood leaves them out. So every bound here is a
    bound on the likelihood of the observed entries, log p(x_obs): the
    importance-weighted bound holds for any encoder, and the mask only makes the
    encoder's proposal better (Mattei and Frellsen, 2019).
    """

    def __init__(self, encoder, decoder, likelihood, mask_input=False):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.likelihood = likelihood
        self.mask_input = mask_input

    @staticmethod
    def _split_missing(x):
        """``(x with 0 for NaN, observed mask)``; the mask is None for complete rows."""
        # On the training hot path: one reduction, no boolean tensor, for
        # complete rows (a NaN anywhere makes the sum NaN).
        if not torch.isnan(x.sum()):
            return x, None
        missing = torch.isnan(x)
        return x.masked_fill(missing, 0.0), ~missing

    def _encode_filled(self, x, observed):
        if self.mask_input:
            mask = torch.ones_like(x) if observed is None else observed.to(x.dtype)
            x = torch.cat([x, mask], dim=-1)
        elif observed is not None:
            x = self._completed(x, observed)
        return self.encoder(x)

    @torch.no_grad()
    def _completed(self, x, observed):
        """``x`` with its holes filled by the model's own reconstruction of the row.

        An encoder trained on complete rows never saw a hole: read as 0, a
        missing entry is a wrong value, the posterior it gives is far from the
        row's, and the importance-weighted bound with it as the proposal is far
        below log p(x_obs) (the detector flagged 33% of normal rows with one
        hole, against 5% of complete ones). Filling the holes with the decoder's
        mean at the row's code, a few rounds, gives a proposal near the
        posterior of the observed entries. Any proposal gives a valid bound, so
        this changes how tight it is, not what it bounds; no gradient flows
        through the filling.
        """
        for _ in range(_COMPLETION_ROUNDS):
            mean, _ = self.encoder(x)
            x = torch.where(observed, x, self.likelihood.mean(self.decoder(mean)))
        return x

    def encode(self, x):
        """Mean and log-variance of q(z | x) for rows that may have missing entries."""
        return self._encode_filled(*self._split_missing(x))

    def reconstruction_log_prob(self, x):
        """log p(x_obs | z = E[z | x]) per row: the deterministic reconstruction's likelihood."""
        x, observed = self._split_missing(x)
        mean, _ = self._encode_filled(x, observed)
        return self.likelihood.log_prob(x, self.decoder(mean), observed)

    def missing_entropy(self, x):
        """Entropy of p(x_mis | z = E[z | x]) per row: 0 for complete rows.

        The expected log-likelihood that the missing entries would add to the
        row's, with the sign flipped; see ``VAEOutlierDetector``.
        """
        x, observed = self._split_missing(x)
        if observed is None:
            return x.new_zeros(x.shape[:-1])
        mean, _ = self._encode_filled(x, observed)
        entropy = self.likelihood.entropy(self.decoder(mean))
        return torch.where(observed, 0.0, entropy).sum(-1)

    def reconstruction_feature_terms(self, x):
        """log p(x_j | z = E[z | x]) of each column of each row, shape (n, n_columns).

        The terms of :meth:`reconstruction_log_prob` before the sum, one per
        column of the likelihood (a categorical column is one); a missing column
        holds its expected term, minus the entropy of p(x_j | z = E[z | x]), the
        term :meth:`missing_entropy` sums.
        """
        x, observed = self._split_missing(x)
        mean, _ = self._encode_filled(x, observed)
        params = self.decoder(mean)
        return self._completed_terms(self.likelihood.log_prob_terms(x, params), params,
                                     observed)

    def posterior_feature_terms(self, x, noise, log_prior=standard_normal_log_prob):
        """log p(x_j | z) of each column, averaged over p(z | x_obs) by importance weights.

        ``noise`` holds K posterior draws per row, as for :meth:`log_likelihood`;
        the average uses their self-normalised importance weights, those of
        :meth:`conditional_mean`, so it estimates the expectation under the
        posterior p(z | x_obs), not under the encoder's q(z | x). Shape
        (n, n_columns); a missing column holds minus its entropy at
        ``z = E[z | x]``, as in :meth:`reconstruction_feature_terms`.
        """
        params, weights = self._importance_weights(x, noise, log_prior)
        filled, observed = self._split_missing(x)
        terms = (weights[..., None] * self.likelihood.log_prob_terms(filled, params)).sum(0)
        if observed is None:
            return terms
        mean, _ = self._encode_filled(filled, observed)
        return self._completed_terms(terms, self.decoder(mean), observed)

    def _completed_terms(self, terms, params, observed):
        """Per-column ``terms`` with each missing column's expected term, ``-H(p(x_j | z))``."""
        if observed is None:
            return terms
        return torch.where(self.likelihood.column_observed(observed), terms,
                           -self.likelihood.column_entropy(params))

    @property
    def n_components(self):
        """Dimension of the latent space (the encoder head gives mean and log-variance)."""
        return self.encoder.head.out_features // 2

    def forward(self, x, noise, beta):
        """The training loss, :meth:`loss`, so ``torch.func.functional_call`` works."""
        return self.loss(x, noise, beta)

    def loss(self, x, noise, beta):
        """Negative ELBO of each row (one reparameterised sample per row).

        With K draws per row, ``noise`` of shape (K, n, n_components), it is
        the negative importance-weighted bound instead (IWAE, and MIWAE on
        incomplete rows), which has no ``beta``.
        """
        if noise.dim() == 3:
            return -self.log_likelihood(x, noise)
        x, observed = self._split_missing(x)
        mean, log_variance = self._encode_filled(x, observed)
        z = reparameterize(mean, log_variance, noise)
        reconstruction = self.likelihood.log_prob(x, self.decoder(z), observed)
        kl = kl_divergence_standard_normal(mean, log_variance)
        return negative_elbo(reconstruction, kl, beta)

    def log_likelihood(self, x, noise, log_prior=standard_normal_log_prob):
        """Importance-weighted estimate of log p(x), one value per row.

        ``noise`` holds K standard-normal draws per row, shape
        (K, n, n_components), or K draws shared by every row, shape
        (K, n_components). Either way a row's estimate depends on its own draws
        only, not on the other rows in the batch. ``log_prior`` is the prior's
        log-density, log p(z): the bound is one for the model with that prior
        (see :mod:`skvae._priors`); training uses N(0, I).
        """
        _, log_terms = self._posterior_draws(x, noise, log_prior)
        return importance_weighted_log_likelihood(*log_terms)

    def _posterior_draws(self, x, noise, log_prior=standard_normal_log_prob, prior_z=None):
        """The decoder's parameters at K posterior draws per row, and their log-densities.

        Returns ``params`` of shape (K, n, outputs) and the three terms of the
        importance weights, ``(log p(x_obs | z), log p(z), log q(z))``, each of
        shape (K, n), where ``q`` is the proposal the draws come from. With
        ``prior_z`` (shape (K_p, n, n_components), draws from the prior) the
        draws are the K - K_p posterior draws of ``noise`` and those, and ``q``
        is the mixture of the posterior and the prior in those proportions.
        """
        x, observed = self._split_missing(x)
        mean, log_variance = self._encode_filled(x, observed)
        if noise.dim() == 2:
            noise = noise[:, None, :]
        z = reparameterize(mean, log_variance, noise)  # (K, n, d)
        if prior_z is not None:
            z = torch.cat([z, prior_z.to(z.dtype)], dim=0)
        params = self.decoder(z.reshape(-1, z.shape[-1])).reshape(z.shape[0], z.shape[1], -1)
        log_pz = log_prior(z)
        log_qz = diagonal_normal_log_prob(z, mean, log_variance)
        if prior_z is not None:
            log_qz = defensive_log_proposal(log_qz, log_pz, noise.shape[0])
        return params, (self.likelihood.log_prob(x, params, observed), log_pz, log_qz)

    def _importance_weights(self, x, noise, log_prior=standard_normal_log_prob, prior_z=None):
        """Parameters at K draws and their self-normalised importance weights.

        The weights, shape (K, n), are those of sampling importance resampling
        from p(z | x_obs); see :meth:`_posterior_draws` for ``prior_z``.
        """
        params, (log_px_z, log_pz, log_qz) = self._posterior_draws(
            x, noise, log_prior, prior_z)
        return params, torch.softmax(log_px_z + log_pz - log_qz, dim=0)

    def conditional_mean(self, x, noise, log_prior=standard_normal_log_prob, prior_z=None):
        """Importance-weighted E[x | x_obs] per row, in the likelihood's layout.

        Means of numeric entries and probabilities of categories, averaged over
        the posterior draws with their importance weights (the single imputation
        of Mattei and Frellsen, 2019).
        """
        params, weights = self._importance_weights(x, noise, log_prior, prior_z)
        return (weights[..., None] * self.likelihood.mean(params)).sum(0)

    def conditional_draw(self, x, noise, generator, log_prior=standard_normal_log_prob,
                         prior_z=None):
        """One draw of x from p(x | x_obs) per row, by sampling importance resampling."""
        params, weights = self._importance_weights(x, noise, log_prior, prior_z)
        chosen = torch.multinomial(weights.T, 1, generator=generator)[:, 0]  # (n,)
        params = params[chosen, torch.arange(params.shape[1], device=params.device)]
        return self.likelihood.sample(params, generator=generator)


def defensive_log_proposal(log_q, log_p, n_posterior):
    """log-density of the proposal mixing the posterior's and the prior's draws.

    ``log_q`` and ``log_p`` (shape (K, n)) are the posterior's and the prior's
    log-densities at K draws, the first ``n_posterior`` drawn from the
    posterior and the rest from the prior. Weighting every draw by the
    mixture of both in those proportions (the balance heuristic of multiple
    importance sampling; Hesterberg's defensive importance sampling) keeps
    the weights ``p(x_obs | z) p(z) / q(z)`` below ``K / K_p`` times
    ``p(x_obs | z)``, however far the posterior proposal is from p(z | x_obs).

    Examples
    --------
    >>> import torch
    >>> defensive_log_proposal(torch.log(torch.tensor([[0.2], [0.2]])),
    ...                        torch.log(torch.tensor([[0.6], [0.6]])), 1).exp()
    tensor([[0.4000],
            [0.4000]])
    """
    k = log_q.shape[0]
    return torch.logaddexp(log_q + math.log(n_posterior / k),
                           log_p + math.log((k - n_posterior) / k))


def build_dense_vae(
    n_features, n_components, hidden_layer_sizes, activation, likelihood, mask_input=False
):
    """A VAE with dense encoder and mirrored dense decoder.

    With ``mask_input`` the encoder also reads, per value, whether it is observed.
    """
    return VAE(
        DenseEncoder(
            2 * n_features if mask_input else n_features, hidden_layer_sizes,
            n_components, activation,
        ),
        DenseDecoder(
            n_components,
            tuple(reversed(hidden_layer_sizes)),
            likelihood.n_decoder_outputs,
            activation,
        ),
        likelihood,
        mask_input=mask_input,
    )


def build_conv_vae(
    image_shape, n_components, conv_channels, dense_width, activation, likelihood,
    decoder_layout="full_resolution",
):
    """A VAE with convolutional encoder and mirrored transposed-convolution decoder.

    ``image_shape`` is ``(channels, height, width)``; the rows the VAE sees are the
    flattened images, ``channels * height * width`` values each.
    ``decoder_layout`` is one of :data:`CONV_DECODERS` (see :class:`ConvDecoder`).
    """
    _, height, width = image_shape
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
            activation, decoder_layout,
        ),
        likelihood,
    )


def _positive_ints(value):
    """``value`` as a tuple of positive ints (maybe empty), or None if it is not one."""
    values = tuple(value) if isinstance(value, (list, tuple)) else None
    if values is None or not all(
        isinstance(v, Integral) and not isinstance(v, bool) and v > 0 for v in values
    ):
        return None
    return tuple(int(v) for v in values)


def _is_auto(value):
    return isinstance(value, str) and value == "auto"


def _as_int_tuple(value):
    """An array-like parameter as a tuple of its entries (Python scalars)."""
    return tuple(np.atleast_1d(np.asarray(value)).tolist())


def check_parameter_sizes(params):
    """Refuse estimator parameters that declare sizes no network skvae builds can have.

    Independent of the data, so it can run with the other parameter checks;
    the network's total size, which depends on the data, is checked by
    :meth:`NetworkSpec.from_params`. Values of the wrong type are left to the
    checks that know what they should be.

    Parameters
    ----------
    params : dict
        The estimator's ``get_params(deep=False)``.

    Raises
    ------
    ValueError
        Naming the parameter: more than :data:`MAX_LAYERS` layers, or a size
        above :data:`MAX_WEIGHTS`.
    """
    for name in ("n_components", "conv_dense_width"):
        value = params.get(name)
        if isinstance(value, Integral) and value > MAX_WEIGHTS:
            raise ValueError(
                f"{name}={value!r} is larger than {MAX_WEIGHTS:,} (2**34), the most "
                f"weights skvae builds in one network; use a smaller {name}."
            )
    for name in ("hidden_layer_sizes", "conv_channels", "image_shape"):
        value = params.get(name)
        if not isinstance(value, (list, tuple, np.ndarray)):
            continue
        try:
            values = _as_int_tuple(value)
        except (TypeError, ValueError):  # ragged: refused by the checks of its type
            continue
        if name != "image_shape" and len(values) > MAX_LAYERS:
            raise ValueError(
                f"{name} has {len(values)} layers, more than the {MAX_LAYERS} skvae "
                f"builds per stack; use fewer layers."
            )
        too_large = [v for v in values if isinstance(v, Integral) and v > MAX_WEIGHTS]
        if too_large:
            raise ValueError(
                f"{name}={_short(values)} holds {too_large[0]!r}, larger than "
                f"{MAX_WEIGHTS:,} (2**34), the most weights skvae builds in one "
                f"network; use smaller sizes."
            )


@dataclass(frozen=True)
class NetworkSpec:
    """Everything that fixes a network's shape: built once per fit, stored with it.

    ``image_shape`` is how rows fold into images, ``(channels, height, width)``;
    the dense network does not use it, but it is kept for plotting. Fields that
    the architecture does not use are empty (``()`` or None), so that changing an
    unused parameter does not change the spec. ``n_features`` is the width of the
    network's rows (a categorical column takes one per category).
    ``column_layout`` is ``(n_gaussian, n_bernoulli, *levels)`` for the
    ``"mixed"`` likelihood of a table and ``()`` otherwise; ``mask_input`` says
    whether the encoder also reads which entries are observed (dense networks
    fitted on data with missing values). ``conv_decoder`` is the conv decoder's
    layout, one of :data:`CONV_DECODERS`: ``"mirror"`` for new fits,
    ``"full_resolution"`` for files written before the field existed (and for
    a conv spec built without it); None for ``"dense"``.
    """

    architecture: str
    n_features: int
    n_components: int
    likelihood: str
    activation: str
    hidden_layer_sizes: tuple
    image_shape: tuple
    conv_channels: tuple
    conv_dense_width: object  # int for "conv", None for "dense"
    column_layout: tuple = ()
    mask_input: bool = False
    conv_decoder: object = None

    def __post_init__(self):
        # A conv spec without a layout is one from before layouts existed.
        if self.architecture == "conv" and self.conv_decoder is None:
            object.__setattr__(self, "conv_decoder", "full_resolution")

    @classmethod
    def from_params(cls, params, n_features, likelihood, column_layout=(), mask_input=False):
        """The spec the estimator parameters ``params`` describe for ``n_features`` columns.

        Raises
        ------
        ValueError
            Naming the parameter that cannot describe a network for this data.
        """
        check_parameter_sizes(params)
        sizes = params["hidden_layer_sizes"]
        sizes = (auto_hidden_layer_sizes(n_features) if _is_auto(sizes)
                 else _positive_ints(_as_int_tuple(sizes)))
        if sizes is None:
            raise ValueError(
                f"hidden_layer_sizes={params['hidden_layer_sizes']!r} must be a sequence "
                "of positive integers, for example (512, 256)."
            )
        conv = params["architecture"] == "conv"
        channels = _positive_ints(_as_int_tuple(params["conv_channels"])) if conv else ()
        if conv and not channels:
            raise ValueError(
                f"conv_channels={params['conv_channels']!r} must be a non-empty "
                "sequence of positive integers, for example (32, 64)."
            )
        spec = cls(
            architecture=params["architecture"],
            n_features=int(n_features),
            n_components=int(params["n_components"]),
            likelihood=likelihood,
            activation=params["activation"],
            hidden_layer_sizes=() if conv else sizes,
            image_shape=_image_shape(params["image_shape"], n_features),
            conv_channels=channels,
            conv_dense_width=int(params["conv_dense_width"]) if conv else None,
            column_layout=tuple(column_layout) if likelihood == "mixed" else (),
            # The conv network reads rows as images: no room for a mask.
            mask_input=bool(mask_input) and not conv,
            conv_decoder="mirror" if conv else None,
        )
        spec.check_sizes()
        return spec

    def check_sizes(self):
        """Refuse a spec whose network is beyond :data:`MAX_LAYERS` or :data:`MAX_WEIGHTS`.

        Arithmetic only: nothing is built, so a spec declaring 10**30 units or
        50,000 layers costs nothing to refuse.

        Raises
        ------
        ValueError
            Naming the size that is too large.
        """
        for name in ("hidden_layer_sizes", "conv_channels"):
            n_layers = len(getattr(self, name))
            if n_layers > MAX_LAYERS:
                raise ValueError(
                    f"{name} has {n_layers} layers, more than the {MAX_LAYERS} skvae "
                    "builds per stack; use fewer layers."
                )
        sizes = {
            "n_features": [self.n_features], "n_components": [self.n_components],
            "hidden_layer_sizes": self.hidden_layer_sizes, "image_shape": self.image_shape,
            "conv_channels": self.conv_channels,
            "conv_dense_width": [self.conv_dense_width or 1],
        }
        for name, values in sizes.items():
            if max(values, default=1) > MAX_WEIGHTS:
                raise ValueError(
                    f"{name}={_short(values)} is larger than {MAX_WEIGHTS:,} (2**34), "
                    "the most weights skvae builds in one network; use smaller sizes."
                )
        n_weights = sum(math.prod(shape) for shape in self.weight_shapes().values())
        if n_weights > MAX_WEIGHTS:
            layers = (
                f"conv_channels={_short(self.conv_channels)}, conv_dense_width="
                f"{self.conv_dense_width}" if self.architecture == "conv"
                else f"hidden_layer_sizes={_short(self.hidden_layer_sizes)}"
            )
            raise ValueError(
                f"the network would have {n_weights:,} weights (n_components="
                f"{self.n_components}, {layers}, {self.n_features} values per row), "
                f"more than the {MAX_WEIGHTS:,} (2**34) skvae builds; use smaller sizes."
            )

    def weight_shapes(self):
        """The name and shape of every tensor in the network's state dict, by arithmetic.

        What :meth:`build` would give for ``module.state_dict()``, computed
        without building the encoder or decoder, so a file's weights are checked
        against it at a cost bounded by the number of layers. Only the
        likelihood, whose size is that of a row, is built, on torch's ``meta``
        device.

        Returns
        -------
        shapes : dict of str to tuple of int
        """
        with torch.device("meta"):
            likelihood = self._build_likelihood()
        n_outputs = likelihood.n_decoder_outputs
        if self.architecture == "conv":
            shapes = self._conv_weight_shapes(n_outputs)
        else:
            n_inputs = 2 * self.n_features if self.mask_input else self.n_features
            shapes = {
                **_dense_shapes("encoder", n_inputs, self.hidden_layer_sizes,
                                2 * self.n_components),
                **_dense_shapes("decoder", self.n_components,
                                self.hidden_layer_sizes[::-1], n_outputs),
            }
        for name, tensor in likelihood.state_dict().items():
            shapes[f"likelihood.{name}"] = tuple(tensor.shape)
        return shapes

    def _conv_weight_shapes(self, n_outputs):
        """:meth:`weight_shapes` of :class:`ConvEncoder` and :class:`ConvDecoder`."""
        n_channels, height, width = self.image_shape
        if n_outputs % (height * width):
            raise ValueError(
                f"The {self.likelihood} likelihood needs {n_outputs} decoder outputs, "
                f"not a whole number of {height} x {width} images; it cannot be used "
                "with architecture='conv'."
            )
        channels = self.conv_channels
        n_flat = (
            channels[-1]
            * _conv_sizes(height, len(channels))[-1]
            * _conv_sizes(width, len(channels))[-1]
        )
        shapes = {}
        for i, (n_in, n_out) in enumerate(zip((n_channels,) + channels, channels)):
            shapes[f"encoder.convolutions.{2 * i}.weight"] = (n_out, n_in, 3, 3)
            shapes[f"encoder.convolutions.{2 * i}.bias"] = (n_out,)
        shapes.update(_linear_shapes("encoder.body.0", n_flat, self.conv_dense_width))
        shapes.update(_linear_shapes("encoder.head", self.conv_dense_width,
                                     2 * self.n_components))
        shapes.update(_linear_shapes("decoder.body.0", self.n_components, n_flat))
        # Transposed convolutions hold (in, out, 3, 3) weights: each takes the
        # channels the one before gave, starting from the encoder's last.
        outs = _deconvolution_channels(channels, n_outputs // (height * width),
                                       self.conv_decoder)
        for i, (n_in, n_out) in enumerate(zip(channels[-1:] + outs, outs)):
            shapes[f"decoder.deconvolutions.{2 * i}.weight"] = (n_in, n_out, 3, 3)
            shapes[f"decoder.deconvolutions.{2 * i}.bias"] = (n_out,)
        return shapes

    def _build_likelihood(self):
        if self.likelihood == MixedLikelihood.name:
            n_gaussian, n_bernoulli, *levels = self.column_layout
            return MixedLikelihood(n_gaussian, n_bernoulli, levels)
        return LIKELIHOODS[self.likelihood](self.n_features)

    def build(self):
        """The untrained network, weights drawn from torch's global generator."""
        if self.architecture == "conv":
            return build_conv_vae(
                self.image_shape, self.n_components, self.conv_channels,
                self.conv_dense_width, self.activation, self._build_likelihood(),
                self.conv_decoder,
            )
        return build_dense_vae(
            self.n_features, self.n_components, self.hidden_layer_sizes,
            self.activation, self._build_likelihood(), self.mask_input,
        )

    def build_with_weights(self, weights):
        """The network holding ``weights`` (a state dict), checked before anything is allocated.

        The network is built on torch's ``meta`` device, which allocates nothing,
        and the weights are assigned into it only if every name, shape and dtype
        matches: a spec that describes a huge network costs nothing before it is
        refused.

        Raises
        ------
        ValueError
            If the weights do not match the network or are not finite.
        """
        # Names and shapes first, by arithmetic: building costs time in the
        # number of layers, which the weights present must account for.
        self.check_sizes()
        shapes = self.weight_shapes()
        _check_weight_names(shapes, weights)
        for name, tensor in weights.items():
            if tuple(tensor.shape) != shapes[name]:
                raise ValueError(
                    f"weight {name!r} has shape {tuple(tensor.shape)}, but the network "
                    f"needs shape {shapes[name]}."
                )
        with torch.device("meta"):
            module = self.build()
        expected = module.state_dict()
        _check_weight_names(expected, weights)  # the arithmetic agrees with torch
        for name, tensor in weights.items():
            if tensor.shape != expected[name].shape or tensor.dtype != expected[name].dtype:
                raise ValueError(
                    f"weight {name!r} is {tensor.dtype} of shape {tuple(tensor.shape)}, "
                    f"but the network needs {expected[name].dtype} of shape "
                    f"{tuple(expected[name].shape)}."
                )
            if not torch.isfinite(tensor).all():
                raise ValueError(f"weight {name!r} holds NaN or infinite values.")
        module.load_state_dict(weights, strict=True, assign=True)
        return module.eval()

    def to_dict(self):
        """The spec as JSON-ready data; :meth:`from_dict` reads it back.

        ``conv_decoder`` is written only for the ``"mirror"`` layout, so dense
        and ``"full_resolution"`` specs give the document files had before the
        field existed, which older skvae reads too.
        """
        state = {key: list(v) if isinstance(v, tuple) else v for key, v in asdict(self).items()}
        if state["conv_decoder"] in (None, "full_resolution"):
            del state["conv_decoder"]
        return state

    @classmethod
    def from_dict(cls, state):
        """Rebuild from :meth:`to_dict`'s output, checking every field.

        Raises
        ------
        ValueError
            Naming the field that is missing or invalid.
        """
        names = set(cls.__dataclass_fields__)
        if isinstance(state, dict) and set(state) == names - {"conv_decoder"}:
            # Without a layout: a dense network, or a conv one of the layout
            # files had before the field existed.
            conv = state.get("architecture") == "conv"
            state = {**state, "conv_decoder": "full_resolution" if conv else None}
        if not isinstance(state, dict) or set(state) != names:
            raise ValueError("the network description is malformed.")
        if state["architecture"] not in ("dense", "conv"):
            raise ValueError(f"architecture {state['architecture']!r} is not known.")
        if state["likelihood"] not in LIKELIHOODS or state["activation"] not in ACTIVATIONS:
            raise ValueError("the network's likelihood or activation is not known.")
        fields = dict(state)
        conv = state["architecture"] == "conv"
        for key in ("n_features", "n_components") + (("conv_dense_width",) if conv else ()):
            if not _positive_ints([state[key]]):
                raise ValueError(f"the network's {key} is not a positive integer.")
        for key in ("hidden_layer_sizes", "image_shape", "conv_channels"):
            fields[key] = _positive_ints(state[key])
            if fields[key] is None:
                raise ValueError(f"the network's {key} is not a list of positive integers.")
        layout = state["column_layout"]
        if not (isinstance(layout, list) and all(
            type(n) is int and n >= 0 for n in layout
        )):
            raise ValueError("the network's column_layout is not a list of integers.")
        mixed = state["likelihood"] == MixedLikelihood.name
        if mixed != bool(layout) or (mixed and (
            len(layout) < 2 or sum(layout) != state["n_features"] or 0 in layout[2:]
        )):
            raise ValueError("the network's column_layout does not match its likelihood.")
        fields["column_layout"] = tuple(layout)
        if type(state["mask_input"]) is not bool or (conv and state["mask_input"]):
            raise ValueError("the network's mask_input is malformed.")
        if conv != bool(fields["conv_channels"]) or (conv and fields["hidden_layer_sizes"]):
            raise ValueError("the network's layers do not match its architecture.")
        if not conv and state["conv_dense_width"] is not None:
            raise ValueError("the dense network has a conv_dense_width.")
        if state["conv_decoder"] not in (CONV_DECODERS if conv else (None,)):
            raise ValueError("the network's conv_decoder is not known.")
        shape = fields["image_shape"]
        if len(shape) != 3 or math.prod(shape) != state["n_features"]:
            raise ValueError("the network's image_shape does not hold n_features values.")
        spec = cls(**fields)
        spec.check_sizes()
        return spec


def _linear_shapes(prefix, n_inputs, n_outputs):
    """The state-dict shapes of ``nn.Linear(n_inputs, n_outputs)`` named ``prefix``."""
    return {f"{prefix}.weight": (n_outputs, n_inputs), f"{prefix}.bias": (n_outputs,)}


def _dense_shapes(prefix, n_inputs, layer_sizes, n_outputs):
    """The state-dict shapes of a body made by :func:`dense_stack` and a head."""
    shapes = {}
    for i, width in enumerate(layer_sizes):
        shapes.update(_linear_shapes(f"{prefix}.body.{2 * i}", n_inputs, width))
        n_inputs = width
    shapes.update(_linear_shapes(f"{prefix}.head", n_inputs, n_outputs))
    return shapes


def _check_weight_names(expected, weights):
    """Raise ValueError unless ``weights`` holds exactly the tensors named in ``expected``."""
    if set(expected) != set(weights):
        missing = sorted(set(expected) - set(weights))
        extra = sorted(set(weights) - set(expected))
        raise ValueError(
            f"the weights do not match the network: it has {len(expected)} tensors "
            f"and the file {len(weights)} (missing {missing[:3]}, unexpected "
            f"{extra[:3]})."
        )


def _short(values):
    """A list of sizes for a message, at most a few entries of a long one."""
    values = list(values)
    if len(values) <= 4:
        return tuple(values)
    return f"({values[0]}, {values[1]}, ... {len(values)} entries ..., {values[-1]})"


def _image_shape(image_shape, n_features):
    """``image_shape`` as ``(channels, height, width)``, checked against the data.

    ``(height, width)`` means one channel. ``None`` reads each row as a
    1 x 1 x n_features image, so the conv network accepts any number of features
    (a 1-D convolution along the row).
    """
    if image_shape is None:
        return (1, 1, int(n_features))
    shape = tuple(image_shape)
    if len(shape) == 2:
        shape = (1,) + shape
    if len(shape) != 3 or _positive_ints(shape) is None:
        raise ValueError(
            f"image_shape={image_shape!r} must be (channels, height, width) "
            "or (height, width) in positive integers, for example (1, 28, 28)."
        )
    if math.prod(shape) != n_features:
        raise ValueError(
            f"image_shape={image_shape!r} holds {math.prod(shape)} values per "
            f"image, but X has {n_features} features. Each row of X must be one "
            "flattened image of channels * height * width values (channels first)."
        )
    return tuple(int(s) for s in shape)
