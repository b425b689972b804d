"""
A VAE's 2-D latent space and its manifold of generated digits
=============================================================

A VAE with a 2-D latent space on MNIST: the test images in the latent space,
coloured by digit, next to the images decoded from a regular grid of latent
points, the picture VAE tutorials show. The training curve comes from
``loss_curve_``.

The network is the seed notebook's convolutional VAE: two stride-2
convolutions (32 and 64 channels), a dense layer, the 2-D latent code, and back
through transposed convolutions. The figures are the seed's: the test images in
the latent space, coloured by digit, and the 15 x 15 grid of images decoded over
[-4, 4]^2. Set ``ARCHITECTURE = "dense"`` to compare with the dense (512, 256)
network; at 30 epochs on these 8,000 images the two reach about the same
held-out log-likelihood (``benchmarks/results_conv_plateau.md``).

Reads the MNIST files in the ``mnist`` folder of the data (``SKVAE_DATA``, see
:func:`skvae.datasets.get_data_home`, or ``../shared/data`` beside the clone), and
falls back to scikit-learn's 8 x 8 digits, with a line saying where it looked,
where they are absent. Run ``python
examples/plot_mnist_latent_space.py``; figures go to ``examples/output/``.
``SKVAE_EXAMPLE_QUICK=1`` trains on a few hundred images for two epochs (CI).
"""

import os
from pathlib import Path

import matplotlib.pyplot as plt

from skvae import VAETransformer
from skvae.plotting import (
    LatentManifoldDisplay,
    LatentSpaceDisplay,
    TrainingCurveDisplay,
)

# _data.py, next to the examples: MNIST when its files are at hand, else the digits.
from _data import load_images, mark_quick

QUICK = os.environ.get("SKVAE_EXAMPLE_QUICK") == "1"
OUTPUT = Path(__file__).resolve().parent / "output"
OUTPUT.mkdir(exist_ok=True)

# %%
# Fit a VAE with a 2-D latent space
# ---------------------------------
# 30 epochs over the 8,000 training images take about five minutes of one CPU
# core with the conv network (half a minute with the dense one).

X_train, X_test, y_train, y_test, image_shape, name = load_images(
    n_train=300 if QUICK else None
)
if QUICK:
    X_test, y_test = X_test[:200], y_test[:200]
ARCHITECTURE = "conv"
vae = VAETransformer(
    n_components=2, architecture=ARCHITECTURE, image_shape=image_shape,
    likelihood="bernoulli", max_iter=2 if QUICK else 30, random_state=0,
)
vae.fit(X_train)
print(f"{name}: {vae.n_iter_} epochs, held-out log-likelihood "
      f"{vae.score(X_test[: 100 if QUICK else 500]):.1f} nats per image")

# %%
# The latent space and the decoded grid
# -------------------------------------
# Left, ``transform`` of the test images, coloured by digit; right, the images
# the decoder produces over a 15 x 15 grid of latent points spanning [-4, 4] on
# both axes (``LatentManifoldDisplay`` builds the grid and decodes it).

fig, axes = plt.subplots(1, 2, figsize=(15, 7))
LatentSpaceDisplay.from_estimator(vae, X_test, y_test, ax=axes[0])
axes[0].set_title(f"{name} test images in the 2-D latent space")
LatentManifoldDisplay.from_estimator(
    vae, n_points=8 if QUICK else 15, grid_range=(-4.0, 4.0), ax=axes[1]
)
axes[1].set_title("Images decoded from a grid of latent points")
fig.tight_layout()
mark_quick(fig)
path = OUTPUT / f"{name.lower()}_latent_space.png"
fig.savefig(path, dpi=100)
print(f"wrote {path}")

# %%
# The training curve
# ------------------
# ``loss_curve_``: the negative ELBO of the training images, nats per image,
# after each epoch.

fig, ax = plt.subplots(figsize=(6, 4))
TrainingCurveDisplay.from_estimator(vae, ax=ax)
ax.set_title(f"Training the VAE on {name} ({ARCHITECTURE} network)")
fig.tight_layout()
mark_quick(fig)
path = OUTPUT / f"{name.lower()}_training_curve.png"
fig.savefig(path, dpi=100)
print(f"wrote {path}")
