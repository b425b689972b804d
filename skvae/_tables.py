"""The user's table: which columns are categories, and how rows come back.

:class:`TableSchema` is fitted once, in ``fit``, on the raw input: a numpy array
or a pandas DataFrame whose columns may hold numbers, strings, booleans and
missing values (``np.nan``, ``None``, ``pd.NA``). It turns such tables into a
float array of *codes*, one column per input column: numbers as they are,
categories as their index in the fitted categories, and NaN for a missing entry.
That array is what the data layer (:mod:`skvae._data`) reads. The schema also
turns codes back into the user's format: a DataFrame with the fitted columns,
dtypes and categories when ``fit`` saw one, an array otherwise.

Purely numeric input keeps scikit-learn's own validation (``validate_data``), so
arrays of numbers, images and memmaps take exactly the path they always took.

Knows numpy, and pandas when the user passes a DataFrame (pandas is never
required); nothing about networks.
"""

import math
import numbers

import numpy as np

# A categorical column with more levels than this is refused: it is an identifier
# or free text, and a softmax over it would dwarf the rest of the network.
MAX_LEVELS = 1000
# With more levels than this, a column whose levels are mostly unique to single
# rows is refused as an identifier.
_ID_MIN_LEVELS = 50


def is_dataframe(X):
    """Whether ``X`` is a pandas DataFrame, without importing pandas."""
    return type(X).__module__.startswith("pandas") and hasattr(X, "iloc") and hasattr(
        X, "dtypes"
    )


