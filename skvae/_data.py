"""The data layer: between the user's columns and the network's tensors.

:class:`DataSpace` is fitted once, in ``fit``. It knows the likelihood that
models the columns and how they are scaled, turns validated rows into the
float32 tensors the network reads, turns decoder output back into data in the
user's units, and gives the log-determinant that turns densities of the scaled
data into densities of the data as passed. Every conversion between numpy and
torch for data rows happens here, so layout and dtype never reach the network:
the same rows give the same tensor, bit for bit, whatever their memory order.

Knows numpy and torch, not scikit-learn's estimator machinery.
"""


import warnings

import numpy as np
import torch

from ._column_maps import QuantileMaps
from ._likelihoods import BOUND_TOLERANCE, outside_support, refuse_outside_support
from ._support import ColumnSupport
from ._tables import MAX_LEVELS
from ._warnings import warn


# Data with more values than this, or backed by a file (a numpy.memmap), are never
# copied whole: statistics are computed in row blocks and training reads its
# minibatches from the array (see is_streamed).
STREAM_VALUES = 2**26
_STATS_BLOCK_ROWS = 65536


def is_streamed(X):
    """Whether ``X`` is read in blocks and minibatches instead of copied whole.

    True for arrays backed by a file (a ``numpy.memmap``, or a view of one, as
    input validation returns) and for arrays of more than ``STREAM_VALUES``
    values.
    """
    if X.size > STREAM_VALUES:
        return True
    array = X
    while array is not None:
        if isinstance(array, np.memmap):
            return True
        array = getattr(array, "base", None)
    return False


def output_dtype(X):
    """The float dtype of results computed from the rows ``X``: float32 stays, else float64.

    As scikit-learn's validation converts them; streamed arrays of other dtypes
    (uint8, float16, ...) keep theirs until they become tensors.
    """
    return np.float32 if X.dtype == np.float32 else np.float64


def _row_blocks(X, block_rows=_STATS_BLOCK_ROWS):
    for start in range(0, X.shape[0], block_rows):
        yield X[start : start + block_rows]


def _streamed_mean_std(X, transform=None):
    """Per-column mean and standard deviation of ``X`` in float64, two passes of blocks.

    Missing entries (NaN) are left out, as ``np.nanmean`` does. ``transform``,
    when given, is applied to each block first (the quantile maps), so the
    statistics are of the transformed data with no transformed copy of ``X``.
    """
    def blocks():
        for block in _row_blocks(X):
            yield block if transform is None else transform(block)

    total = np.zeros(X.shape[1])
    count = np.zeros(X.shape[1])
    for block in blocks():
        total += np.nansum(block, axis=0, dtype=np.float64)
        count += np.count_nonzero(~np.isnan(block), axis=0)
    mean = total / count
    squares = np.zeros(X.shape[1])
    for block in blocks():
        squares += np.nansum((block.astype(np.float64) - mean) ** 2, axis=0)
    return mean, np.sqrt(squares / count)


def _binary_statistics(X):
    """``(observed, largest, farthest)`` of the observed entries of ``X``.

    ``observed`` counts them; ``largest`` is the largest magnitude and
    ``farthest`` the largest distance from the nearer of 0 and 1. Counts add
    up and maxima combine exactly over row blocks, so data read in blocks get
    the statistics of the same data in memory, whatever a block holds (one that
    is all missing adds nothing).
    """
    observed = X.size - np.count_nonzero(np.isnan(X))
    if observed == 0:
        return 0, 0.0, 0.0
    magnitude = np.abs(X)
    farthest = np.nanmax(np.minimum(magnitude, np.abs(X - 1.0)))
    return observed, float(np.nanmax(magnitude)), float(farthest)


