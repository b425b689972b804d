"""Monotone maps that give each real-valued column of a table a Gaussian shape.

A Gaussian decoder models every numeric column with a bell around its mean: a
skewed price, a two-humped wage or a count piled up at zero come back as bells,
and a classifier tells such samples from real rows at once. A *quantile map*
sends a column's training quantiles to the standard normal's quantiles, so the
network models values that are Gaussian at least one column at a time, and
samples mapped back have the column's own shape.

The map is piecewise linear through *knots*: up to ``MAX_KNOTS`` quantiles of the
column, at most one per ``MIN_ROWS_PER_KNOT`` rows (tied quantiles merged into one
knot), each sent to the normal quantile of its rank (the middle of its ranks for
a value many rows share). Beyond the
training range it continues with its end segments' slopes, so it is defined,
strictly increasing and invertible everywhere, and its slope is positive
everywhere: the density of a value ``x`` is the density of its image
``y = f(x)`` times ``f'(x)``, so likelihoods stay densities of the user's values
(the change of variables ``log p(x) = log p(y) + log f'(x)``). Going back, as
:class:`~sklearn.preprocessing.QuantileTransformer`'s inverse does, the whole
interval of normal quantiles a repeated value spans comes back as that value:
samples of a column recorded to two decimals, or of a count, repeat its values
as often as the data do, rather than falling between them.

The functions are pure numpy; :class:`QuantileMaps` holds the fitted knots of
the mapped columns of a table and checks them when a model file is read.
"""

import numpy as np
from scipy.special import ndtr, ndtri

# Knots per column at most: as QuantileTransformer's default ``n_quantiles``.
MAX_KNOTS = 1000
# Rows per quantile level at least. The map's slope between two knots is the
# density it gives the values between them, so with a knot at every row of a
# small table it is a histogram of one row per bin: its log is off by about
# 0.58 nats (Euler's constant) per column on held-out rows, and with five rows
# per level by about 0.1. Five lifted creditcard's held-out log-likelihood
# (923 training rows) from -21.2 to -18.7 nats; three let one row beyond the
# training range score -5,400 (benchmarks/results_synthetic.md).
MIN_ROWS_PER_KNOT = 5
# Knots over all columns at most: the maps travel in a model file's JSON header,
# which safetensors caps at 100 MB; 500,000 knots of three numbers each take
# about 30 MB. Wide tables get fewer knots per column (784 columns: 637).
MAX_TOTAL_KNOTS = 500_000