def _is_missing(value):
    """Whether one cell is missing: None, NaN, pd.NA or NaT."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if type(value).__name__ == "NAType":  # pd.NA, without importing pandas
        return True
    try:
        return bool(value != value)  # NaN, NaT
    except (TypeError, ValueError):  # an array in a cell: a value, not a hole
        return False


def _python_value(value):
    """A numpy scalar as the Python value JSON can store."""
    return value.item() if isinstance(value, np.generic) else value


def _type_family(value):
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, numbers.Real):
        return "number"
    if isinstance(value, str):
        return "str"
    return type(value).__name__


def _column_name(names, j):
    return repr(str(names[j])) if names is not None else f"{j}"


class TableSchema:
    """Fitted description of the input columns.

    Parameters
    ----------
    categories : list
        Per column: None for a numeric column, else the list of its categories
        (Python values), whose positions are the codes.
    dtypes : list of str or None
        Per column, the dtype to give back (``str`` of a numpy or pandas dtype),
        or None when ``fit`` saw an array of numbers.
    ordered : list of bool
        Per column, whether a pandas categorical dtype was ordered.
    frame : bool
        Whether ``fit`` saw a DataFrame: outputs are then DataFrames.
    columns : list or None
        Column labels of the DataFrame, to give back.
    """

    def __init__(self, categories, dtypes=None, ordered=None, frame=False, columns=None):
        self.categories = list(categories)
        self.dtypes = dtypes
        self.ordered = list(ordered) if ordered is not None else [False] * len(categories)
        self.frame = frame
        self.columns = columns

    def __eq__(self, other):
        return type(other) is type(self) and self.get_state() == other.get_state()

    __hash__ = None

    @property
    def n_columns(self):
        return len(self.categories)

    @property
    def has_categorical(self):
        return any(c is not None for c in self.categories)

    @property
    def levels(self):
        """Number of categories per column, 0 for numeric columns."""
        return [0 if c is None else len(c) for c in self.categories]

    # ------------------------------------------------------------------ fitting

    @classmethod
    def fit(cls, X, categorical_features="from_dtype", *, estimator_name="estimator"):
        """The schema of the raw table ``X``.

        Raises
        ------
        ValueError
            For a categorical column that is entirely missing, mixes types, or
            has so many levels that it is an identifier; naming the column.
        """
        if is_dataframe(X):
            return cls._fit_frame(X, categorical_features, estimator_name)
        array = X if isinstance(X, np.ndarray) else None
        if array is None and not hasattr(X, "__array__") and not isinstance(X, (list, tuple)):
            return cls([None] * _n_columns(X))  # let validation say what is wrong
        if array is None:
            try:
                array = np.asarray(X)
            except (ValueError, TypeError):
                return cls([None] * _n_columns(X))
        if array.ndim != 2:
            return cls([None] * (array.shape[-1] if array.ndim else 1))
        # Only arrays of objects or strings can hold categories; anything else
        # (numbers, complex) is left to scikit-learn's validation.
        numeric = array.dtype.kind not in "OUS"
        if numeric and categorical_features in ("from_dtype", None):
            return cls([None] * array.shape[1])
        mask = _categorical_mask(
            categorical_features, array.shape[1], None,
            lambda j: (not numeric) and _holds_non_numbers(array[:, j]),
        )
        categories = []
        for j in range(array.shape[1]):
            if mask[j]:
                categories.append(
                    _fit_categories(list(array[:, j]), j, None, array.shape[0])
                )
            else:
                categories.append(None)
        if not any(c is not None for c in categories):
            return cls(categories)
        dtypes = ["object" if c is not None else "float64" for c in categories]
        return cls(categories, dtypes=dtypes)

    @classmethod
    def _fit_frame(cls, X, categorical_features, estimator_name):
        names = [str(c) for c in X.columns]
        dtypes = [X.dtypes.iloc[j] for j in range(X.shape[1])]
        mask = _categorical_mask(
            categorical_features, X.shape[1], names,
            lambda j: _categorical_dtype(dtypes[j]),
        )
        categories, ordered = [], []
        for j in range(X.shape[1]):
            column = X.iloc[:, j]
            if str(dtypes[j]) not in _KNOWN_DTYPES:
                raise ValueError(
                    f"Column {_column_name(names, j)} of X has dtype {dtypes[j]}, which "
                    f"{estimator_name} does not read. Convert it to a numpy or pandas "
                    "dtype (for example .astype('float64') or .astype('category'))."
                )
            if not mask[j]:
                if _numeric_dtype(dtypes[j]):
                    _check_exact_in_float64(column, dtypes[j], names, j)
                elif not _categorical_dtype(dtypes[j]) or str(dtypes[j]) == "category":
                    raise ValueError(
                        f"Column {_column_name(names, j)} of X has dtype {dtypes[j]}, "
                        f"but categorical_features leaves it out and {estimator_name} "
                        "cannot read it as numbers. Name it in categorical_features, "
                        "convert it to numbers, or drop it."
                    )
                else:
                    # Strings or objects that categorical_features leaves out:
                    # numbers written as text, given back as float64.
                    _numbers(column.to_numpy(dtype=object), j, names)
                    dtypes[j] = np.dtype(np.float64)
                categories.append(None)
                ordered.append(False)
                continue
            if str(dtypes[j]) == "category":
                cats = [_python_value(v) for v in dtypes[j].categories]
                _check_category_types(cats, names, j)
                values = column.dropna().unique()
                if len(values) == 0:
                    _raise_all_missing(names, j)
                _check_level_count(len(cats), len(column.dropna()), names, j)
                categories.append(cats)
                ordered.append(bool(dtypes[j].ordered))
            else:
                categories.append(
                    _fit_categories(list(column.to_numpy(dtype=object)), j, names,
                                    X.shape[0])
                )
                ordered.append(False)
        columns = [_python_value(c) for c in X.columns]
        if not all(type(c) in (str, int) for c in columns):
            columns = None
        return cls(categories, dtypes=[str(d) for d in dtypes], ordered=ordered,
                   frame=True, columns=columns)

    # ----------------------------------------------------------------- encoding

    def encode(self, X, *, handle_unknown="error", names=None):
        """Codes of a table with categorical columns: float64, NaN where missing.

        Raises
        ------
        ValueError
            For a category ``fit`` never saw (with ``handle_unknown="error"``),
            numbers that are not numbers, or infinite values, naming the column.
        """
        if is_dataframe(X):
            columns = [X.iloc[:, j] for j in range(X.shape[1])]

            def get(j):
                if self.categories[j] is None and _numeric_dtype(columns[j].dtype):
                    return columns[j].to_numpy(dtype=np.float64, na_value=np.nan)
                return columns[j].to_numpy(dtype=object)

            n_rows = X.shape[0]
        else:
            array = X if isinstance(X, np.ndarray) else np.asarray(X, dtype=object)
            get = lambda j: array[:, j]  # noqa: E731
            n_rows = array.shape[0]
        codes = np.empty((n_rows, self.n_columns))
        for j, cats in enumerate(self.categories):
            values = get(j)
            if cats is None:
                codes[:, j] = _numbers(values, j, names)
            else:
                codes[:, j] = _category_codes(values, cats, j, names, handle_unknown)
        return codes

    # ----------------------------------------------------------------- decoding

    def to_user(self, codes, dtype=np.float64, index=None):
        """Codes (NaN-free) in the user's format: a DataFrame when ``fit`` saw one.

        Numeric columns keep their fitted dtype (integer columns are rounded);
        categorical columns give back their categories, in their fitted dtype.
        Without a DataFrame, all-numeric tables give an array of ``dtype`` and
        tables with categories an object array. ``index`` labels the rows of
        a DataFrame (the index of the frame they came from).
        """
        if not self.frame:
            if not self.has_categorical:
                return codes.astype(dtype, copy=False)
            out = np.empty(codes.shape, dtype=object)
            for j, cats in enumerate(self.categories):
                if cats is None:
                    out[:, j] = codes[:, j]
                else:
                    out[:, j] = np.array(cats, dtype=object)[codes[:, j].astype(np.intp)]
            return out
        import pandas as pd

        data = {}
        labels = self.columns if self.columns is not None else list(range(self.n_columns))
        for j, cats in enumerate(self.categories):
            data[labels[j]] = _column_to_user(pd, codes[:, j], cats, self.dtypes[j],
                                              self.ordered[j])
        return pd.DataFrame(data, columns=labels, index=index)

    # -------------------------------------------------------------- persistence

    def get_state(self):
        return {
            "categories": [None if c is None else list(c) for c in self.categories],
            "dtypes": self.dtypes,
            "ordered": list(self.ordered),
            "frame": self.frame,
            "columns": self.columns,
        }

    @classmethod
    def from_state(cls, state, n_columns):
        """Rebuild from :meth:`get_state`'s output, checking every entry."""
        keys = {"categories", "dtypes", "ordered", "frame", "columns"}
        if not isinstance(state, dict) or set(state) != keys:
            raise ValueError("the table schema entry is malformed.")
        categories = state["categories"]
        if not (isinstance(categories, list) and len(categories) == n_columns):
            raise ValueError(f"the table schema does not describe {n_columns} columns.")
        for cats in categories:
            if cats is None:
                continue
            if not (isinstance(cats, list) and 1 <= len(cats) <= MAX_LEVELS and all(
                type(v) in (str, int, float, bool) for v in cats
            )):
                raise ValueError("the table schema holds malformed categories.")
            if len(set(cats)) != len(cats) or any(
                type(v) is float and not math.isfinite(v) for v in cats
            ):
                raise ValueError("the table schema holds repeated or non-finite categories.")
        dtypes, ordered, frame, columns = (
            state["dtypes"], state["ordered"], state["frame"], state["columns"])
        if dtypes is not None and not (
            isinstance(dtypes, list) and len(dtypes) == n_columns
            and all(isinstance(d, str) and d in _KNOWN_DTYPES for d in dtypes)
        ):
            raise ValueError("the table schema's dtypes are not known dtypes.")
        if not (isinstance(ordered, list) and len(ordered) == n_columns
                and all(type(o) is bool for o in ordered)):
            raise ValueError("the table schema's ordered flags are malformed.")
        if type(frame) is not bool or (frame and dtypes is None):
            raise ValueError("the table schema's frame flag is malformed.")
        if columns is not None and not (
            isinstance(columns, list) and len(columns) == n_columns
            and all(type(c) in (str, int) for c in columns)
        ):
            raise ValueError("the table schema's column labels are malformed.")
        if any(c is not None for c in categories) and dtypes is None:
            raise ValueError("the table schema has categories but no dtypes.")
        if columns is not None and len(set(columns)) != len(columns):
            raise ValueError("the table schema repeats column labels.")
        for j, cats in enumerate(categories if dtypes is not None else []):
            categorical_dtype = dtypes[j] in _CATEGORY_DTYPES
            if (cats is not None) != categorical_dtype or (
                dtypes[j] in ("bool", "boolean") and not set(cats) <= {False, True}
                or any(type(v) is bool for v in cats or []) and dtypes[j] not in (
                    "bool", "boolean", "object", "category")
            ):
                raise ValueError(f"the table schema's dtype of column {j} does not fit "
                                 "its categories.")
        return cls(categories, dtypes, ordered, frame, columns)


