"""The convolutional architecture: network shapes and the estimator around it."""

import math
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning

from skvae import VAETransformer
from skvae._likelihoods import BernoulliLikelihood, GaussianLikelihood
from skvae._networks import (
    CONV_DECODERS,
    ConvDecoder,
    ConvEncoder,
    NetworkSpec,
    build_conv_vae,
)


@pytest.mark.parametrize("layout", CONV_DECODERS)
@pytest.mark.parametrize(
    "image_shape", [(1, 28, 28), (1, 8, 8), (1, 1, 7), (3, 5, 9), (1, 1, 1)]
)
def test_conv_network_shapes(image_shape, layout):
    n_features = int(np.prod(image_shape))
    module = build_conv_vae(
        image_shape, 3, (4, 8), 6, "relu", BernoulliLikelihood(math.prod(image_shape)),
        layout,
    )
    x = torch.rand(5, n_features)
    mean, log_variance = module.encoder(x)
    assert mean.shape == log_variance.shape == (5, 3)
    assert module.decoder(mean).shape == (5, n_features)
    assert module.log_likelihood(x, torch.randn(4, 3)).shape == (5,)
    assert module.encoder.head.out_features == 6  # 2 * n_components, read by training


def test_the_full_resolution_layout_is_the_classic_one_with_512_dense_units():
    """The network of files written before decoder layouts: old files build it."""
    defaults = VAETransformer().get_params()
    # New fits have 256 dense units; files keep the 512 they were written with.
    assert (defaults["conv_channels"], defaults["conv_dense_width"]) == ((32, 64), 256)
    encoder = ConvEncoder((1, 28, 28), (32, 64), 512, 2, "relu")
    decoder = ConvDecoder(2, (32, 64), (1, 28, 28), 1, "relu")
    convs = [m for m in encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (32, (3, 3), (2, 2)), (64, (3, 3), (2, 2))
    ]
    assert encoder.body[0].out_features == 512
    assert isinstance(encoder.body[1], torch.nn.ReLU)  # nonlinear past the convolutions
    assert decoder.body[0].out_features == 7 * 7 * 64
    deconvs = [m for m in decoder.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [(d.out_channels, d.stride) for d in deconvs] == [
        (64, (2, 2)), (32, (2, 2)), (1, (1, 1))
    ]
    hidden = decoder.deconvolutions[:-1](decoder.body(torch.zeros(1, 2)).view(1, 64, 7, 7))
    assert hidden.shape == (1, 32, 28, 28)


def test_new_fits_get_the_mirror_decoder_whose_layers_undo_the_encoders():
    params = VAETransformer(architecture="conv", image_shape=(28, 28)).get_params()
    spec = NetworkSpec.from_params(params, 784, "bernoulli")
    assert spec.conv_decoder == "mirror"
    decoder = spec.build().decoder
    deconvs = [m for m in decoder.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    # 64 x 7 x 7 -> 32 x 14 x 14 -> 1 x 28 x 28: the encoder's sizes in reverse,
    # nothing wider than the encoder at any resolution.
    assert [(d.in_channels, d.out_channels, d.stride) for d in deconvs] == [
        (64, 32, (2, 2)), (32, 1, (2, 2))
    ]
    z = torch.zeros(1, spec.n_components)
    hidden = decoder.deconvolutions[:-1](decoder.body(z).view(1, 64, 7, 7))
    assert hidden.shape == (1, 32, 14, 14)
    assert not isinstance(decoder.deconvolutions[-1], torch.nn.ReLU)  # unbounded logits
    # A conv spec built without a layout is one of the files from before.
    fields = {**spec.__dict__, "conv_decoder": None}
    assert NetworkSpec(**fields).conv_decoder == "full_resolution"
    with pytest.raises(ValueError, match="layout 'keras' is not one of"):
        build_conv_vae((1, 8, 8), 2, (4,), 4, "relu", BernoulliLikelihood(64), "keras")


def _fit(X, **params):
    params = {"conv_channels": (4, 8), "conv_dense_width": 8, **params}
    vae = VAETransformer(architecture="conv", max_iter=2, random_state=0, device="cpu",
                         **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return vae.fit(X)


def test_conv_estimator_on_8x8_images():
    X = np.random.RandomState(0).uniform(size=(30, 64))
    vae = _fit(X, image_shape=(8, 8))
    assert vae.image_shape_ == (1, 8, 8)
    assert vae.transform(X).shape == (30, 2)
    assert vae.inverse_transform(vae.transform(X)).shape == (30, 64)
    assert vae.sample(3, random_state=0).shape == (3, 64)
    assert np.all(np.isfinite(vae.score_samples(X)))


def test_conv_estimator_with_gaussian_and_channels():
    X = np.random.RandomState(0).normal(size=(20, 2 * 3 * 5))
    vae = _fit(X, image_shape=(2, 3, 5))
    assert vae.likelihood_ == "gaussian"
    assert vae.module_.likelihood.n_features == 30
    assert vae.inverse_transform(vae.transform(X)).shape == (20, 30)


def test_conv_without_image_shape_reads_rows_as_1xN_images():
    X = np.random.RandomState(0).uniform(size=(20, 5))
    assert _fit(X).image_shape_ == (1, 1, 5)


@pytest.mark.parametrize(
    "image_shape, match",
    [((1, 28, 27), "holds 756 values per image, but X has 784"),
     ((28, 28, 1, 1), "must be \\(channels, height, width\\)"),
     ((1, 0, 784), "positive integers")],
)
def test_bad_image_shape_is_a_clear_error(image_shape, match):
    X = np.random.RandomState(0).uniform(size=(4, 784))
    with pytest.raises(ValueError, match=match):
        _fit(X, image_shape=image_shape)


def test_bad_conv_channels_is_a_clear_error():
    X = np.random.RandomState(0).uniform(size=(4, 9))
    with pytest.raises(ValueError, match="conv_channels"):
        _fit(X, image_shape=(3, 3), conv_channels=(4, 0))


def test_gaussian_likelihood_parameters_per_pixel():
    module = build_conv_vae((1, 8, 8), 2, (4,), 4, "relu", GaussianLikelihood(64))
    assert module.decoder(torch.zeros(2, 2)).shape == (2, 64)


@pytest.mark.parametrize("activation", ["relu", "tanh", "identity"])
def test_the_encoder_dense_layer_uses_the_activation(activation):
    encoder = ConvEncoder((1, 8, 8), (4,), 16, 2, activation)
    features = torch.randn(50, 4 * 4 * 4) * 3
    expected = {"relu": torch.relu, "tanh": torch.tanh, "identity": lambda t: t}[activation]
    with torch.no_grad():
        torch.testing.assert_close(
            encoder.body(features), expected(encoder.body[0](features)))


def test_defaults_per_estimator_and_architecture():
    """What "auto" resolves to, and the estimators' fixed defaults."""
    from skvae import VAEImputer, VAEOutlierDetector
    from skvae._fitting import FitSettings

    expected = {  # (estimator, architecture): (batch size, learning rate)
        (VAETransformer, "dense"): (128, 2e-3), (VAETransformer, "conv"): (64, 3e-3),
        (VAEOutlierDetector, "dense"): (512, 2e-2), (VAEOutlierDetector, "conv"): (32, 1e-3),
        (VAEImputer, "dense"): (64, 3e-3), (VAEImputer, "conv"): (64, 3e-3),
    }
    for (cls, architecture), sizes in expected.items():
        estimator = cls(architecture=architecture)
        assert estimator.conv_dense_width == (256 if cls is VAETransformer else 512)
        settings = FitSettings.from_params(
            estimator.get_params(), estimator._AUTO_BATCH_SIZE,
            estimator._AUTO_LEARNING_RATE, device="cpu", owner="test")
        assert (settings.batch_size, settings.learning_rate) == sizes
        schedule = ("cosine", "auto") if cls is VAETransformer else ("constant", estimator.max_iter)
        assert (settings.schedule, settings.max_iter) == schedule

    # ... and fit trains with them: the detector's "auto" gives the loss curve of
    # the explicit values.
    X = np.random.RandomState(0).uniform(size=(600, 16))
    for architecture in ("dense", "conv"):
        def fit(**params):
            return VAEOutlierDetector(
                architecture=architecture, image_shape=(4, 4), conv_channels=(4,),
                conv_dense_width=8, hidden_layer_sizes=(8,), max_iter=2,
                random_state=0, device="cpu", **params,
            ).fit(X).loss_curve_

        batch, rate = expected[VAEOutlierDetector, architecture]
        assert fit() == fit(batch_size=batch, learning_rate_init=rate)
        assert fit() != fit(batch_size=batch, learning_rate_init=rate / 2)


def test_batch_size_auto_is_64_for_conv_and_128_for_dense():
    """The conv network trains on batches of 64 by default, the dense one on 128."""
    X = np.random.RandomState(0).uniform(size=(200, 16))
    for architecture, size in (("conv", 64), ("dense", 128)):
        def fit(**params):
            return VAETransformer(
                architecture=architecture, image_shape=(4, 4), conv_channels=(4,),
                conv_dense_width=8, hidden_layer_sizes=(8,), max_iter=2,
                random_state=0, device="cpu", **params,
            ).fit(X)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # 2 epochs
            auto, explicit, other = fit(), fit(batch_size=size), fit(batch_size=160 - size)
        assert auto.loss_curve_ == explicit.loss_curve_
        assert auto.loss_curve_ != other.loss_curve_
