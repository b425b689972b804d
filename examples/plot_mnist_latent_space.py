"""
A VAE's 2-D latent space and its manifold of generated digits
=============================================================

A VAE with a 2-D latent space on MNIST: the test images in the latent space,
coloured by digit, next to the images decoded from a regular grid of latent
points, the picture VAE tutorials show. The training curve comes from
``loss_curve_`` and ``validation_scores_``.

``ARCHITECTURE = "conv"`` selects the classic convolutional VAE (Conv 32 -> Conv
64 -> Dense 16 -> latent, and back through transposed convolutions). On the 8,000
training images here and a CPU budget of minutes it stays stuck on the plateau
where every code decodes to the same blurred digit (its 16-unit bottleneck needs
far more steps, as in the Keras example's 30 epochs of 60,000 images), so the
example uses the dense network, which unfolds the latent space within a few
epochs.

Reads the MNIST files in ``../shared/data/mnist`` and falls back to scikit-learn's
8 x 8 digits where they are absent. Run ``python
examples/plot_mnist_latent_space.py``; figures go to ``examples/output/``.
``SKVAE_EXAMPLE_QUICK=1`` trains on a few hundred images for two epochs (CI).
"""

import os
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
from sklearn.exceptions import ConvergenceWarning

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
warnings.simplefilter("ignore", ConvergenceWarning)  # quick runs stop at max_iter

# %%
# Fit a VAE with a 2-D latent space
# ---------------------------------
# ``early_stopping=True`` holds out a tenth of the training images and keeps the
# weights of the epoch with the best held-out ELBO.

X_train, X_test, y_train, y_test, image_shape, name = load_images(
    n_train=300 if QUICK else None
)
if QUICK:
    X_test, y_test = X_test[:200], y_test[:200]
ARCHITECTURE = "dense"
vae = VAETransformer(
    n_components=2, architecture=ARCHITECTURE, image_shape=image_shape,
    likelihood="bernoulli", max_iter=2 if QUICK else 40, early_stopping=True,
    n_iter_no_change=5,
    random_state=0,
)
vae.fit(X_train)
print(f"{name}: {vae.n_iter_} epochs, held-out log-likelihood "
      f"{vae.score(X_test[: 100 if QUICK else 500]):.1f} nats per image")

# %%
# The latent space and the decoded grid
# -------------------------------------
# Left, ``transform`` of the test images, coloured by digit; right, the images
# the decoder produces over a regular grid of latent points.

fig, axes = plt.subplots(1, 2, figsize=(15, 7))
LatentSpaceDisplay.from_estimator(vae, X_test, y_test, ax=axes[0])
axes[0].set_title(f"{name} test images in the 2-D latent space")
LatentManifoldDisplay.from_estimator(vae, n_points=8 if QUICK else 20, ax=axes[1])
axes[1].set_title("Images decoded from a grid of latent points")
fig.tight_layout()
mark_quick(fig)
path = OUTPUT / f"{name.lower()}_latent_space.png"
fig.savefig(path, dpi=100)
print(f"wrote {path}")

# %%
# The training curve
# ------------------
# ``loss_curve_`` (negative ELBO of the training images, nats per image) and
# ``validation_scores_`` (held-out ELBO) after each epoch.

fig, ax = plt.subplots(figsize=(6, 4))
TrainingCurveDisplay.from_estimator(vae, ax=ax)
ax.set_title(f"Training the VAE on {name} ({ARCHITECTURE} network)")
fig.tight_layout()
mark_quick(fig)
path = OUTPUT / f"{name.lower()}_training_curve.png"
fig.savefig(path, dpi=100)
print(f"wrote {path}")