def _choose_likelihood(X):
    """The likelihood ``likelihood="auto"`` picks for ``X``: Bernoulli for 0/1 data.

    Binary data: every observed value is 0 or 1 up to a rounding error
    (``BOUND_TOLERANCE``) *relative to the data's scale*, their largest
    magnitude, as StandardScaler's tolerances are: MinMaxScaler's output may
    read 1.0000000000000004 or -1e-12 and stays binary, while continuous data
    around 5e-7 (all within an absolute 1e-6 of 0) are data at their own scale,
    Gaussian. Nothing observed: Gaussian. Streamed data are read in row blocks
    and give the choice of the same data in memory.
    """
    blocks = _row_blocks(X) if is_streamed(X) else [X]
    observed, largest, farthest = 0, 0.0, 0.0
    for block in blocks:
        n, block_largest, block_farthest = _binary_statistics(block)
        observed += n
        largest, farthest = max(largest, block_largest), max(farthest, block_farthest)
    binary = observed > 0 and farthest <= BOUND_TOLERANCE * largest
    return "bernoulli" if binary else "gaussian"


def _constant_columns(mean, std, count):
    """Columns whose spread is rounding error of their mean, as in StandardScaler.

    scikit-learn's ``_is_constant_feature``: the variance is below the error
    that computing it in float64 over ``count`` values may leave, which scales
    with the mean. A spread of 1e-16 around 0 is data; the same spread around
    1e6 is rounding.
    """
    eps = np.finfo(np.float64).eps
    # var <= count * eps * var + (count * mean * eps)**2, solved for the standard
    # deviation so that nothing is squared: no overflow for means near 1e300.
    return std * np.sqrt(np.maximum(0.0, 1.0 - count * eps)) <= count * np.abs(mean) * eps


def _observed_counts(X):
    """Per column, the number of entries that are not NaN (in blocks if streamed)."""
    if not has_missing(X):
        return np.full(X.shape[1], float(X.shape[0]))
    counts = np.zeros(X.shape[1])
    for block in _row_blocks(X) if is_streamed(X) else [X]:
        counts += np.count_nonzero(~np.isnan(block), axis=0)
    return counts


KINDS = ("gaussian", "bernoulli", "categorical")


def transform_maps(numeric_transform, levels):
    """Whether ``numeric_transform`` maps the Gaussian columns of a table of ``levels``.

    "quantile" does; "auto" for a table with categorical columns (each of whose
    columns is modelled on its own), not for a homogeneous array; "none" never.
    """
    return numeric_transform == "quantile" or (numeric_transform == "auto" and any(levels))


