"""Shared by the examples: where their data are (MNIST, tables, ADBench), with a
fallback to data shipped with scikit-learn, and the label that marks figures made
in quick mode.

The data are looked for, as scikit-learn does, in the data home of
:func:`skvae.datasets.get_data_home` (the ``SKVAE_DATA`` environment variable, else
``~/skvae_data``), then in ``../shared/data`` beside the clone. Where neither has
them, the example says where it looked and what it uses instead, in a printed line
(shown under the code in the gallery), not a warning: the fallback is the
example's intended behaviour on a machine without the files, not a fault in the
caller's code, and the tests and the docs build treat warnings as errors.
"""

import os
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skvae.datasets import get_data_home, load_mnist_split

# The data folder beside a clone of the repository (this project's machines).
BESIDE_CLONE = Path(__file__).resolve().parents[2] / "shared" / "data"


def find_data(relative_path):
    """``(path, folders looked in)``: the first data folder holding ``relative_path``.

    ``path`` is None when none holds it. The folders: the data home
    (``SKVAE_DATA``, else ``~/skvae_data``), then ``../shared/data`` beside the clone.
    """
    folders = list(dict.fromkeys([Path(get_data_home()), BESIDE_CLONE]))
    looked = [folder / relative_path for folder in folders]
    found = next((path for path in looked if path.exists()), None)
    return found, looked


def say_fallback(what, looked, instead):
    """Print that ``what`` was not found, where it was looked for, and what replaces it."""
    places = " nor ".join(str(path) for path in looked)
    print(f"{what} not found in {places}: using {instead} instead. Set SKVAE_DATA to "
          "the folder holding it (see skvae.datasets.get_data_home) to use it.")


def load_images(n_train=None):
    """``(X_train, X_test, y_train, y_test, image_shape, name)``, pixels in [0, 1].

    The 8,000/2,000 MNIST split from the ``mnist`` folder of the data (see
    :func:`find_data`) when present; otherwise scikit-learn's 8 x 8 digits, so the
    examples run on any clone. ``n_train`` keeps only the first training rows
    (quick runs).
    """
    images, looked = find_data(Path("mnist") / "t10k-images-idx3-ubyte.gz")
    if images is not None:
        X_train, X_test, y_train, y_test = load_mnist_split(images.parent)
        shape, name = (1, 28, 28), "MNIST"
    else:
        say_fallback("MNIST", [path.parent for path in looked],
                     "scikit-learn's 8 x 8 digits")
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
