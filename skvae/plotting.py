"""Plots of fitted VAEs, as scikit-learn style Display objects.

matplotlib is imported inside the functions, so ``import skvae`` never needs it.
Each display has ``from_estimator(estimator, ..., ax=None)``, draws, and keeps the
drawn ``ax_`` and ``figure_``.
"""

import numpy as np
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import column_or_1d
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted


def _axes(ax):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    return ax


def _resolve_image_shape(image_shape, estimator=None, n_features=None):
    """``(channels, height, width)`` for drawing rows as images.

    Taken from ``image_shape`` when given ((height, width) means one channel), else
    from the fitted estimator's ``image_shape_`` when that is a real image, else a
    square single-channel image when the number of features is a perfect square.
    """
    if image_shape is None and estimator is not None:
        fitted = getattr(estimator, "image_shape_", None)
        if fitted is not None and fitted[1] > 1 and fitted[2] > 1:
            image_shape = fitted
    if n_features is None and estimator is not None:
        n_features = estimator.n_features_in_
    if image_shape is None:
        side = int(round(np.sqrt(n_features))) if n_features else 0
        if side * side != n_features:
            raise ValueError(
                f"Cannot draw rows of {n_features} features as images without "
                "image_shape: pass image_shape=(height, width) or "
                "(channels, height, width)."
            )
        image_shape = (side, side)
    shape = tuple(int(s) for s in image_shape)
    if len(shape) == 2:
        shape = (1,) + shape
    if len(shape) != 3 or shape[0] not in (1, 3, 4):
        raise ValueError(
            f"image_shape={image_shape!r} must be (height, width) or (channels, "
            "height, width) with 1 (grey), 3 (RGB) or 4 (RGBA) channels."
        )
    if n_features is not None and int(np.prod(shape)) != n_features:
        raise ValueError(
            f"image_shape={image_shape!r} holds {int(np.prod(shape))} values, but "
            f"the rows to draw have {n_features}."
        )
    return shape


