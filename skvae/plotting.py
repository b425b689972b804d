"""Plots of fitted VAEs, as scikit-learn style Display objects.

matplotlib is imported inside the functions, so ``import skvae`` never needs it.
Each display has ``from_estimator(estimator, ..., ax=None)``, draws, and keeps the
drawn ``ax_`` and ``figure_``.
"""

import numpy as np
from sklearn.utils.validation import check_is_fitted


def _axes(ax):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    return ax


class LatentSpaceDisplay:
    """Scatter plot of the latent codes ``transform(X)``, coloured by label.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, 2)
        The two latent coordinates to plot.
    labels : array-like of shape (n_samples,) or None
        Colours of the points.
    dims : tuple of int
        Which latent dimensions ``Z`` holds, for the axis labels.

    Examples
    --------
    >>> import numpy as np
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skvae import VAETransformer
    >>> from skvae.plotting import LatentSpaceDisplay
    >>> X = np.random.RandomState(0).uniform(size=(40, 5))
    >>> vae = VAETransformer(hidden_layer_sizes=(8,), max_iter=20, tol=1.0,
    ...                      random_state=0).fit(X)
    >>> display = LatentSpaceDisplay.from_estimator(vae, X)
    >>> display.ax_.get_xlabel()
    'latent dimension 0'
    """

    def __init__(self, Z, *, labels=None, dims=(0, 1)):
        self.Z = Z
        self.labels = labels
        self.dims = dims

    @classmethod
    def from_estimator(cls, estimator, X, y=None, *, dims=(0, 1), ax=None):
        """Encode ``X`` with a fitted estimator and plot two latent dimensions."""
        check_is_fitted(estimator)
        Z = np.asarray(estimator.transform(X))
        if Z.shape[1] == 1:
            Z, dims = np.column_stack([Z[:, 0], np.zeros(len(Z))]), (0, None)
        else:
            Z = Z[:, list(dims)]
        return cls(Z, labels=y, dims=dims).plot(ax=ax)

    def plot(self, *, ax=None):
        """Draw the scatter on ``ax`` (a new figure when None); returns self."""
        ax = _axes(ax)
        if self.labels is None:
            ax.scatter(self.Z[:, 0], self.Z[:, 1], s=8, alpha=0.8)
        else:
            scatter = ax.scatter(
                self.Z[:, 0], self.Z[:, 1], c=self.labels, cmap="tab10", s=8, alpha=0.8
            )
            ax.legend(*scatter.legend_elements(), title="label", loc="best", fontsize="small")
        ax.set_xlabel(f"latent dimension {self.dims[0]}")
        ax.set_ylabel("" if self.dims[1] is None else f"latent dimension {self.dims[1]}")
        self.ax_, self.figure_ = ax, ax.figure
        return self


class ImageGridDisplay:
    """A grid of images, one per row of ``images``.

    Parameters
    ----------
    images : ndarray of shape (n_images, height * width)
        Flat images, drawn in row-major order.
    image_shape : tuple of int
        ``(height, width)`` of each image.
    n_cols : int
        Images per grid row.

    Examples
    --------
    >>> import numpy as np
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skvae.plotting import ImageGridDisplay
    >>> display = ImageGridDisplay(np.eye(16), image_shape=(4, 4), n_cols=4).plot()
    >>> display.ax_.get_images()[0].get_array().shape
    (19, 19)
    """

    def __init__(self, images, *, image_shape, n_cols=10):
        self.images = images
        self.image_shape = image_shape
        self.n_cols = n_cols

    @classmethod
    def from_estimator(
        cls, estimator, *, image_shape, n_rows=10, n_cols=10, random_state=0,
        return_mean=True, ax=None,
    ):
        """Plot ``estimator.sample(n_rows * n_cols)`` as a grid of images."""
        images = estimator.sample(
            n_rows * n_cols, random_state=random_state, return_mean=return_mean
        )
        return cls(images, image_shape=image_shape, n_cols=n_cols).plot(ax=ax)

    def plot(self, *, ax=None, cmap="gray_r"):
        """Tile the images with a one-pixel gap and draw them; returns self."""
        ax = _axes(ax)
        height, width = self.image_shape
        n_images = len(self.images)
        n_rows = -(-n_images // self.n_cols)
        canvas = np.full(
            (n_rows * (height + 1) - 1, self.n_cols * (width + 1) - 1), np.nan
        )
        for i, image in enumerate(self.images):
            r, c = divmod(i, self.n_cols)
            canvas[
                r * (height + 1) : r * (height + 1) + height,
                c * (width + 1) : c * (width + 1) + width,
            ] = np.reshape(image, (height, width))
        ax.imshow(canvas, cmap=cmap, interpolation="nearest")
        ax.set_axis_off()
        self.ax_, self.figure_ = ax, ax.figure
        return self
