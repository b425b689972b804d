"""
Generating new images with ``sample``
=====================================

A VAE is a generative model: ``sample`` draws latent codes from the prior N(0, I)
and decodes them. With ``return_mean=True`` it returns the decoder's mean images
(smooth, as shown in papers); by default it draws pixels from p(x | z) as well,
which for the Bernoulli likelihood gives speckled binary images. The figure shows
real test images, then both kinds of samples of a convolutional VAE with a 16-D
latent space.

Reads the MNIST files in the ``mnist`` folder of the data (``SKVAE_DATA``, see
:func:`skvae.datasets.get_data_home`, or ``../shared/data`` beside the clone),
falling back to scikit-learn's 8 x 8 digits, with a line saying where it looked. Run ``python examples/plot_generation.py``; the figure goes to
``examples/output/``. ``SKVAE_EXAMPLE_QUICK=1`` trains briefly (CI).
"""

import os
from pathlib import Path

import matplotlib.pyplot as plt

from skvae import VAETransformer
from skvae.plotting import ImageGridDisplay, InterpolationDisplay

# _data.py, next to the examples: MNIST when its files are at hand, else the digits.
from _data import load_images, mark_quick

QUICK = os.environ.get("SKVAE_EXAMPLE_QUICK") == "1"
OUTPUT = Path(__file__).resolve().parent / "output"
OUTPUT.mkdir(exist_ok=True)

# %%
# Fit a VAE with a 16-D latent space
# ----------------------------------

X_train, X_test, _, _, image_shape, name = load_images(n_train=300 if QUICK else None)
# The seed's convolutional network (see plot_mnist_latent_space.py): 30 epochs
# take about six minutes of one CPU core; "dense" is about 11x faster.
ARCHITECTURE = "conv"
vae = VAETransformer(
    n_components=16, architecture=ARCHITECTURE, image_shape=image_shape,
    likelihood="bernoulli", max_iter=2 if QUICK else 30, random_state=0,
)
vae.fit(X_train)
log_likelihood = vae.score(X_test[: 100 if QUICK else 500])
print(f"{name}: held-out log-likelihood {log_likelihood:.1f} nats per image")

# %%
# Real images, decoder means and full samples
# -------------------------------------------

fig, axes = plt.subplots(1, 3, figsize=(15, 5.4))
ImageGridDisplay(X_test[:64], image_shape=image_shape, n_cols=8).plot(ax=axes[0])
axes[0].set_title(f"Real {name} test images")
ImageGridDisplay.from_estimator(vae, n_rows=8, n_cols=8, random_state=0, ax=axes[1])
axes[1].set_title("sample(64, return_mean=True)")
ImageGridDisplay.from_estimator(
    vae, n_rows=8, n_cols=8, random_state=0, return_mean=False, ax=axes[2]
)
axes[2].set_title("sample(64): pixels drawn from p(x | z)")
fig.tight_layout()
mark_quick(fig)
path = OUTPUT / "generation.png"
fig.savefig(path, dpi=100)
print(f"wrote {path}")

# %%
# A walk through latent space
# ---------------------------
# ``interpolate`` encodes two images, decodes evenly spaced points on the
# straight line between their codes, and :class:`~skvae.plotting.InterpolationDisplay`
# draws each line as a row: one test image turning into another.

fig, ax = plt.subplots(figsize=(10, 5))
InterpolationDisplay.from_estimator(vae, X_test[:4], X_test[4:8], n_steps=10, ax=ax)
ax.set_title("interpolate(X_test[:4], X_test[4:8], n_steps=10)")
fig.tight_layout()
mark_quick(fig)
path = OUTPUT / "interpolation.png"
fig.savefig(path, dpi=100)
print(f"wrote {path}")