def _tile(images, image_shape, n_cols):
    """Flat images as one canvas, row-major, separated by one-pixel NaN gaps."""
    n_channels, height, width = _resolve_image_shape(image_shape)
    images = np.asarray(images, dtype=np.float64)
    n_rows = -(-len(images) // n_cols)
    canvas = np.full(
        (n_rows * (height + 1) - 1, n_cols * (width + 1) - 1, n_channels), np.nan
    )
    for i, image in enumerate(images):
        r, c = divmod(i, n_cols)
        canvas[
            r * (height + 1) : r * (height + 1) + height,
            c * (width + 1) : c * (width + 1) + width,
        ] = np.reshape(image, (n_channels, height, width)).transpose(1, 2, 0)
    if n_channels == 1:
        return canvas[:, :, 0]
    # Colour images: gaps become white, values are clipped to imshow's [0, 1].
    return np.clip(np.nan_to_num(canvas, nan=1.0), 0.0, 1.0)


class LatentSpaceDisplay:
    """Scatter plot of the latent codes ``transform(X)``, coloured by label.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, 2)
        The two latent coordinates to plot.
    labels : array-like of shape (n_samples,) or None
        What colours the points: class labels of any kind a scikit-learn
        classifier takes (strings, integers, booleans, a pandas categorical, an
        object array), one colour per class with a legend of the class names
        (missing labels, None or NaN, in grey as "missing"); or continuous
        numbers, shown on a colour bar.
    dims : tuple of int
        Which latent dimensions ``Z`` holds, for the axis labels.

    Attributes
    ----------
    ax_ : matplotlib Axes
        The axes drawn on.
    figure_ : matplotlib Figure
        The figure holding ``ax_``.
    classes_ : ndarray or None
        The classes in the legend, sorted as a classifier's ``classes_``; None
        without labels or for continuous ones.

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
        """Encode ``X`` with a fitted estimator and plot two latent dimensions.

        Parameters
        ----------
        estimator : fitted skvae estimator
        X : array-like of shape (n_samples, n_features)
            Data to encode (the posterior means are plotted).
        y : array-like of shape (n_samples,) or None, default=None
            Labels that colour the points: class labels of any kind a classifier
            takes (``df["species"]``, integers, booleans, a categorical), with a
            legend of their names, or continuous numbers, with a colour bar.
        dims : pair of int, default=(0, 1)
            The latent dimensions to plot when there are more than two. A 1-D
            latent space is drawn along the x axis.
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.

        Returns
        -------
        display : LatentSpaceDisplay
        """
        check_is_fitted(estimator)
        Z = estimator.encode(X)
        if y is not None and len(y) != len(Z):
            raise ValueError(
                f"y has {len(y)} labels but X has {len(Z)} rows: pass one label per row."
            )
        if Z.shape[1] > 1 and (
            len(dims) != 2 or not all(0 <= int(d) < Z.shape[1] for d in dims)
        ):
            raise ValueError(
                f"dims={dims!r} must be a pair of latent dimensions in "
                f"0..{Z.shape[1] - 1}."
            )
        if Z.shape[1] == 1:
            Z, dims = np.column_stack([Z[:, 0], np.zeros(len(Z))]), (0, None)
        else:
            Z = Z[:, list(dims)]
        return cls(Z, labels=y, dims=dims).plot(ax=ax)

    def plot(self, *, ax=None):
        """Draw the scatter on ``ax`` (a new figure when None); returns self."""
        ax = _axes(ax)
        self.classes_ = None
        if self.labels is None:
            ax.scatter(self.Z[:, 0], self.Z[:, 1], s=8, alpha=0.8)
        else:
            values, missing = _label_values(self.labels)
            if values.dtype.kind == "f" and type_of_target(values[~missing]) == "continuous":
                scatter = ax.scatter(self.Z[:, 0], self.Z[:, 1], c=values, cmap="viridis",
                                     s=8, alpha=0.8, plotnonfinite=True)
                ax.figure.colorbar(scatter, ax=ax, label=_labels_title(self.labels))
            else:
                self._plot_classes(ax, values, missing)
        ax.set_xlabel(f"latent dimension {self.dims[0]}")
        ax.set_ylabel("" if self.dims[1] is None else f"latent dimension {self.dims[1]}")
        self.ax_, self.figure_ = ax, ax.figure
        return self


    def _plot_classes(self, ax, values, missing):
        """One scatter of every point, a colour per class, a legend of the classes."""
        from matplotlib.lines import Line2D

        # As a classifier reads its targets: sorted unique classes of any type
        # (LabelEncoder refuses a mix of strings and numbers, naming them).
        encoder = LabelEncoder().fit(values[~missing])
        colours = _class_colours(len(encoder.classes_))
        point_colours = np.tile(_MISSING_COLOUR, (len(values), 1))
        if (~missing).any():
            point_colours[~missing] = colours[encoder.transform(values[~missing])]
        ax.scatter(self.Z[:, 0], self.Z[:, 1], c=point_colours, s=8, alpha=0.8)
        names = [str(name) for name in encoder.classes_] + (["missing"] if missing.any() else [])
        handles = [
            Line2D([], [], linestyle="", marker="o", color=colour, label=name)
            for name, colour in zip(names, [*colours, _MISSING_COLOUR])
        ]
        ax.legend(handles=handles, title=_labels_title(self.labels), loc="best",
                  fontsize="small")
        self.classes_ = encoder.classes_


# Points whose label is missing (None, NaN, pd.NA): drawn, in grey, as "missing".
_MISSING_COLOUR = (0.6, 0.6, 0.6)


def _label_values(labels):
    """``(values, missing)``: labels as a 1-D array, and which of them are missing."""
    if str(getattr(labels, "dtype", "")) == "category":  # a pandas categorical
        labels = np.asarray(labels, dtype=object)
    values = column_or_1d(labels)
    if values.dtype.kind == "f":
        return values, np.isnan(values)
    if values.dtype.kind == "O":
        missing = np.array([
            value is None or type(value).__name__ == "NAType"
            or (isinstance(value, float) and value != value)
            for value in values
        ], dtype=bool)
        return values, missing
    return values, np.zeros(len(values), dtype=bool)


def _labels_title(labels):
    """The legend's title: a pandas Series' name, else "label"."""
    name = getattr(labels, "name", None)
    return "label" if name is None else str(name)


def _class_colours(n_classes):
    """RGBA colours of ``n_classes`` classes: tab10, tab20, then a sampled viridis."""
    from matplotlib import colormaps

    if n_classes <= 10:
        return np.asarray(colormaps["tab10"].colors)[:n_classes]
    if n_classes <= 20:
        return np.asarray(colormaps["tab20"].colors)[:n_classes]
    return colormaps["viridis"](np.linspace(0, 1, n_classes))


class ImageGridDisplay:
    """A grid of images, one per row of ``images``.

    Use :meth:`from_estimator` to draw samples from a fitted model, or the
    constructor and :meth:`plot` for any flat images.

    Parameters
    ----------
    images : ndarray of shape (n_images, n_pixels)
        Flat images, drawn in row-major order.
    image_shape : tuple of int
        ``(height, width)`` of each image, or ``(channels, height, width)`` with
        1, 3 or 4 channels (channels first, as the estimators read rows).
    n_cols : int
        Images per grid row.

    Attributes
    ----------
    ax_ : matplotlib Axes
        The axes drawn on.
    figure_ : matplotlib Figure
        The figure holding ``ax_``.

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
        cls, estimator, *, image_shape=None, n_rows=10, n_cols=10, random_state=0,
        return_mean=True, ax=None,
    ):
        """Plot ``estimator.sample(n_rows * n_cols)`` as a grid of images.

        Parameters
        ----------
        estimator : fitted skvae estimator
        image_shape : tuple of int or None, default=None
            Shape of each image; None takes the estimator's ``image_shape_`` or, for
            a square number of features, a square grey image.
        n_rows, n_cols : int, default=10
            Size of the grid.
        random_state : int, RandomState instance or None, default=0
            Seeds the latent draws.
        return_mean : bool, default=True
            Draw the decoder means (smooth images) rather than samples of p(x | z).
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.

        Returns
        -------
        display : ImageGridDisplay
        """
        check_is_fitted(estimator)
        image_shape = _resolve_image_shape(image_shape, estimator)
        images = estimator.sample(
            n_rows * n_cols, random_state=random_state, return_mean=return_mean
        )
        return cls(images, image_shape=image_shape, n_cols=n_cols).plot(ax=ax)

    def plot(self, *, ax=None, cmap="gray_r"):
        """Tile the images with a one-pixel gap and draw them; returns self."""
        ax = _axes(ax)
        canvas = _tile(self.images, self.image_shape, self.n_cols)
        ax.imshow(canvas, cmap=cmap, interpolation="nearest")
        ax.set_axis_off()
        self.ax_, self.figure_ = ax, ax.figure
        return self


