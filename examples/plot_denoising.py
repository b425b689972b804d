"""
Denoising: train on clean images, reconstruct noisy ones
========================================================

A VAE trained on clean images only learns what digits look like; encoding a
corrupted image and decoding the code projects it back onto that learned
manifold, which removes much of the noise. The figure shows clean test images,
the same images with 20% of their pixels set at random to black or white
("salt and pepper" noise), and the VAE's reconstructions of the noisy ones. (Dense
Gaussian noise over the whole image works less well: it moves every pixel of the
background, which the encoder never saw in training.)

Reads the MNIST files in the ``mnist`` folder of the data (``SKVAE_DATA``, see
:func:`skvae.datasets.get_data_home`, or ``../shared/data`` beside the clone),
falling back to scikit-learn's 8 x 8 digits, with a line saying where it looked. Run ``python examples/plot_denoising.py``; the figure goes to
``examples/output/``. ``SKVAE_EXAMPLE_QUICK=1`` trains briefly (CI).
"""

import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from skvae import VAETransformer
from skvae.plotting import ReconstructionDisplay

# _data.py, next to the examples: MNIST when its files are at hand, else the digits.
from _data import load_images, mark_quick

QUICK = os.environ.get("SKVAE_EXAMPLE_QUICK") == "1"
OUTPUT = Path(__file__).resolve().parent / "output"
OUTPUT.mkdir(exist_ok=True)

# %%
# Train on clean images
# ---------------------

X_train, X_test, _, _, image_shape, name = load_images(n_train=300 if QUICK else None)
# "conv" selects the seed's convolutional network: as good on MNIST, but its fit
# takes about 11x the CPU time, so this example keeps the dense one.
ARCHITECTURE = "dense"
vae = VAETransformer(
    n_components=16, architecture=ARCHITECTURE, image_shape=image_shape,
    likelihood="bernoulli", max_iter=2 if QUICK else 30, random_state=0,
)
vae.fit(X_train)

# %%
# Corrupt test images, then encode and decode them
# ------------------------------------------------

rng = np.random.RandomState(0)
X_clean = X_test[:12]
X_noisy = X_clean.copy()
salt_and_pepper = rng.uniform(size=X_clean.shape) < 0.2
X_noisy[salt_and_pepper] = rng.randint(0, 2, size=salt_and_pepper.sum())

denoised = vae.inverse_transform(vae.transform(X_noisy))
print(f"{name}: mean squared error to the clean images: noisy "
      f"{np.mean((X_noisy - X_clean) ** 2):.4f}, reconstructed "
      f"{np.mean((denoised - X_clean) ** 2):.4f}")

# %%
# Clean, noisy and reconstructed images
# -------------------------------------

fig, ax = plt.subplots(figsize=(12, 3.6))
ReconstructionDisplay.from_estimator(vae, X_noisy, X_clean=X_clean, n_images=12, ax=ax)
ax.set_title(f"Denoising {name} test images with a VAE trained on clean images")
fig.tight_layout()
mark_quick(fig)
path = OUTPUT / "denoising.png"
fig.savefig(path, dpi=100)
print(f"wrote {path}")