def knots_per_column(n_columns):
    """Knots each of ``n_columns`` mapped columns may have: at most ``MAX_KNOTS``,
    and ``MAX_TOTAL_KNOTS`` over all of them (at least 2, a linear map).

    Examples
    --------
    >>> knots_per_column(10), knots_per_column(784), knots_per_column(10**6)
    (1000, 637, 2)
    """
    return int(min(MAX_KNOTS, max(2, MAX_TOTAL_KNOTS // max(n_columns, 1))))


def fit_knots(values, max_knots=MAX_KNOTS):
    """Knots of the quantile map of the observed ``values``, with their images.

    Parameters
    ----------
    values : ndarray of shape (n,)
        A column's values; NaN entries are left out.
    max_knots : int
        Quantile levels to place, at most (and at most one per
        ``MIN_ROWS_PER_KNOT`` values, at least 2).

    Returns
    -------
    knots, low, high : ndarray of shape (n_knots,) or None
        Strictly increasing knots (the distinct quantiles of ``values``) and
        the normal quantiles of the lowest and highest rank among the rows
        that hold each: a value shared by many rows spans an interval. None
        when fewer than two distinct values are observed (nothing to map).

    Notes
    -----
    Rank ``i`` of ``n`` sits at level ``(i + 0.5) / n``, so that the
    smallest and largest values have finite images, about ``±ndtri(1 - 0.5 / n)``.
    A knot's image is the middle of its interval (:func:`forward`); a draw
    anywhere in the interval comes back as the knot (:func:`inverse`), so
    samples repeat a repeated value as often as the data do.

    Examples
    --------
    >>> import numpy as np
    >>> knots, low, high = fit_knots(np.repeat([1.0, 2.0, 3.0], [5, 15, 5]))
    >>> knots
    array([1., 2., 3.])
    >>> np.round(low, 3), np.round(high, 3)
    (array([-2.054, -0.772,  0.915]), array([-0.915,  0.772,  2.054]))
    """
    values = np.sort(np.asarray(values, dtype=np.float64))
    values = values[~np.isnan(values)]
    n = values.shape[0]
    if n < 2 or values[0] == values[-1]:
        return None, None, None
    levels = np.linspace(0.0, 1.0, min(max_knots, max(2, n // MIN_ROWS_PER_KNOT)))
    # The observed value nearest each level, not an interpolation between two:
    # knots are values of the data, and a repeated value is one knot (an
    # interpolation may land 1e-16 beside it, a knot of its own and a spike).
    knots = np.unique(values[np.round(levels * (n - 1)).astype(np.intp)])
    # A knot spans the ranks of all its rows, not only of the levels that fell
    # on it: a value a fifth of the rows share comes back in a fifth of the
    # samples, however coarse the levels.
    first = np.searchsorted(values, knots, side="left")
    last = np.searchsorted(values, knots, side="right") - 1
    return knots, ndtri((first + 0.5) / n), ndtri((last + 0.5) / n)


def images_of(low, high):
    """The image of each knot: the middle of its interval of normal quantiles."""
    return (np.asarray(low) + np.asarray(high)) / 2.0


def _linear_through(x, xs, ys):
    """``x`` on the polyline through ``(xs, ys)``, continued by its end segments."""
    x = np.asarray(x, dtype=np.float64)
    y = np.interp(x, xs, ys)
    with np.errstate(invalid="ignore"):  # NaN compares False
        below, above = x < xs[0], x > xs[-1]
    y[below] = ys[0] + (x[below] - xs[0]) * (ys[1] - ys[0]) / (xs[1] - xs[0])
    y[above] = ys[-1] + (x[above] - xs[-1]) * (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
    return y


def forward(x, knots, low, high):
    """The map's image of ``x`` (NaN stays NaN): linear between knots and beyond them.

    Examples
    --------
    >>> import numpy as np
    >>> forward(np.array([0.0, 1.5, 4.0]), np.array([1.0, 2.0]), np.array([-1.0, 1.0]),
    ...         np.array([-1.0, 1.0]))
    array([-3.,  0.,  5.])
    """
    return _linear_through(x, knots, images_of(low, high))


def inverse(y, knots, low, high):
    """The value an image ``y`` stands for: a knot's whole interval gives the knot.

    Linear between intervals. Beyond the end intervals it continues with the
    reciprocal of :func:`forward`'s end slopes, so images beyond the training
    range come back at the pace they went out (a count piled up at zero does
    not send an image a little below its interval to -100). It undoes
    :func:`forward` wherever no value is repeated (where ``low == high``); a
    draw near a repeated value's image comes back as that value.

    Examples
    --------
    >>> import numpy as np
    >>> knots, low, high = np.array([1.0, 2.0]), np.array([-1.0, 0.5]), np.array([0.0, 1.5])
    >>> np.round(inverse(np.array([-0.5, 0.25, 1.0, 2.5]), knots, low, high), 4)
    array([1.    , 1.5   , 2.    , 2.6667])
    """
    y = np.asarray(y, dtype=np.float64)
    x = np.interp(y, np.column_stack([low, high]).ravel(), np.repeat(knots, 2))
    images = images_of(low, high)
    with np.errstate(invalid="ignore"):
        below, above = y < low[0], y > high[-1]
    x[below] = knots[0] + (y[below] - low[0]) * (knots[1] - knots[0]) / (images[1] - images[0])
    x[above] = knots[-1] + (y[above] - high[-1]) * (knots[-1] - knots[-2]) / (
        images[-1] - images[-2])
    return x


def _log_slopes(knots, low, high):
    return np.log(np.diff(images_of(low, high)) / np.diff(knots))


def log_slope(x, knots, low, high):
    """``log f'(x)``, the log-derivative of :func:`forward` at ``x`` (NaN stays NaN).

    At a knot itself the slope of the segment to its right is taken (to its
    left at the last knot): the map's derivative is piecewise constant and a
    density is defined up to such a set of measure zero.

    Examples
    --------
    >>> import numpy as np
    >>> images = np.array([-1.0, 1.0, 2.0])
    >>> np.exp(log_slope(np.array([0.0, 1.5, 9.0]), np.array([1.0, 2.0, 3.0]),
    ...                  images, images))
    array([2., 2., 1.])
    """
    x = np.asarray(x, dtype=np.float64)
    slopes = _log_slopes(knots, low, high)
    segment = np.clip(np.searchsorted(knots, x, side="right") - 1, 0, len(slopes) - 1)
    return np.where(np.isnan(x), np.nan, slopes[segment])


def expected_log_slope(knots, low, high):
    """``E[log f'(X)]`` when ``f(X)`` is standard normal: the map's own mean log-slope.

    Each segment's log-slope weighted by the normal mass between its images,
    the tails by the mass beyond the end images. It stands in for the
    log-derivative at an entry that is missing (whose value is unknown), so a
    row's log-density in the user's units does not depend on which entries it lacks.

    Examples
    --------
    >>> import numpy as np
    >>> # A linear map of slope 2 everywhere: log 2 whatever the weights.
    >>> images = np.array([0.0, 2.0, 4.0])
    >>> float(np.round(expected_log_slope(np.array([0.0, 1.0, 2.0]), images, images), 6))
    0.693147
    """
    images = images_of(low, high)
    mass = np.diff(ndtr(images))
    mass[0] += ndtr(images[0])
    mass[-1] += 1.0 - ndtr(images[-1])
    return float(mass @ _log_slopes(knots, low, high))


class QuantileMaps:
    """The fitted quantile maps of some columns of a table of codes.

    Parameters
    ----------
    columns : sequence of int
        The mapped columns, ascending.
    knots, low, high : list of ndarray
        Per mapped column, its knots and their intervals of images
        (:func:`fit_knots`).
    """

    def __init__(self, columns, knots, low, high):
        self.columns = tuple(int(j) for j in columns)
        self.knots, self.low, self.high = list(knots), list(low), list(high)
        self.expected_log_slopes = np.array(
            [expected_log_slope(*m) for m in self._maps()])

    def _maps(self):
        return zip(self.knots, self.low, self.high)

    def __eq__(self, other):
        return (type(other) is type(self) and self.columns == other.columns
                and all(np.array_equal(a, b) for a, b in zip(
                    self.knots + self.low + self.high, other.knots + other.low + other.high)))

    __hash__ = None  # mutable arrays inside

    @classmethod
    def fit(cls, X, columns, max_knots=None):
        """The maps of those ``columns`` of ``X`` with two or more distinct values, or None.

        ``max_knots`` None: :func:`knots_per_column` of the number of columns.
        """
        if max_knots is None:
            max_knots = knots_per_column(len(columns))
        kept, maps = [], []
        for j in columns:
            knots, low, high = fit_knots(np.asarray(X[:, j]), max_knots)
            # Values a subnormal step apart give slopes beyond float64: such a
            # column keeps the standardisation alone (it is constant to it).
            if knots is not None and _finite_slopes(knots, low, high):
                kept.append(j)
                maps.append((knots, low, high))
        if not kept:
            return None
        return cls(kept, *([m[i] for m in maps] for i in range(3)))

    def _each(self, function, X):
        out = np.array(X, dtype=np.float64)  # a copy: the caller's codes stay
        for j, m in zip(self.columns, self._maps()):
            out[:, j] = function(out[:, j], *m)
        return out

    def apply(self, X):
        """Codes ``X`` with the mapped columns replaced by their images (float64)."""
        return self._each(forward, X)

    def invert(self, Y):
        """Images ``Y`` (in the layout of the codes) with the mapped columns mapped back."""
        return self._each(inverse, Y)

    def log_slopes(self, X):
        """``log f_j'(x_ij)`` per entry: 0 in unmapped columns, NaN where ``X`` is."""
        out = np.zeros(X.shape, dtype=np.float64)
        for j, m in zip(self.columns, self._maps()):
            out[:, j] = log_slope(X[:, j], *m)
        return out

    def expected(self, n_features):
        """Per column its :func:`expected_log_slope`, 0 for the unmapped columns."""
        out = np.zeros(n_features)
        out[list(self.columns)] = self.expected_log_slopes
        return out

    # ------------------------------------------------------------ persistence

    def get_state(self):
        """The fitted maps as JSON-ready data."""
        return {"columns": list(self.columns),
                "knots": [k.tolist() for k in self.knots],
                "low": [v.tolist() for v in self.low],
                "high": [v.tolist() for v in self.high]}

    @classmethod
    def from_state(cls, state, kinds):
        """Rebuild from :meth:`get_state`'s output, checking every entry.

        Raises
        ------
        ValueError
            Naming what is malformed: columns that are not real-valued columns
            of the table; knots or intervals that are not finite, of equal
            length, with strictly increasing knots and intervals that are in
            order and do not overlap.
        """
        keys = ("knots", "low", "high")
        if not (isinstance(state, dict) and set(state) == {"columns", *keys}):
            raise ValueError("the quantile maps entry is malformed.")
        columns = state["columns"]
        if not (isinstance(columns, list) and columns
                and all(type(j) is int and 0 <= j < len(kinds) for j in columns)
                and columns == sorted(set(columns))
                and all(kinds[j] == "gaussian" for j in columns)):
            raise ValueError(
                "the quantile maps name columns that are not distinct, ascending "
                "real-valued columns of the table."
            )
        if not all(isinstance(state[key], list) and len(state[key]) == len(columns)
                   for key in keys):
            raise ValueError("the quantile maps do not hold one map per mapped column.")
        if sum(len(k) if isinstance(k, list) else 0 for k in state["knots"]) > max(
                MAX_TOTAL_KNOTS, 2 * len(columns)):
            raise ValueError(f"the quantile maps hold more than {MAX_TOTAL_KNOTS} knots.")
        maps = [[_checked_numbers(values, j) for values in column]
                for j, column in zip(columns, zip(*(state[key] for key in keys)))]
        for j, (knots, low, high) in zip(columns, maps):
            if not len(knots) == len(low) == len(high):
                raise ValueError(
                    f"the quantile map of column {j} has {len(knots)} knots but "
                    f"{len(low)} and {len(high)} interval ends."
                )
            # Strictly increasing knots, and intervals in order that do not
            # touch: every slope is then positive, and the map invertible.
            ordered = (np.all(np.diff(knots) > 0) and np.all(high >= low)
                       and np.all(low[1:] > high[:-1]))
            if not (ordered and _finite_slopes(knots, low, high)):
                raise ValueError(
                    f"the quantile map of column {j} does not have strictly "
                    "increasing knots and ordered, separate intervals with finite slopes."
                )
        return cls(columns, *([m[i] for m in maps] for i in range(3)))


def _finite_slopes(knots, low, high):
    """Whether every segment of the map has a positive, finite slope and log-slope."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return bool(np.all(np.isfinite(np.diff(knots)))
                    and np.all(np.isfinite(np.diff(np.column_stack([low, high]).ravel())))
                    and np.all(np.isfinite(_log_slopes(knots, low, high))))


def _checked_numbers(values, j):
    """``values`` of a file as a float64 array of 2 to ``MAX_KNOTS`` finite numbers."""
    if not (isinstance(values, list) and 2 <= len(values) <= MAX_KNOTS
            and all(type(x) in (int, float) for x in values)):
        raise ValueError(f"the quantile map of column {j} is not 2 to {MAX_KNOTS} numbers.")
    try:
        array = np.array(values, dtype=np.float64)
    except OverflowError:
        raise ValueError(
            f"the quantile map of column {j} holds numbers beyond float64.") from None
    if not np.all(np.isfinite(array)):
        raise ValueError(f"the quantile map of column {j} holds NaN or infinite values.")
    return array