class InterpolationDisplay:
    """Images decoded along straight lines in latent space, one line per grid row.

    Use :meth:`from_estimator` with a fitted :class:`~skvae.VAETransformer` and
    pairs of rows; :meth:`~skvae.VAETransformer.interpolate` computes the images.

    Parameters
    ----------
    images : ndarray of shape (n_pairs * n_steps, n_pixels)
        Flat images, line by line.
    image_shape : tuple of int
        ``(height, width)`` or ``(channels, height, width)`` of each image.
    n_steps : int
        Images per line.

    Attributes
    ----------
    ax_ : matplotlib Axes
        The axes drawn on.
    figure_ : matplotlib Figure
        The figure holding ``ax_``.

    Examples
    --------
    >>> import numpy as np
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skvae import VAETransformer
    >>> from skvae.plotting import InterpolationDisplay
    >>> X = np.random.RandomState(0).uniform(size=(60, 16))
    >>> vae = VAETransformer(hidden_layer_sizes=(8,), tol=1.0, random_state=0).fit(X)
    >>> display = InterpolationDisplay.from_estimator(vae, X[:2], X[2:4], n_steps=6)
    >>> display.images.shape
    (12, 16)
    """

    def __init__(self, images, *, image_shape, n_steps):
        self.images = images
        self.image_shape = image_shape
        self.n_steps = n_steps

    @classmethod
    def from_estimator(cls, estimator, X_start, X_end, *, n_steps=8, image_shape=None,
                       ax=None):
        """Plot ``estimator.interpolate(X_start, X_end, n_steps)`` as a grid of images.

        Parameters
        ----------
        estimator : fitted VAETransformer
        X_start, X_end : array-like of shape (n_pairs, n_features)
            The images to start and end each line at.
        n_steps : int, default=8
            Images per line, the two ends included.
        image_shape : tuple of int or None, default=None
            Shape of each image; None takes the estimator's ``image_shape_`` or, for
            a square number of features, a square grey image.
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.

        Returns
        -------
        display : InterpolationDisplay
        """
        check_is_fitted(estimator)
        image_shape = _resolve_image_shape(image_shape, estimator)
        images = np.asarray(estimator.interpolate(X_start, X_end, n_steps=n_steps))
        return cls(images, image_shape=image_shape, n_steps=n_steps).plot(ax=ax)

    def plot(self, *, ax=None, cmap="gray_r"):
        """Draw each line as a row of images, start on the left; returns self."""
        grid = ImageGridDisplay(self.images, image_shape=self.image_shape,
                                n_cols=self.n_steps).plot(ax=ax, cmap=cmap)
        self.ax_, self.figure_ = grid.ax_, grid.figure_
        return self