class DataSpace:
    """Fitted map from data rows to network tensors and back.

    Rows arrive as *codes* (see :mod:`skvae._tables`): one float per input column,
    numbers as they are, categories as their index, NaN where an entry is missing.
    Each column has a kind: ``"gaussian"`` (standardised), ``"bernoulli"`` (in
    [0, 1], unscaled) or ``"categorical"`` (one-hot). When every column has the
    same numeric kind (images, arrays of numbers) the tensor is the scaled rows,
    column for column; otherwise the tensor holds the Gaussian columns, then the
    Bernoulli columns, then one one-hot block per categorical column, the layout
    of :class:`~skvae._likelihoods.MixedLikelihood`. A missing entry is NaN in the
    tensor (its whole block for a category), which the network reads as missing.

    Parameters
    ----------
    kinds : sequence of str
        Per column, one of ``KINDS``.
    shift, scale : ndarray of shape (n_features,)
        Gaussian columns enter the network as ``(x - shift) / scale``; other
        columns have shift 0 and scale 1.
    levels : sequence of int or None
        Per column, the number of categories (0 for numeric columns).
    support : ColumnSupport or None
        The observed range and integrality of the Gaussian columns, to which
        samples are clipped and rounded (see :mod:`skvae._support`); None for
        model files written before it, whose samples are left as drawn.
    maps : QuantileMaps or None
        Quantile maps of some Gaussian columns (see :mod:`skvae._column_maps`),
        applied before the scaling: those columns enter the network as
        ``(f_j(x) - shift) / scale`` and their densities gain ``log f_j'(x)``.
        None: no column is mapped.
    """

    def __init__(self, kinds, shift, scale, levels=None, support=None, maps=None):
        self.support = support
        self.maps = maps
        self.kinds = tuple(kinds)
        self.shift = shift
        self.scale = scale
        self.levels = tuple(levels) if levels is not None else (0,) * len(self.kinds)
        distinct = set(self.kinds)
        self.likelihood = (
            self.kinds[0] if len(distinct) == 1 and "categorical" not in distinct
            else "mixed"
        )
        kinds = np.array(self.kinds)
        self._columns = {kind: np.flatnonzero(kinds == kind) for kind in KINDS}

    def __eq__(self, other):
        return (
            type(other) is type(self)
            and self.kinds == other.kinds
            and self.levels == other.levels
            and np.array_equal(self.shift, other.shift)
            and np.array_equal(self.scale, other.scale)
            and self.support == other.support
            and self.maps == other.maps
        )

    __hash__ = None  # mutable arrays inside

    @classmethod
    def fit(cls, X, likelihood="auto", levels=None, *, estimator_name, numeric_transform="none"):
        """Choose the likelihoods (for ``"auto"``) and fit the scaling to the codes ``X``.

        Without categorical columns (``levels`` None or all 0) one likelihood
        models every column, chosen from all of ``X``: a homogeneous array (an
        image, a sensor's channels) gets one model, and a pixel that happens to
        be 0 in every training image does not get a likelihood of its own. With
        categorical columns the table is heterogeneous and each numeric column
        is chosen on its own: a 0/1 column is Bernoulli (a yes/no coded as a
        number), any other Gaussian. Real-valued (Gaussian) columns are
        standardised, ignoring missing entries; other columns are left as they are.

        ``numeric_transform`` "quantile" gives every Gaussian column with two or
        more distinct values a quantile map before the scaling; "auto" does so
        for the Gaussian columns of a table with categorical columns (each of
        whose columns is modelled on its own) and for no homogeneous array
        (images, arrays of numbers: their values keep one common model); "none"
        maps nothing.
        """
        levels = tuple(levels) if levels is not None else (0,) * X.shape[1]
        streamed = is_streamed(X)
        if not any(levels):
            if likelihood == "auto":
                likelihood = _choose_likelihood(X)
            else:
                refuse_outside_support(X, likelihood, estimator_name=estimator_name)
            kinds = [likelihood] * X.shape[1]
        else:
            kinds = []
            for j, n_levels in enumerate(levels):
                if n_levels:
                    kinds.append("categorical")
                elif likelihood == "auto":
                    kinds.append(_choose_likelihood(X[:, j]))
                else:
                    refuse_outside_support(X[:, j], likelihood, estimator_name=estimator_name,
                                  what=f"column {j} of X")
                    kinds.append(likelihood)
        n_features = X.shape[1]
        shift, scale = np.zeros(n_features), np.ones(n_features)
        gaussian = np.array([kind == "gaussian" for kind in kinds])
        support = ColumnSupport.fit(X, kinds)
        if not gaussian.any():
            return cls(kinds, shift, scale, levels, support)
        maps = (QuantileMaps.fit(X, np.flatnonzero(gaussian))
                if transform_maps(numeric_transform, levels) else None)
        # Overflow is reported below, with advice, rather than as numpy's warning.
        with np.errstate(over="ignore", invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
            if maps is not None:  # of the mapped values, block by block
                mean, std = _streamed_mean_std(X, maps.apply)
            elif streamed:  # no temporary the size of X
                mean, std = _streamed_mean_std(X)
            elif gaussian.all() and not has_missing(X):
                mean = X.mean(axis=0, dtype=np.float64)
                std = X.std(axis=0, dtype=np.float64)
            else:
                values = X[:, gaussian].astype(np.float64)
                mean, std = np.zeros(n_features), np.ones(n_features)
                mean[gaussian] = np.nanmean(values, axis=0)
                std[gaussian] = np.nanstd(values, axis=0)
        shift[gaussian], scale[gaussian] = mean[gaussian], std[gaussian]
        if not (np.all(np.isfinite(shift)) and np.all(np.isfinite(scale))):
            raise ValueError(
                "The mean or standard deviation of X overflows float64 (values "
                f"up to {np.nanmax(np.abs(X)):.3g}). Rescale X, for example with "
                "StandardScaler, before fitting."
            )
        # Constant features keep unit scale, as in StandardScaler; constant
        # relative to the column's own mean, not to 1.
        constant = gaussian & _constant_columns(shift, scale, _observed_counts(X))
        scale[constant] = 1.0
        return cls(kinds, shift, scale, levels, support, maps)

    @property
    def n_features(self):
        """Number of input columns."""
        return len(self.kinds)

    @property
    def n_values(self):
        """Width of the network's tensors: one per numeric column, one per category."""
        return sum(n if n else 1 for n in self.levels)

    @property
    def layout(self):
        """``(n_gaussian, n_bernoulli, levels)`` of the mixed tensor layout."""
        return (
            len(self._columns["gaussian"]),
            len(self._columns["bernoulli"]),
            tuple(self.levels[j] for j in self._columns["categorical"]),
        )

    @property
    def log_abs_det(self):
        """log|det| of the map from a row to the network's values, in nats.

        A log-density of the scaled data minus this is the log-density of the data
        as the user passed it: exactly for every row when no column has a
        quantile map, on average (:func:`~skvae._column_maps.expected_log_slope`)
        when some do, whose rows each have their own (:meth:`log_abs_det_of`).
        """
        value = float(np.log(self.scale).sum())
        if self.maps is not None:
            value -= float(self.maps.expected_log_slopes.sum())
        return value

    def _expected_log_slopes(self):
        return self.maps.expected(self.n_features)

    def column_terms_to_data(self, terms, X):
        """Per-column log-densities of scaled data as the user's columns, in data units.

        ``terms`` has one column per column of the likelihood, in its order
        (every column for one likelihood; for a table the Gaussian columns, then
        the Bernoulli columns, then the categorical ones), for the rows of codes
        ``X``. The result has the user's column order, and each Gaussian
        column's density is of the value as passed: ``log(scale_j)`` less, and
        ``log f_j'(x_ij)`` more for a mapped column (its expected value where
        the entry is missing, as :meth:`complete_log_abs_det_of` counts it), so
        the columns of a row sum to its completed log-density in data units.
        """
        terms = np.asarray(terms, dtype=np.float64)
        if self.likelihood == "mixed":
            order = np.concatenate([self._columns[kind] for kind in KINDS])
            columns = np.empty_like(terms)
            columns[:, order] = terms
            terms = columns
        terms = terms - np.log(self.scale)
        if self.maps is not None:
            slopes = self.maps.log_slopes(X)
            terms += np.where(np.isnan(slopes), self._expected_log_slopes(), slopes)
        return terms

    def log_abs_det_of(self, X):
        """log|det| of the map of each row of ``X`` (codes): its observed entries only.

        The float :attr:`log_abs_det` when ``X`` has no missing entry and no
        column is mapped.
        """
        if self.maps is None and not has_missing(X):
            return self.log_abs_det
        log_scale = np.log(self.scale)
        return np.concatenate([
            (~np.isnan(block)) @ log_scale - self._observed_log_slopes(block)
            for block in _row_blocks(X, _NAN_BLOCK_ROWS)
        ])

    def _observed_log_slopes(self, block):
        if self.maps is None:
            return 0.0
        return np.nansum(self.maps.log_slopes(block), axis=1)

    def complete_log_abs_det_of(self, X):
        """log|det| of each row of ``X`` completed for its holes.

        A missing entry of a mapped column counts its column's expected
        log-slope, an observed one its own: :attr:`log_abs_det` for a row whose
        mapped entries are all missing. The float :attr:`log_abs_det` when no
        column is mapped.
        """
        if self.maps is None:
            return self.log_abs_det
        expected = self._expected_log_slopes()
        return np.concatenate([
            self.log_abs_det + np.nansum(expected - self.maps.log_slopes(block), axis=1)
            for block in _row_blocks(X, _NAN_BLOCK_ROWS)
        ])

    def check_support(self, X, *, estimator_name, what="X", clip=False):
        """Refuse, or with ``clip`` warn about, values the likelihood cannot model.

        With ``clip=True`` values outside the Bernoulli likelihood's [0, 1] are
        scored as the nearest bound (:meth:`to_tensor` clips them) after a
        ``UserWarning``: held-out rows after ``MinMaxScaler`` stray a little
        outside the range of the training rows, and a density estimate should
        score them rather than fail in the middle of a cross-validation.
        """
        if self.likelihood == "mixed":
            columns = self._columns["bernoulli"]
            if not len(columns):
                return
            X = X[:, columns]
        bounds = outside_support(X, "bernoulli" if self.likelihood == "mixed" else
                                 self.likelihood)
        if bounds is None:
            return
        if not clip:
            refuse_outside_support(X, "bernoulli", estimator_name=estimator_name, what=what)
        warn(
            f"{what} contains values outside [0, 1] (min={bounds[0]:.6g}, "
            f"max={bounds[1]:.6g}), which the 'bernoulli' likelihood of this "
            f"{estimator_name} does not model; they are encoded and scored as the "
            "nearest of 0 and 1. Fit with likelihood='gaussian' to score them as they are, or "
            "scale with MinMaxScaler(clip=True).",
            UserWarning,
        )

    def to_tensor(self, X, device):
        """Codes ``X`` as a C-contiguous float32 tensor on ``device``.

        C order matters: torch picks its matrix kernels by stride, so a
        column-major array (a pandas frame) would round differently from the same
        rows in row-major order.
        """
        # Rows beyond float64 after scaling become inf here; inference reports them
        # as too far outside the training data, not as numpy warnings.
        with np.errstate(over="ignore"):
            if self.likelihood == "bernoulli":
                # Unscaled; values a rounding error (or, after a warning, more)
                # outside [0, 1] are scored as the bound. In-range values are copied
                # exactly, with no float64 round trip.
                scaled = np.clip(np.ascontiguousarray(X, dtype=np.float32), 0.0, 1.0)
            elif self.likelihood == "gaussian":
                values = X if self.maps is None else self.maps.apply(X)
                scaled = np.ascontiguousarray(
                    (np.asarray(values, dtype=np.float64) - self.shift) / self.scale
                )
            else:
                scaled = self._mixed_tensor(X)
        return torch.as_tensor(scaled, dtype=torch.float32, device=device)

    def _mixed_tensor(self, X):
        n_gaussian, n_bernoulli, _ = self.layout
        out = np.empty((X.shape[0], self.n_values), dtype=np.float32)
        gaussian, bernoulli = self._columns["gaussian"], self._columns["bernoulli"]
        values = X if self.maps is None else self.maps.apply(X)
        out[:, :n_gaussian] = (
            (values[:, gaussian] - self.shift[gaussian]) / self.scale[gaussian])
        out[:, n_gaussian : n_gaussian + n_bernoulli] = np.clip(X[:, bernoulli], 0.0, 1.0)
        start = n_gaussian + n_bernoulli
        for j in self._columns["categorical"]:
            n_levels = self.levels[j]
            codes = X[:, j]
            block = out[:, start : start + n_levels]
            block[:] = 0.0
            observed = ~np.isnan(codes)
            block[np.flatnonzero(observed), codes[observed].astype(np.intp)] = 1.0
            block[~observed] = np.nan
            start += n_levels
        return out

    def to_data(self, values):
        """Tensor-layout values (a numpy array) as float64 codes in the user's units.

        Numeric columns are unscaled; a categorical block (probabilities or a
        one-hot draw) becomes the code of its largest entry.
        """
        if self.likelihood != "mixed":
            codes = np.asarray(values).astype(np.float64) * self.scale + self.shift
            return codes if self.maps is None else self.maps.invert(codes)
        n_gaussian, n_bernoulli, _ = self.layout
        codes = np.empty((values.shape[0], self.n_features))
        gaussian, bernoulli = self._columns["gaussian"], self._columns["bernoulli"]
        codes[:, gaussian] = (
            values[:, :n_gaussian].astype(np.float64) * self.scale[gaussian]
            + self.shift[gaussian]
        )
        codes[:, bernoulli] = values[:, n_gaussian : n_gaussian + n_bernoulli]
        start = n_gaussian + n_bernoulli
        for j in self._columns["categorical"]:
            codes[:, j] = np.argmax(values[:, start : start + self.levels[j]], axis=1)
            start += self.levels[j]
        return codes if self.maps is None else self.maps.invert(codes)

    def into_support(self, codes):
        """Sampled codes clipped to each Gaussian column's observed range, whole-number
        columns rounded; unchanged without a recorded support (older model files)."""
        return codes if self.support is None else self.support.apply(codes)

    def typical_row(self):
        """A row of codes in the middle of the data: to check that a model works."""
        row = np.where(
            np.array(self.kinds) == "bernoulli", 0.5,
            np.where(np.array(self.kinds) == "categorical", 0.0, self.shift),
        )[None, :]
        return row if self.maps is None else self.maps.invert(row)

    # ------------------------------------------------------------ persistence

    def get_state(self):
        """The fitted state as JSON-ready data."""
        state = {
            "kinds": list(self.kinds),
            "levels": list(self.levels),
            "shift": self.shift.tolist(),
            "scale": self.scale.tolist(),
        }
        if self.support is not None:
            state["support"] = self.support.get_state()
        if self.maps is not None:
            state["maps"] = self.maps.get_state()
        return state

    @classmethod
    def from_state(cls, state, n_features):
        """Rebuild from :meth:`get_state`'s output, checking every entry.

        Raises
        ------
        ValueError
            Naming the entry that is missing or inconsistent.
        """
        expected = {"kinds", "levels", "shift", "scale"}
        # "support" and "maps" came later: files without them load, with
        # samples left as drawn and no column mapped.
        if not isinstance(state, dict) or not (
                expected <= set(state) <= expected | {"support", "maps"}):
            raise ValueError("the data scaling entry is malformed.")
        kinds, levels = state["kinds"], state["levels"]
        if not (isinstance(kinds, list) and len(kinds) == n_features
                and all(kind in KINDS for kind in kinds if isinstance(kind, str))
                and all(isinstance(kind, str) for kind in kinds)):
            raise ValueError(f"the column kinds are not {n_features} of {list(KINDS)}.")
        if not (isinstance(levels, list) and len(levels) == n_features and all(
            type(n) is int and (n >= 1) == (kind == "categorical") and n <= MAX_LEVELS
            for n, kind in zip(levels, kinds)
        )):
            raise ValueError("the column levels do not match the column kinds.")
        arrays = {}
        for key in ("shift", "scale"):
            values = state[key]
            if not (
                isinstance(values, list)
                and len(values) == n_features
                and all(type(v) in (int, float) for v in values)
            ):
                raise ValueError(f"the scaling's {key} is not {n_features} numbers.")
            try:
                arrays[key] = np.array(values, dtype=np.float64)
            except OverflowError:
                raise ValueError(f"the scaling's {key} holds numbers beyond float64.") from None
            if not np.all(np.isfinite(arrays[key])):
                raise ValueError(f"the scaling's {key} holds NaN or infinite values.")
        if not np.all(arrays["scale"] > 0):
            raise ValueError("the scaling's scale holds values that are not positive.")
        unscaled = np.array(kinds) != "gaussian"
        if np.any(arrays["shift"][unscaled] != 0) or np.any(arrays["scale"][unscaled] != 1):
            raise ValueError(
                "the file holds a scaling for columns whose likelihood models "
                "unscaled data."
            )
        support = (ColumnSupport.from_state(state["support"], kinds)
                   if "support" in state else None)
        maps = QuantileMaps.from_state(state["maps"], kinds) if "maps" in state else None
        return cls(kinds, arrays["shift"], arrays["scale"], levels, support, maps)


# Rows per block when looking for NaN: the boolean temporary stays a few MB.
_NAN_BLOCK_ROWS = 8192


def has_missing(X):
    """Whether ``X`` holds a NaN; checked in row blocks, so memory stays flat."""
    return any(np.isnan(block).any() for block in _row_blocks(X, _NAN_BLOCK_ROWS))


def all_missing_columns(X):
    """Indices of the columns of ``X`` that are NaN in every row (in blocks if streamed)."""
    if not has_missing(X):
        return np.array([], dtype=np.intp)
    observed = np.zeros(X.shape[1], dtype=bool)
    for block in _row_blocks(X) if is_streamed(X) else [X]:
        observed |= ~np.isnan(block).all(axis=0)
    return np.flatnonzero(~observed)