# dtypes a schema may give back: what _fit_frame and fit record, nothing that
# pandas would have to parse in unusual ways.
_KNOWN_DTYPES = frozenset(
    ["float64", "float32", "float16", "int64", "int32", "int16", "int8", "uint64",
     "uint32", "uint16", "uint8", "bool", "object", "category", "string", "str",
     "boolean", "Int64", "Int32", "Int16", "Int8", "UInt64", "UInt32", "UInt16",
     "UInt8", "Float64", "Float32"]
)


# dtypes of categorical columns; every other known dtype holds numbers.
_CATEGORY_DTYPES = frozenset(["object", "category", "string", "str", "bool", "boolean"])


def _n_columns(X):
    shape = getattr(X, "shape", None)
    return int(shape[1]) if shape is not None and len(shape) == 2 else 0


def _categorical_dtype(dtype):
    name = str(dtype)
    return name in ("category", "object", "bool", "boolean", "str") or name.startswith(
        "string")


def _numeric_dtype(dtype):
    kind = getattr(dtype, "kind", None)
    return kind in ("i", "u", "f")


def _holds_non_numbers(values):
    """Whether an object column holds strings or booleans: categories.

    Other objects (a dict, a date) are left to numeric validation, which says
    that they are not numbers.
    """
    return any(
        not _is_missing(v) and _type_family(v) in ("str", "bool") for v in values
    )