class LatentManifoldDisplay:
    """Images decoded from a regular grid of latent points: the learned manifold.

    The grid of generated digits that VAE tutorials show. The grid spans two
    latent dimensions; any other latent dimensions are held at 0, the prior mean.

    Parameters
    ----------
    images : ndarray of shape (n_points * n_points, n_pixels)
        Decoded images, row-major, the top row at the highest value of the second
        latent dimension.
    grid : ndarray of shape (n_points,)
        Latent values along each axis, increasing.
    image_shape : tuple of int
        ``(height, width)`` or ``(channels, height, width)`` of each image.
    dims : pair of int, default=(0, 1)
        The latent dimensions the grid spans, for the axis labels.

    Attributes
    ----------
    ax_ : matplotlib Axes
        The axes drawn on.
    figure_ : matplotlib Figure
        The figure holding ``ax_``.

    Examples
    --------
    >>> import numpy as np
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skvae import VAETransformer
    >>> from skvae.plotting import LatentManifoldDisplay
    >>> X = np.random.RandomState(0).uniform(size=(40, 16))
    >>> vae = VAETransformer(hidden_layer_sizes=(8,), max_iter=5, tol=1e3,
    ...                      n_iter_no_change=1, random_state=0).fit(X)
    >>> display = LatentManifoldDisplay.from_estimator(vae, n_points=5)
    >>> display.images.shape, display.ax_.get_xlabel()
    ((25, 16), 'latent dimension 0')
    """

    def __init__(self, images, *, grid, image_shape, dims=(0, 1)):
        self.images = images
        self.grid = grid
        self.image_shape = image_shape
        self.dims = dims

    @classmethod
    def from_estimator(
        cls, estimator, *, n_points=15, grid_range=(-2.0, 2.0), dims=(0, 1),
        image_shape=None, ax=None,
    ):
        """Decode an ``n_points`` x ``n_points`` grid of latent points and draw it.

        Parameters
        ----------
        estimator : fitted skvae estimator
            With at least two latent dimensions.
        n_points : int, default=15
            Grid points along each latent axis.
        grid_range : pair of float, default=(-2.0, 2.0)
            Lowest and highest latent value on each axis. The prior is N(0, I),
            so (-2, 2) covers about 95% of it per axis.
        dims : pair of int, default=(0, 1)
            The latent dimensions the grid spans; others are held at 0.
        image_shape : tuple of int or None, default=None
            Shape of each image; None takes the estimator's ``image_shape_`` or,
            for a square number of features, a square grey image.
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.

        Returns
        -------
        display : LatentManifoldDisplay
        """
        check_is_fitted(estimator)
        n_latent = estimator.n_components_
        if n_latent < 2:
            raise ValueError(
                "LatentManifoldDisplay needs at least 2 latent dimensions; the "
                f"estimator has {n_latent}. Fit it with n_components=2."
            )
        if len(dims) != 2 or dims[0] == dims[1] or not all(
            0 <= int(d) < n_latent for d in dims
        ):
            raise ValueError(
                f"dims={dims!r} must be two different latent dimensions in "
                f"0..{n_latent - 1}."
            )
        if not (isinstance(n_points, (int, np.integer)) and n_points >= 2):
            raise ValueError(f"n_points={n_points!r} must be an integer >= 2.")
        image_shape = _resolve_image_shape(image_shape, estimator)
        low, high = grid_range
        grid = np.linspace(low, high, n_points)
        # Image rows run from the top, so the highest value of dims[1] comes first.
        second, first = np.meshgrid(grid[::-1], grid, indexing="ij")
        Z = np.zeros((n_points * n_points, n_latent))
        Z[:, dims[0]] = first.ravel()
        Z[:, dims[1]] = second.ravel()
        images = estimator.decode(Z)
        return cls(images, grid=grid, image_shape=image_shape, dims=dims).plot(ax=ax)

    def plot(self, *, ax=None, cmap="gray_r"):
        """Draw the images at their latent coordinates; returns self."""
        ax = _axes(ax)
        n_points = len(self.grid)
        canvas = _tile(self.images, self.image_shape, n_points)
        step = (self.grid[-1] - self.grid[0]) / (n_points - 1)
        low, high = self.grid[0] - step / 2, self.grid[-1] + step / 2
        ax.imshow(
            canvas, cmap=cmap, interpolation="nearest", extent=(low, high, low, high)
        )
        ax.set_xlabel(f"latent dimension {self.dims[0]}")
        ax.set_ylabel(f"latent dimension {self.dims[1]}")
        self.ax_, self.figure_ = ax, ax.figure
        return self


