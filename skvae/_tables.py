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


# Key of ``DataFrame.attrs`` naming, by column position, the numpy integer dtype
# a column had before an imputer's placeholders were masked to NaN (which made
# it float64); the schema records that dtype, so the column comes back in it.
INTEGER_DTYPES_ATTR = "skvae.integer_dtypes"


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
            # Numbers only: scikit-learn's validation converts them, and its
            # TypeError for a dict or a list is the one its checks expect.
            return cls(categories)
        for j in range(array.shape[1]):
            if categories[j] is None and array.dtype.kind == "O":
                _check_cells(array[:, j], j, None)
        dtypes = ["object" if c is not None else "float64" for c in categories]
        return cls(categories, dtypes=dtypes)

    @classmethod
    def _fit_frame(cls, X, categorical_features, estimator_name):
        columns = _column_labels(X.columns, estimator_name)
        names = [str(c) for c in X.columns]
        dtypes = [X.dtypes.iloc[j] for j in range(X.shape[1])]
        integer_dtypes = getattr(X, "attrs", {}).get(INTEGER_DTYPES_ATTR, {})
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
                elif str(dtypes[j]) in _BOOL_DTYPES:
                    pass  # 0/1 numbers, given back as booleans
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
                if str(dtypes[j]) == "float64" and integer_dtypes.get(j) in _KNOWN_DTYPES:
                    dtypes[j] = np.dtype(integer_dtypes[j])
                    _check_exact_in_float64(column, dtypes[j], names, j)
                categories.append(None)
                ordered.append(False)
                continue
            if str(dtypes[j]) == "category":
                cats = [_python_value(v) for v in dtypes[j].categories]
                _check_category_types(cats, names, j)
                observed = column.dropna()
                if len(observed) == 0:
                    _raise_all_missing(names, j)
                _check_declared_levels(len(cats), names, j)
                # The identifier rule is about the data: unused declared levels
                # (195 countries, 20 of them in the table) say nothing about it.
                _check_level_count(observed.nunique(), len(observed), names, j)
                categories.append(cats)
                ordered.append(bool(dtypes[j].ordered))
            else:
                categories.append(
                    _fit_categories(list(column.to_numpy(dtype=object)), j, names,
                                    X.shape[0])
                )
                ordered.append(False)
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

        Numeric columns keep their fitted dtype: integer columns are rounded,
        and values a little beyond the range of a column's dtype (a draw past
        the largest float16, a count below 0 in a uint8 column) are given as the
        nearest value it holds. Categorical columns give back their categories,
        in their fitted dtype. Without a DataFrame, all-numeric tables give an
        array of ``dtype`` and tables with categories an object array.
        ``index`` labels the rows of a DataFrame (the index of the frame they
        came from).

        Raises
        ------
        ValueError
            For codes that no value of their column can stand for (see
            :meth:`check_codes`), naming the column.
        PandasMissingError
            When ``fit`` saw a DataFrame and pandas cannot be imported.
        """
        if not self.frame and not self.has_categorical:
            return codes.astype(dtype, copy=False)  # arrays of numbers: as always
        columns = self.check_codes(codes)
        if not self.frame:
            out = np.empty(codes.shape, dtype=object)
            for j, cats in enumerate(self.categories):
                out[:, j] = columns[j] if cats is None else np.array(
                    cats, dtype=object)[columns[j]]
            return out
        pd = _import_pandas()
        labels = self.columns if self.columns is not None else list(range(self.n_columns))
        data = {}
        for j, cats in enumerate(self.categories):
            try:
                data[labels[j]] = _column_to_user(pd, columns[j], cats, self.dtypes[j],
                                                  self.ordered[j])
            except (TypeError, ValueError) as error:  # a crafted file's categories
                raise ValueError(
                    f"column {self._label(j)} cannot be given back as "
                    f"{self.dtypes[j]}: {error}"
                ) from None
        frame = pd.DataFrame(data, columns=labels)
        if index is not None:
            frame.index = index
        return frame

    def check_codes(self, codes):
        """Per column, the values ``codes`` stand for, checked; needs no pandas.

        Numeric columns give float64 values (integers for integer dtypes, rounded
        and saturated at the dtype's bounds); categorical columns give the
        positions of their categories.

        Raises
        ------
        ValueError
            For a NaN or infinite code; a code farther beyond the range of its
            column's dtype than the range is wide, which is no rounding of a
            value the column holds but a model of other data (or of nothing); or
            a categorical code that is no category. Naming the column.
        """
        columns = []
        for j, cats in enumerate(self.categories):
            values = codes[:, j]
            if not np.all(np.isfinite(values)):
                raise ValueError(
                    f"The model gives NaN or infinite values for column {self._label(j)}."
                )
            if cats is not None:
                columns.append(_category_positions(values, len(cats), self._label(j)))
            else:
                dtype = self.dtypes[j] if self.dtypes is not None else "float64"
                columns.append(_in_dtype_range(values, dtype, self._label(j)))
        return columns

    def check_centre(self, codes):
        """Raise ``ValueError`` unless every numeric code of ``codes`` lies in its dtype's range.

        For the centre of the training data (the mean of each column): the data
        came in these dtypes, so their mean cannot lie outside them; a model file
        saying so describes other data (a float16 column shifted to 1e5).
        """
        for j, cats in enumerate(self.categories):
            bounds = None if cats is not None or self.dtypes is None else _dtype_bounds(
                self.dtypes[j])
            if bounds is not None and not bounds[0] <= codes[0, j] <= bounds[1]:
                raise ValueError(
                    f"the centre of column {self._label(j)}, {codes[0, j]:.6g}, lies "
                    f"outside the range [{bounds[0]:.6g}, {bounds[1]:.6g}] of its dtype "
                    f"{self.dtypes[j]}: the scaling describes other data."
                )

    def _label(self, j):
        return repr(self.columns[j]) if self.columns is not None else str(j)

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
            if not _dtype_fits(dtypes[j], cats, frame):
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
# Boolean columns are categories, or 0/1 numbers when categorical_features
# leaves them out.
_BOOL_DTYPES = frozenset(["bool", "boolean"])


def _dtype_fits(dtype, cats, frame):
    """Whether a recorded dtype can give back a column with categories ``cats``.

    What fit records: a numeric (or, for 0/1 numbers, boolean) dtype for a
    numeric column; for a categorical one, booleans in a boolean dtype, strings
    in a string dtype, values of one type in an object column (a pandas
    category dtype may mix them). Without a frame, "float64" and "object".
    """
    if not frame:
        return dtype == ("float64" if cats is None else "object")
    if cats is None:
        return dtype not in _CATEGORY_DTYPES or dtype in _BOOL_DTYPES
    families = {_type_family(v) for v in cats}
    if dtype not in _CATEGORY_DTYPES:  # a numeric column named categorical
        if dtype.lower().startswith(("int", "uint")):
            info = np.iinfo(dtype.lower())
            return all(type(v) is int and info.min <= v <= info.max for v in cats)
        largest = float(np.finfo(dtype.lower()).max)
        return families == {"number"} and all(abs(v) <= largest for v in cats)
    if dtype in _BOOL_DTYPES:
        return families == {"bool"}
    if dtype.startswith("str"):
        return families == {"str"}
    return dtype == "category" or len(families) == 1


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


def _column_labels(labels, estimator_name):
    """The column labels of a DataFrame as Python values, checked.

    Outputs give the labels back, and a model file must give back the same ones
    after a load: only distinct strings and integers can be both. Other labels
    (tuples of a MultiIndex, Timestamps, floats) are refused here rather than
    given back as 0, 1, 2.

    Raises
    ------
    ValueError
        Naming the labels that are neither strings nor integers, or repeated.
    """
    values = [_python_value(c) for c in labels]
    odd = [c for c in values if type(c) not in (str, int)]
    if odd:
        shown = ", ".join(f"{c!r} ({type(c).__name__})" for c in odd[:3])
        raise ValueError(
            f"X has column labels that are neither strings nor integers: {shown}"
            f"{', ...' if len(odd) > 3 else ''}. {estimator_name} gives back the "
            "labels it was fitted on, and a model file stores only strings and "
            "integers. Rename the columns first, for example X.columns = "
            "['_'.join(map(str, c)) if isinstance(c, tuple) else str(c) for c in "
            "X.columns]."
        )
    if len(set(values)) != len(values):
        repeated = sorted({c for c in values if values.count(c) > 1}, key=str)
        raise ValueError(
            f"X repeats the column labels {repeated[:5]!r}; {estimator_name} needs "
            "each column to have its own label. Rename or drop the repeated columns."
        )
    return values


def _raise_all_missing(names, j):
    raise ValueError(
        f"Column {_column_name(names, j)} of X is missing in every row, so nothing "
        "can be learned about it. Drop the column."
    )


def _check_declared_levels(n_levels, names, j):
    """A category dtype declaring more than MAX_LEVELS levels: a softmax too wide."""
    if n_levels > MAX_LEVELS:
        raise ValueError(
            f"Categorical column {_column_name(names, j)} of X declares {n_levels} "
            f"categories, more than the {MAX_LEVELS} a model can have. Drop the "
            "unused ones (.cat.remove_unused_categories()) or group them."
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
    if len(families) == 1:
        # Before any set or sort: a dict or a list cannot be hashed, and the
        # error must name the column, not say "unhashable type".
        _check_category_types(observed, names, j)
    if len(families) > 1:
        raise ValueError(
            f"Column {_column_name(names, j)} of X mixes values of types "
            f"{', '.join(sorted(families))}. Convert the column to one type (for "
            "example .astype(str)) before fitting."
        )
    distinct = set(observed)
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


def _check_cells(values, j, names):
    """Every entry of a numeric object column is missing, a number or a boolean.

    A dict, a list or a date in an array would otherwise surface as numpy's
    "float() argument" or "setting an array element with a sequence", naming
    no column.
    """
    for value in values:
        if not (_is_missing(value) or isinstance(value, (numbers.Number, np.bool_))):
            raise ValueError(
                f"Column {_column_name(names, j)} of X holds {type(value).__name__} "
                f"values such as {_short_repr(value)}, but its other entries are "
                "numbers. Convert the column to numbers, or drop it."
            )


def _short_repr(value, width=40):
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


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
        try:
            code = lookup.get(_python_value(v))
        except TypeError:  # a dict or a list: unhashable, so no category
            code = None
        if code is None:
            if handle_unknown == "error":
                raise ValueError(
                    f"Column {_column_name(names, j)} of X holds the category "
                    f"{_short_repr(v)}, "
                    f"which fit never saw (it saw {len(cats)}: {cats[:5]!r}"
                    f"{'...' if len(cats) > 5 else ''}). Pass handle_unknown='ignore' "
                    "to treat unseen categories as missing values."
                )
            code = np.nan
        codes[i] = code
    return codes


class PandasMissingError(ImportError, ValueError):
    """pandas is needed (a model fitted on a DataFrame gives back DataFrames) but absent.

    An ``ImportError``, as missing packages are; also a ``ValueError``, so that
    :func:`skvae.load`, which checks that a model gives back its own samples,
    refuses such a file with a :class:`~skvae.ModelFileError` naming pandas
    instead of failing half-way.
    """


def _import_pandas():
    try:
        import pandas as pd
    except ImportError:
        raise PandasMissingError(
            "This model was fitted on a pandas DataFrame and gives back DataFrames, "
            "but pandas cannot be imported. Install pandas (pip install pandas).",
            name="pandas",
        ) from None
    return pd


def _dtype_bounds(dtype):
    """``(low, high)`` of the values a numeric ``dtype`` holds, as floats; or None.

    None for float64, which holds every finite code, and for boolean columns,
    which hold a 0/1 threshold of any code.
    """
    name = dtype.lower()
    if name in ("float16", "float32"):
        info = np.finfo(name)
        return float(info.min), float(info.max)
    if name.startswith(("int", "uint")):
        info = np.iinfo(name)
        return float(info.min), float(info.max)
    return None


def _in_dtype_range(values, dtype, label):
    """Numeric codes as values of ``dtype``: rounded for integers, saturated at its bounds.

    Raises ``ValueError`` for a code beyond the bounds by more than their
    distance apart.
    """
    bounds = _dtype_bounds(dtype)
    if bounds is None:
        return values
    low, high = bounds
    width = high - low
    far = (values < low - width) | (values > high + width)
    if far.any():
        value = values[np.flatnonzero(far)[0]]
        raise ValueError(
            f"The model gives {value:.6g} for column {label}, far outside the range "
            f"[{low:.6g}, {high:.6g}] of its dtype {dtype}: data that column cannot "
            "hold. Latent codes far from those of the training data decode to such "
            "values (decode codes near those transform gives); a model file whose "
            "samples do does not fit its own table."
        )
    if dtype.lower().startswith(("int", "uint")):
        values = np.rint(values)
    return np.clip(values, low, high)


def _category_positions(values, n_levels, label):
    positions = values.astype(np.intp)
    if np.any(positions != values) or np.any((positions < 0) | (positions >= n_levels)):
        raise ValueError(
            f"The model gives codes for column {label} that are none of its "
            f"{n_levels} categories."
        )
    return positions


def _as_integers(values, dtype):
    """Rounded, in-range floats as ``dtype``, exactly: float(2**63 - 1) is 2**63.

    A plain cast of 2**63 to int64 wraps to -2**63; the saturated ends are set
    after the cast instead.
    """
    info = np.iinfo(dtype)
    high = values >= float(info.max)
    low = values <= float(info.min)
    out = np.where(high | low, 0.0, values).astype(dtype)
    out[high] = info.max
    out[low] = info.min
    return out


def _column_to_user(pd, values, cats, dtype, ordered):
    """One column as pandas gives it back: ``values`` from :meth:`TableSchema.check_codes`."""
    if cats is None:
        if dtype in ("float64", "float32", "float16", "Float64", "Float32"):
            return pd.array(values, dtype=dtype) if dtype[0] == "F" else values.astype(dtype)
        if dtype in _BOOL_DTYPES:
            return pd.array(values >= 0.5, dtype=dtype)
        integers = _as_integers(values, dtype.lower())
        return pd.array(integers, dtype=dtype) if dtype[0] in "IU" else integers
    if dtype == "category":
        return pd.Categorical.from_codes(
            values, dtype=pd.CategoricalDtype(cats, ordered=ordered))
    chosen = np.array(cats, dtype=object)[values]
    if dtype not in _CATEGORY_DTYPES:  # numbers named categorical: their dtype
        return pd.array(chosen, dtype=dtype) if dtype[0] in "IUF" else chosen.astype(dtype)
    if dtype in _BOOL_DTYPES:
        return pd.array(chosen.astype(bool), dtype=dtype)
    if dtype.startswith("str"):
        return pd.array(chosen, dtype=dtype)
    # An object column stays one: a plain object array in a frame becomes
    # pandas 3's str dtype.
    return pd.Series(chosen, dtype=object)
