"""The demo behind ``python -m skvae demo``: a VAE on scikit-learn's digits."""

import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from ._transformer import VAETransformer
from ._warnings import TrainingInterruptedWarning


def _latent_accuracy(reducer, X_train, y_train, X_test, y_test):
    classifier = LogisticRegression(max_iter=2000)
    classifier.fit(reducer.transform(X_train), y_train)
    return classifier.score(reducer.transform(X_test), y_test)


# The estimators turn Ctrl-C during training into a TrainingInterruptedWarning and
# keep the weights so far, which suits a user's own fit; the demo must stop.


def _fit_or_stop(vae, X):
    """``vae.fit(X)``, raising KeyboardInterrupt if Ctrl-C stopped the training.

    Raises
    ------
    KeyboardInterrupt
        If the user interrupted the training, instead of the estimator's
        TrainingInterruptedWarning.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("error", TrainingInterruptedWarning)
        try:
            vae.fit(X)
        except TrainingInterruptedWarning as warning:
            raise KeyboardInterrupt(str(warning)) from None
    return vae


def prepare_output_dir(output_dir):
    """Create ``output_dir`` if needed and check that files can be written in it.

    Done before any training, so a bad folder costs no minutes of fitting.

    Returns
    -------
    output_dir : Path

    Raises
    ------
    ValueError
        Saying what is wrong: an empty name, a file where the folder should be,
        a folder that cannot be created or written to.
    """
    if not str(output_dir) or "\0" in str(output_dir):
        raise ValueError(
            f"{str(output_dir)!r} cannot name a folder (it is empty or holds a NUL "
            "character); name a folder."
        )
    try:
        output_dir = Path(output_dir)
        if output_dir.exists() and not output_dir.is_dir():
            raise ValueError(
                f"{_not_a_folder(output_dir)}; name a folder (it is created if it "
                "does not exist)."
            )
        output_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=output_dir):
            pass
    except OSError as error:
        blocking = _first_non_folder(output_dir)
        reason = (
            _not_a_folder(blocking) if blocking is not None else error.strerror or str(error)
        )
        raise ValueError(
            f"cannot create or write to the folder {str(output_dir)!r}: {reason}."
        ) from None
    return output_dir


def _not_a_folder(path):
    """Says that ``path``, which exists, is not a folder."""
    kind = "a file" if path.is_file() else "something else (a device?)"
    return f"{str(path)!r} is {kind}, not a folder"


def _first_non_folder(path):
    """The first of ``path`` and its parents that exists but is not a folder, or None."""
    for candidate in [*reversed(path.parents), path]:
        if candidate.exists() and not candidate.is_dir():
            return candidate
    return None


def _save_figure(fig, path):
    """Write ``fig`` to ``path`` as a PNG through a temporary file.

    An interrupted or failed write leaves the file of an earlier run whole,
    never half a PNG.
    """
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".skvae-", suffix=".png")
    try:
        with os.fdopen(handle, "wb") as file:
            fig.savefig(file, format="png", dpi=120, bbox_inches="tight")
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def run_demo(output_dir="skvae-demo", *, max_iter="auto", random_state=0, out=print):
    """Fit VAEs on the digits, print held-out figures and write two PNG files.

    Parameters
    ----------
    output_dir : str or Path, default="skvae-demo"
        Folder for ``latent_space.png`` and ``generated_digits.png``; created if
        needed.
    max_iter : int or "auto", default="auto"
        Epochs per model (see :class:`~skvae.VAETransformer`).
    random_state : int, default=0
        Seed of the split and the models.
    out : callable, default=print
        Receives each line of the report.

    Returns
    -------
    results : dict
        The printed figures, keyed by name.

    Raises
    ------
    ValueError
        If ``output_dir`` cannot be created or written to (before any training).
    KeyboardInterrupt
        If the user interrupts the demo, training included: the figures of the
        model being fitted are not reported.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plotting import ImageGridDisplay, LatentSpaceDisplay

    output_dir = prepare_output_dir(output_dir)
    X, y = load_digits(return_X_y=True)
    X = X / 16.0  # grey levels 0..16 -> [0, 1]: the Bernoulli likelihood applies
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=random_state
    )
    out(f"digits: {len(X_train)} training and {len(X_test)} test images of 8x8 pixels")
    results = {}
    for n_components in (2, 8):
        start = time.perf_counter()
        vae = VAETransformer(
            n_components=n_components, likelihood="bernoulli", max_iter=max_iter,
            random_state=random_state,
        )
        _fit_or_stop(vae, X_train)
        seconds = time.perf_counter() - start
        log_likelihood = vae.score(X_test)
        reconstruction = vae.inverse_transform(vae.transform(X_test))
        mse = float(np.mean((reconstruction - X_test) ** 2))
        pca = PCA(n_components=n_components, random_state=random_state).fit(X_train)
        pca_mse = float(
            np.mean((pca.inverse_transform(pca.transform(X_test)) - X_test) ** 2)
        )
        accuracy = _latent_accuracy(vae, X_train, y_train, X_test, y_test)
        pca_accuracy = _latent_accuracy(pca, X_train, y_train, X_test, y_test)
        out(
            f"\n{n_components}-D latent space ({vae.likelihood_} likelihood, "
            f"{vae.n_iter_} epochs, {seconds:.1f} s)"
        )
        out(f"  held-out log-likelihood: {log_likelihood:.2f} nats per image")
        out(f"  reconstruction MSE:      {mse:.4f}   (PCA, same dimension: {pca_mse:.4f})")
        out(
            f"  latent-space classifier: {accuracy:.3f} accuracy "
            f"(PCA, same dimension: {pca_accuracy:.3f})"
        )
        results[n_components] = dict(
            log_likelihood=log_likelihood, mse=mse, pca_mse=pca_mse,
            accuracy=accuracy, pca_accuracy=pca_accuracy,
        )
        if n_components == 2:
            fig, ax = plt.subplots(figsize=(7, 6))
            LatentSpaceDisplay.from_estimator(vae, X_test, y_test, ax=ax)
            ax.set_title("Digits in the VAE's 2-D latent space (test images)")
            path = output_dir / "latent_space.png"
            _save_figure(fig, path)
            plt.close(fig)
            out(f"  wrote {path}")
        else:
            fig, ax = plt.subplots(figsize=(6, 6))
            ImageGridDisplay.from_estimator(vae, image_shape=(8, 8), ax=ax)
            ax.set_title(f"Digits generated from the {n_components}-D VAE")
            path = output_dir / "generated_digits.png"
            _save_figure(fig, path)
            plt.close(fig)
            out(f"  wrote {path}")
    return results