class ReconstructionDisplay:
    """Images above their reconstructions ``inverse_transform(transform(X))``.

    Parameters
    ----------
    rows : list of ndarray of shape (n_images, n_pixels)
        Rows of images, drawn top to bottom (for example originals, then
        reconstructions).
    row_labels : list of str
        One label per row, drawn at the left.
    image_shape : tuple of int
        ``(height, width)`` or ``(channels, height, width)`` of each image.

    Attributes
    ----------
    ax_ : matplotlib Axes
        The axes drawn on.
    figure_ : matplotlib Figure
        The figure holding ``ax_``.

    Examples
    --------
    >>> import numpy as np
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skvae import VAETransformer
    >>> from skvae.plotting import ReconstructionDisplay
    >>> X = np.random.RandomState(0).uniform(size=(40, 16))
    >>> vae = VAETransformer(hidden_layer_sizes=(8,), max_iter=5, tol=1e3,
    ...                      n_iter_no_change=1, random_state=0).fit(X)
    >>> display = ReconstructionDisplay.from_estimator(vae, X, n_images=6)
    >>> [label.get_text() for label in display.ax_.get_yticklabels()]
    ['original', 'reconstruction']
    """

    def __init__(self, rows, *, row_labels, image_shape):
        self.rows = rows
        self.row_labels = row_labels
        self.image_shape = image_shape

    @classmethod
    def from_estimator(
        cls, estimator, X, *, X_clean=None, n_images=10, image_shape=None, ax=None
    ):
        """Reconstruct the first ``n_images`` rows of ``X`` and draw both.

        Parameters
        ----------
        estimator : fitted skvae estimator
        X : array-like of shape (n_samples, n_features)
            Images to reconstruct (through the posterior mean).
        X_clean : array-like of shape (n_samples, n_features) or None, default=None
            Uncorrupted versions of ``X``, for denoising: when given, they are
            drawn as a first row, above the noisy inputs and their
            reconstructions.
        n_images : int, default=10
            Number of images (columns) to draw.
        image_shape : tuple of int or None, default=None
            Shape of each image; None takes the estimator's ``image_shape_`` or,
            for a square number of features, a square grey image.
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.

        Returns
        -------
        display : ReconstructionDisplay
        """
        check_is_fitted(estimator)
        X = np.asarray(X)[:n_images]
        image_shape = _resolve_image_shape(image_shape, estimator, X.shape[1])
        reconstructed = estimator.decode(estimator.encode(X))
        if X_clean is None:
            rows, labels = [X, reconstructed], ["original", "reconstruction"]
        else:
            rows = [np.asarray(X_clean)[:n_images], X, reconstructed]
            labels = ["original", "noisy input", "reconstruction"]
        return cls(rows, row_labels=labels, image_shape=image_shape).plot(ax=ax)

    def plot(self, *, ax=None, cmap="gray_r"):
        """Draw one row of images per entry of ``rows``; returns self."""
        ax = _axes(ax)
        n_cols = max(len(row) for row in self.rows)
        images = np.full((len(self.rows) * n_cols, self.rows[0].shape[1]), np.nan)
        for i, row in enumerate(self.rows):
            images[i * n_cols : i * n_cols + len(row)] = row
        ax.imshow(_tile(images, self.image_shape, n_cols), cmap=cmap,
                  interpolation="nearest")
        height = _resolve_image_shape(self.image_shape)[1]
        ax.set_yticks([i * (height + 1) + (height - 1) / 2 for i in range(len(self.rows))])
        ax.set_yticklabels(self.row_labels)
        ax.set_xticks([])
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
        self.ax_, self.figure_ = ax, ax.figure
        return self