def _categorical_mask(categorical_features, n_columns, names, from_dtype):
    """Per column, whether it is categorical, from the parameter."""
    if categorical_features is None:
        return [False] * n_columns
    if isinstance(categorical_features, str):
        if categorical_features != "from_dtype":
            raise ValueError(
                f"categorical_features={categorical_features!r} must be 'from_dtype', "
                "a list of column names or indices, or a boolean mask."
            )
        return [bool(from_dtype(j)) for j in range(n_columns)]
    chosen = np.asarray(categorical_features)
    if chosen.ndim != 1:
        raise ValueError("categorical_features must be one-dimensional.")
    if chosen.dtype.kind == "b":
        if chosen.shape[0] != n_columns:
            raise ValueError(
                f"categorical_features is a boolean mask of {chosen.shape[0]} entries, "
                f"but X has {n_columns} columns."
            )
        return [bool(v) for v in chosen]
    mask = [False] * n_columns
    for item in chosen.tolist():
        if isinstance(item, str):
            if names is None or item not in names:
                raise ValueError(
                    f"categorical_features names the column {item!r}, which X does "
                    "not have (names need a DataFrame)."
                )
            mask[names.index(item)] = True
        elif isinstance(item, int) and not isinstance(item, bool) and 0 <= item < n_columns:
            mask[item] = True
        else:
            raise ValueError(
                f"categorical_features holds {item!r}, which is neither a column "
                f"name of X nor an index in [0, {n_columns})."
            )
    return mask


def _raise_all_missing(names, j):
    raise ValueError(
        f"Column {_column_name(names, j)} of X is missing in every row, so nothing "
        "can be learned about it. Drop the column."
    )


def _check_level_count(n_levels, n_observed, names, j):
    if n_levels > MAX_LEVELS or (n_levels > _ID_MIN_LEVELS and n_levels > n_observed / 2):
        raise ValueError(
            f"Categorical column {_column_name(names, j)} of X has {n_levels} levels "
            f"for {n_observed} observed rows: it looks like an identifier or free "
            "text, which a VAE cannot learn from. Drop the column, or group its "
            "levels, or pass categorical_features without it if it holds numbers."
        )


