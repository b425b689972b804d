"""Input validation of the estimators: the user's X as table codes, checked.

Numbers-only input keeps scikit-learn's own validation (``validate_data``) and
its dtype (float64 or float32); tables with categorical columns go through the
fitted :class:`~skvae._tables.TableSchema`. Either way the result is a float
array of codes, NaN where an entry is missing (see :mod:`skvae._tables`).
"""

from numbers import Integral

import numpy as np
from sklearn.utils.validation import validate_data

from ._data import all_missing_columns, is_streamed
from ._tables import TableSchema, is_dataframe


def validate_rows(estimator, X, schema, *, reset=False):
    """Codes of ``X`` under ``schema``; with ``reset``, ``n_features_in_`` and names set.

    ``validate_data`` records the number of columns and their names on
    ``estimator`` when ``reset`` (in ``fit``, on the copy that fit commits) and
    checks them against it otherwise.
    """
    if not schema.has_categorical:
        X_checked = validate_data(
            estimator, X, reset=reset, dtype=_numeric_dtypes(X), ensure_all_finite=False,
        )
        if _holds_infinity(X_checked):
            raise ValueError(infinite_columns_message(X_checked, estimator))
        return X_checked
    validate_data(estimator, X, reset=reset, skip_check_array=True)
    shape = getattr(X, "shape", None) if is_dataframe(X) else np.shape(X)
    if shape is None or len(shape) != 2 or shape[0] < 1:
        raise ValueError(
            f"X must be a 2-D table with at least one row; got shape {shape}.")
    names = getattr(estimator, "feature_names_in_", None)
    return schema.encode(X, handle_unknown=estimator.handle_unknown,
                         names=None if names is None else list(names))


def _numeric_dtypes(X):
    """The dtypes ``validate_data`` may leave ``X`` in.

    float64 or float32, as scikit-learn's estimators take them; but a file-backed
    or very large array of another numeric dtype (uint8 images, int16 or float16
    sensors) keeps it, so that it is never copied whole as float64 (336 MB for
    a 14 MB uint8 memmap): the data layer converts it block by block, to the
    same float32 values the network would read after a whole conversion.
    """
    if (isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype.kind in "biuf"
            and X.dtype not in (np.float64, np.float32) and is_streamed(X)):
        return None
    return [np.float64, np.float32]


def validate_training_rows(estimator, X, schema=None):
    """Codes of ``X`` for ``fit`` and the schema they follow.

    ``schema`` None fits a new one (and resets ``n_features_in_``), and a column
    missing in every row is refused: nothing can be learned about it. A schema
    is kept when fitting continues (a warm start, ``partial_fit``), and then
    every column was learned before, so a chunk may miss one entirely (a single
    row with a hole, say).
    """
    if schema is not None:
        return validate_rows(estimator, X, schema), schema
    schema = TableSchema.fit(X, estimator.categorical_features,
                             estimator_name=type(estimator).__name__)
    X = validate_rows(estimator, X, schema, reset=True)
    empty = all_missing_columns(X)
    if len(empty):
        names = getattr(estimator, "feature_names_in_", None)
        label = repr(str(names[empty[0]])) if names is not None else str(empty[0])
        raise ValueError(
            f"Column {label} of X is missing in every row, so nothing can be "
            "learned about it. Drop the column."
        )
    return X, schema


# Rows per block when looking for infinity: the boolean temporary stays a few MB.
_INF_BLOCK_ROWS = 8192


def _holds_infinity(X):
    """Whether ``X`` holds +-inf, looked for in row blocks so memory stays flat."""
    return any(np.isinf(X[start : start + _INF_BLOCK_ROWS]).any()
               for start in range(0, X.shape[0], _INF_BLOCK_ROWS))


def infinite_columns_message(X, estimator):
    """The error for infinite values, naming the columns that hold them."""
    array = np.asarray(X, dtype=np.float64)
    columns = np.flatnonzero(np.isinf(array).any(axis=0)) if array.ndim == 2 else []
    names = getattr(estimator, "feature_names_in_", None)
    if names is None and is_dataframe(X):
        names = [str(c) for c in X.columns]
    labels = [repr(str(names[j])) if names is not None else str(j) for j in columns[:5]]
    return (
        f"X holds infinite values (column{'s' if len(labels) > 1 else ''} "
        f"{', '.join(labels) or '?'}), which {type(estimator).__name__} cannot model. "
        "Replace them with np.nan, which it reads as missing, or with finite values."
    )


def check_n_samples(n_samples):
    """Refuse an ``n_samples`` that is not a positive integer (bools included)."""
    if not isinstance(n_samples, Integral) or isinstance(n_samples, bool) or n_samples < 1:
        raise ValueError(
            f"n_samples={n_samples!r} must be a positive integer, the number of "
            "rows to generate."
        )


def given_rows(rows, n_samples):
    """The validated ``given`` rows of ``sample``, one per sample (one row repeated)."""
    if rows.shape[0] == 1:
        return np.repeat(rows, n_samples, axis=0)
    if rows.shape[0] != n_samples:
        raise ValueError(
            f"given has {rows.shape[0]} rows, but n_samples={n_samples}: pass one row "
            "(used for every sample) or one row per sample."
        )
    return rows