class TrainingCurveDisplay:
    """The training loss per epoch and, with early stopping, the validation loss.

    Both are negative ELBOs in nats per row, so lower is better and the two curves
    share an axis: ``loss_curve_`` and ``-validation_scores_``.

    Parameters
    ----------
    loss_curve : list of float
        Training loss (negative ELBO) after each epoch.
    validation_scores : list of float or None, default=None
        Held-out ELBO after each epoch (drawn negated), or None.

    Attributes
    ----------
    ax_ : matplotlib Axes
        The axes drawn on.
    figure_ : matplotlib Figure
        The figure holding ``ax_``.

    Examples
    --------
    >>> import numpy as np
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skvae import VAETransformer
    >>> from skvae.plotting import TrainingCurveDisplay
    >>> X = np.random.RandomState(0).uniform(size=(40, 5))
    >>> vae = VAETransformer(hidden_layer_sizes=(8,), max_iter=5, tol=1e3,
    ...                      n_iter_no_change=1, early_stopping=True,
    ...                      random_state=0).fit(X)
    >>> display = TrainingCurveDisplay.from_estimator(vae)
    >>> [line.get_label() for line in display.ax_.get_lines()]
    ['training', 'validation']
    """

    def __init__(self, loss_curve, *, validation_scores=None):
        self.loss_curve = loss_curve
        self.validation_scores = validation_scores

    @classmethod
    def from_estimator(cls, estimator, *, ax=None):
        """Draw ``loss_curve_`` and ``validation_scores_`` of a fitted estimator.

        Parameters
        ----------
        estimator : fitted skvae estimator
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.

        Returns
        -------
        display : TrainingCurveDisplay
        """
        check_is_fitted(estimator)
        return cls(
            estimator.loss_curve_, validation_scores=estimator.validation_scores_
        ).plot(ax=ax)

    def plot(self, *, ax=None):
        """Draw the curves; returns self."""
        ax = _axes(ax)
        epochs = np.arange(1, len(self.loss_curve) + 1)
        ax.plot(epochs, self.loss_curve, marker=".", label="training")
        if self.validation_scores is not None:
            ax.plot(
                epochs, -np.asarray(self.validation_scores), marker=".",
                label="validation",
            )
        ax.set_xlabel("epoch")
        ax.set_ylabel("negative ELBO (nats per row)")
        ax.legend(loc="best")
        ax.grid(alpha=0.3)
        self.ax_, self.figure_ = ax, ax.figure
        return self