def _fit_categories(values, j, names, n_rows):
    """Sorted distinct non-missing values of one column, checked."""
    observed = [_python_value(v) for v in values if not _is_missing(v)]
    if not observed:
        _raise_all_missing(names, j)
    families = {_type_family(v) for v in observed}
    if len(families) > 1:
        raise ValueError(
            f"Column {_column_name(names, j)} of X mixes values of types "
            f"{', '.join(sorted(families))}. Convert the column to one type (for "
            "example .astype(str)) before fitting."
        )
    distinct = set(observed)
    _check_category_types(distinct, names, j)
    if families == {"number"} and any(not math.isfinite(v) for v in distinct):
        raise ValueError(
            f"Categorical column {_column_name(names, j)} of X holds an infinite value."
        )
    _check_level_count(len(distinct), len(observed), names, j)
    try:
        return sorted(distinct)
    except TypeError:
        raise ValueError(
            f"The categories of column {_column_name(names, j)} of X cannot be ordered; "
            "convert the column to strings."
        ) from None


def _check_category_types(categories, names, j):
    """Categories must be what a model file can store: str, int, float or bool."""
    for value in categories:
        if type(value) not in (str, int, float, bool):
            raise ValueError(
                f"Categorical column {_column_name(names, j)} of X holds "
                f"{type(value).__name__} values; categories must be strings, numbers "
                "or booleans. Convert the column (for example .astype(str))."
            )


def _check_exact_in_float64(column, dtype, names, j):
    """Integers beyond 2**53 would not come back as given: refuse them."""
    if getattr(dtype, "kind", None) not in ("i", "u"):
        return
    values = column.dropna()
    if len(values) and max(abs(int(values.min())), abs(int(values.max()))) > 2**53:
        raise ValueError(
            f"Column {_column_name(names, j)} of X holds integers beyond 2**53, which "
            "float64 arithmetic cannot keep exact. Rescale the column, convert it to "
            "float, or drop it (an identifier)."
        )


def _numbers(values, j, names):
    """One numeric column as float64, NaN where missing; errors name the column."""
    try:
        out = np.array(
            [np.nan if _is_missing(v) else v for v in values], dtype=np.float64
        ) if values.dtype == object else values.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"Column {_column_name(names, j)} of X was fitted as numbers but holds "
            "values that are not numbers. Pass the columns in the form fit saw them."
        ) from None
    if np.isinf(out).any():
        raise ValueError(
            f"Column {_column_name(names, j)} of X holds infinite values. Replace "
            "them (with np.nan to treat them as missing) before passing X."
        )
    return out


def _category_codes(values, cats, j, names, handle_unknown):
    lookup = {v: i for i, v in enumerate(cats)}
    codes = np.empty(len(values))
    for i, v in enumerate(values):
        if _is_missing(v):
            codes[i] = np.nan
            continue
        code = lookup.get(_python_value(v))
        if code is None:
            if handle_unknown == "error":
                raise ValueError(
                    f"Column {_column_name(names, j)} of X holds the category {v!r}, "
                    f"which fit never saw (it saw {len(cats)}: {cats[:5]!r}"
                    f"{'...' if len(cats) > 5 else ''}). Pass handle_unknown='ignore' "
                    "to treat unseen categories as missing values."
                )
            code = np.nan
        codes[i] = code
    return codes


def _column_to_user(pd, codes, cats, dtype, ordered):
    if cats is None:
        if dtype in ("float64", "float32", "float16", "Float64", "Float32"):
            return pd.array(codes, dtype=dtype) if dtype[0] == "F" else codes.astype(dtype)
        if dtype in ("bool", "boolean"):
            return codes >= 0.5
        # Integer columns: the nearest integer, clipped to the dtype's range.
        info = np.iinfo(dtype.lower())
        rounded = np.clip(np.rint(codes), info.min, info.max)
        if dtype[0] in "IU":
            return pd.array(rounded.astype(dtype.lower()), dtype=dtype)
        return rounded.astype(dtype)
    index = codes.astype(np.intp)
    if dtype == "category":
        return pd.Categorical.from_codes(
            index, dtype=pd.CategoricalDtype(cats, ordered=ordered))
    values = np.array(cats, dtype=object)[index]
    if dtype in ("bool", "boolean"):
        return pd.array(values.astype(bool), dtype=dtype)
    if dtype.startswith("str"):
        return pd.array(values, dtype=dtype)
    return values
