"""Shared by the examples: image data (MNIST when its files are at hand, else the
digits) and the label that marks figures made in quick mode."""

import os
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skvae.datasets import load_mnist_split

MNIST_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def load_images(n_train=None):
    """``(X_train, X_test, y_train, y_test, image_shape, name)``, pixels in [0, 1].

    The 8,000/2,000 MNIST split from ``../shared/data/mnist`` when present;
    otherwise scikit-learn's 8 x 8 digits, so the examples run on any clone.
    ``n_train`` keeps only the first training rows (quick runs).
    """
    if (MNIST_DIR / "t10k-images-idx3-ubyte.gz").exists():
        X_train, X_test, y_train, y_test = load_mnist_split(MNIST_DIR)
        shape, name = (1, 28, 28), "MNIST"
    else:
        print(f"MNIST files not found in {MNIST_DIR}: using scikit-learn's 8 x 8 "
              "digits instead")
        X, y = load_digits(return_X_y=True)
        X_train, X_test, y_train, y_test = train_test_split(
            (X / 16.0).astype(np.float32), y, test_size=0.25, stratify=y,
            random_state=0,
        )
        shape, name = (1, 8, 8), "digits"
    if n_train is not None:
        X_train, y_train = X_train[:n_train], y_train[:n_train]
    return X_train, X_test, y_train, y_test, shape, name


QUICK = os.environ.get("SKVAE_EXAMPLE_QUICK") == "1"


def mark_quick(fig):
    """Label a figure made with the quick settings, so nobody mistakes it for a result."""
    if QUICK:
        fig.text(0.995, 0.005, "quick mode (SKVAE_EXAMPLE_QUICK=1): barely trained",
                 ha="right", va="bottom", fontsize=8, color="tab:red")