class FeatureScoreDisplay:
    """Which columns make a row an outlier: its lowest per-feature scores, or an image map.

    Draws one row of :meth:`~skvae.VAEOutlierDetector.score_features`, the log-density
    of each column given the row's latent code (lower is less likely): for a
    table, horizontal bars of the ``n_top`` lowest columns, the most anomalous
    at the top; for images, a heat map of minus the scores over the image
    (bright where the image is unlikely), summed over channels.

    Parameters
    ----------
    scores : ndarray of shape (n_features,)
        The row's per-feature scores.
    feature_names : sequence of str
        One name per feature.
    n_top : int, default=10
        Bars drawn for a table: the ``n_top`` lowest scores.
    image_shape : tuple of int or None, default=None
        ``(height, width)`` or ``(channels, height, width)``: draw a heat map
        over the image instead of bars.

    Attributes
    ----------
    ax_ : matplotlib Axes
        The axes drawn on.
    figure_ : matplotlib Figure
        The figure holding ``ax_``.
    shown_ : ndarray of int
        The features drawn as bars, lowest score first; every feature for an image.

    Examples
    --------
    >>> import numpy as np
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skvae import VAEOutlierDetector
    >>> from skvae.plotting import FeatureScoreDisplay
    >>> X = np.random.RandomState(0).normal(size=(200, 4))
    >>> detector = VAEOutlierDetector(hidden_layer_sizes=(8,), max_iter=20,
    ...                               random_state=0).fit(X)
    >>> display = FeatureScoreDisplay.from_estimator(detector, [[0.0, 0.0, 9.0, 0.0]])
    >>> display.ax_.get_yticklabels()[0].get_text()
    'x2'
    """

    def __init__(self, scores, *, feature_names, n_top=10, image_shape=None):
        self.scores = scores
        self.feature_names = feature_names
        self.n_top = n_top
        self.image_shape = image_shape

    @classmethod
    def from_estimator(cls, estimator, X, *, row=0, n_top=10, image_shape=None, ax=None):
        """Score the features of row ``row`` of ``X`` and draw them.

        Parameters
        ----------
        estimator : fitted VAEOutlierDetector, or a Pipeline ending in one
            Fitted with ``anomaly_score="log_likelihood"`` or ``"reconstruction"``.
            A Pipeline's steps before the detector transform the row, and their
            ``get_feature_names_out`` names the bars.
        X : array-like of shape (n_samples, n_features)
            Rows (a DataFrame, an array, a list of rows); only row ``row`` is scored.
        row : int, default=0
            Position of the row to explain.
        n_top : int, default=10
            Number of columns drawn for a table, those with the lowest scores.
        image_shape : tuple of int or None, default=None
            Draw a heat map over images of this shape. None takes the estimator's
            ``image_shape_`` when it is a real image (a conv network's), else bars.
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.

        Returns
        -------
        display : FeatureScoreDisplay
        """
        check_is_fitted(estimator)
        if isinstance(n_top, bool) or not isinstance(n_top, (int, np.integer)) or n_top < 1:
            raise ValueError(f"n_top={n_top!r} must be a positive integer.")
        one_row, names = _one_row(X, row), None
        if hasattr(estimator, "steps"):  # a Pipeline ending in the detector
            preprocessing, estimator = estimator[:-1], estimator[-1]
            one_row, names = preprocessing.transform(one_row), _names_out(preprocessing)
        scores = np.asarray(estimator.score_features(one_row), dtype=np.float64)[0]
        fitted_names = getattr(estimator, "feature_names_in_", None)
        names = fitted_names if fitted_names is not None else names
        names = ([str(n) for n in names] if names is not None and len(names) == len(scores)
                 else [f"x{j}" for j in range(len(scores))])
        if image_shape is not None or _fitted_image(estimator):
            image_shape = _resolve_image_shape(image_shape, estimator, len(scores))
        return cls(scores, feature_names=names, n_top=n_top,
                   image_shape=image_shape).plot(ax=ax)

    def plot(self, *, ax=None, cmap="inferno"):
        """Draw the bars, or the heat map for images; returns self."""
        ax = _axes(ax)
        if self.image_shape is not None:
            self._plot_map(ax, cmap)
        else:
            self._plot_bars(ax)
        self.ax_, self.figure_ = ax, ax.figure
        return self

    def _plot_bars(self, ax):
        scores = np.asarray(self.scores)
        self.shown_ = np.argsort(scores, kind="stable")[: self.n_top]
        positions = np.arange(len(self.shown_))
        ax.barh(positions, scores[self.shown_])
        ax.set_yticks(positions)
        ax.set_yticklabels([self.feature_names[j] for j in self.shown_])
        ax.invert_yaxis()  # the most anomalous column on top
        ax.set_xlabel("log p(x_j | z) (nats): lower is less likely")
        ax.grid(axis="x", alpha=0.3)

    def _plot_map(self, ax, cmap):
        n_channels, height, width = _resolve_image_shape(self.image_shape)
        self.shown_ = np.arange(len(self.scores))
        surprise = -np.reshape(self.scores, (n_channels, height, width)).sum(axis=0)
        image = ax.imshow(surprise, cmap=cmap, interpolation="nearest")
        ax.figure.colorbar(image, ax=ax, label="-log p(x_j | z) (nats)")
        ax.set_xticks([])
        ax.set_yticks([])


def _fitted_image(estimator):
    """Whether the estimator's rows are real images (``image_shape_`` with height and width)."""
    shape = getattr(estimator, "image_shape_", None)
    return shape is not None and shape[1] > 1 and shape[2] > 1


def _names_out(preprocessing):
    """The output column names of fitted preprocessing steps, or None where they have none."""
    try:
        return list(preprocessing.get_feature_names_out())
    except (AttributeError, TypeError, ValueError):
        return None


def _one_row(X, row):
    """Row ``row`` of ``X`` as a one-row table of the same kind (a frame stays one)."""
    n_rows = X.shape[0] if hasattr(X, "shape") else len(X)
    if isinstance(row, bool) or not isinstance(row, (int, np.integer)) or not (
            -n_rows <= row < n_rows):
        raise ValueError(f"row={row!r} is not a row of X, which has {n_rows} rows.")
    if hasattr(X, "iloc"):
        return X.iloc[[row]]
    return np.asarray(X)[[row]] if not hasattr(X, "shape") else X[[row]]
