"""Where each real-valued column's training values lie, and samples put back there.

A Gaussian decoder puts mass everywhere: ``sample`` on penguins gave years outside
2007-2009 and bill lengths below any in the data. :class:`ColumnSupport` records,
per Gaussian column, the smallest and largest observed value and whether every
observed value is a whole number; :meth:`ColumnSupport.apply` clips samples to
that range and rounds the whole-number columns. This is a guarantee on the
output, by clipping and rounding, not a model of the support: the likelihood
(and so ``score_samples``) is still the Gaussian's.
"""

import math

import numpy as np

_BLOCK_ROWS = 65536


def _column_statistics(X, columns):
    """Per column of ``columns``: observed minimum, maximum, whether all are whole numbers."""
    low = np.full(len(columns), np.inf)
    high = np.full(len(columns), -np.inf)
    integer = np.ones(len(columns), dtype=bool)
    for start in range(0, X.shape[0], _BLOCK_ROWS):  # no copy of a streamed X
        block = np.asarray(X[start:start + _BLOCK_ROWS][:, columns], dtype=np.float64)
        with np.errstate(invalid="ignore"):
            observed = ~np.isnan(block)
            low = np.minimum(low, np.where(observed, block, np.inf).min(axis=0, initial=np.inf))
            high = np.maximum(high, np.where(observed, block, -np.inf).max(
                axis=0, initial=-np.inf))
            integer &= np.all(~observed | (block == np.round(block)), axis=0)
    return low, high, integer


class ColumnSupport:
    """Observed range and integrality of the real-valued columns of a table.

    Parameters
    ----------
    low, high : ndarray of shape (n_features,)
        Smallest and largest observed value of each column with a recorded
        support; NaN for the others (Bernoulli and categorical columns, whose
        likelihoods keep to their support, and columns never observed).
    integer : ndarray of bool of shape (n_features,)
        Whether every observed value of the column is a whole number.
    """

    def __init__(self, low, high, integer):
        self.low, self.high, self.integer = low, high, integer

    def __eq__(self, other):
        return (type(other) is type(self)
                and np.array_equal(self.low, other.low, equal_nan=True)
                and np.array_equal(self.high, other.high, equal_nan=True)
                and np.array_equal(self.integer, other.integer))

    __hash__ = None  # mutable arrays inside

    @classmethod
    def fit(cls, X, kinds):
        """The support of the ``"gaussian"`` columns of the codes ``X`` (NaN: missing)."""
        n_features = len(kinds)
        low, high = np.full(n_features, np.nan), np.full(n_features, np.nan)
        integer = np.zeros(n_features, dtype=bool)
        columns = np.flatnonzero(np.array(kinds) == "gaussian")
        if columns.size:
            column_low, column_high, column_integer = _column_statistics(X, columns)
            seen = column_low <= column_high
            low[columns[seen]], high[columns[seen]] = column_low[seen], column_high[seen]
            integer[columns[seen]] = column_integer[seen]
        return cls(low, high, integer)

    def apply(self, codes):
        """``codes`` (rows of data units) clipped to each column's range, whole-number
        columns rounded (half to even, as :func:`numpy.round`); a new array."""
        recorded = ~np.isnan(self.low)
        out = np.array(codes, dtype=np.float64)
        if not recorded.any():
            return out
        columns = np.flatnonzero(recorded)
        rounded = np.where(self.integer[columns], np.round(out[:, columns]), out[:, columns])
        # NaN (a hole kept by sample(given=...)) stays NaN through both.
        out[:, columns] = np.clip(rounded, self.low[columns], self.high[columns])
        return out

    # ------------------------------------------------------------ persistence

    def get_state(self):
        """JSON-ready: None where no range is recorded."""
        def listed(values):
            return [None if math.isnan(v) else float(v) for v in values]

        return {"low": listed(self.low), "high": listed(self.high),
                "integer": [bool(v) for v in self.integer]}

    @classmethod
    def from_state(cls, state, kinds):
        """Rebuild from :meth:`get_state`'s output, checking every entry against ``kinds``.

        Raises
        ------
        ValueError
            Naming the entry that is malformed or inconsistent.
        """
        n_features = len(kinds)
        if not isinstance(state, dict) or set(state) != {"low", "high", "integer"}:
            raise ValueError("the column support entry is malformed.")
        arrays = {}
        for key in ("low", "high"):
            values = state[key]
            if not (isinstance(values, list) and len(values) == n_features and all(
                    v is None or type(v) in (int, float) for v in values)):
                raise ValueError(f"the column support's {key} is not {n_features} "
                                 "numbers or nulls.")
            try:
                arrays[key] = np.array([np.nan if v is None else v for v in values],
                                       dtype=np.float64)
            except OverflowError:
                raise ValueError(f"the column support's {key} holds numbers beyond "
                                 "float64.") from None
        integer = state["integer"]
        if not (isinstance(integer, list) and len(integer) == n_features
                and all(type(v) is bool for v in integer)):
            raise ValueError(f"the column support's integer is not {n_features} booleans.")
        low, high = arrays["low"], arrays["high"]
        recorded = ~np.isnan(low)
        gaussian = np.array(kinds) == "gaussian"
        if (np.any(recorded != ~np.isnan(high)) or np.any(recorded & ~gaussian)
                or np.any(np.isinf(low) | np.isinf(high)) or np.any(low[recorded] > high[recorded])
                or any(np.array(integer) & ~recorded)):
            raise ValueError("the column support is inconsistent: each range must be "
                             "finite, low <= high, and only for Gaussian columns.")
        return cls(low, high, np.array(integer, dtype=bool))
