"""VAEImputer: missing values filled in by a variational autoencoder."""

import threading
from numbers import Real

import numpy as np
from sklearn.base import TransformerMixin
from sklearn.impute import MissingIndicator
from sklearn.utils._param_validation import MissingValues
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted

from ._base import BaseVAE
from ._data import output_dtype
from ._random import spawned_seed
from ._state import FittedEntry
from ._tables import _is_missing, is_dataframe


def _fit_indicator(X):
    """scikit-learn's MissingIndicator for the columns of ``X`` (codes) with holes."""
    return MissingIndicator(features="missing-only", error_on_new=False).fit(X)


def _indicator_from_file(columns, n_features):
    """The fitted MissingIndicator of a model file's sorted list of column indices."""
    if not (isinstance(columns, list) and all(
        type(j) is int and 0 <= j < n_features for j in columns
    ) and columns == sorted(set(columns))):
        raise ValueError("indicator_features is not a sorted list of column indices.")
    # Fitted on one row with a hole in exactly those columns: the indicator's
    # own fit records them, and nothing of it is rebuilt by hand.
    row = np.zeros((1, n_features))
    row[0, columns] = np.nan
    return _fit_indicator(row)


class VAEImputer(TransformerMixin, BaseVAE):
    """Impute missing values with a variational autoencoder fitted to the incomplete data.

    The VAE of :class:`~skvae.VAETransformer` is trained on the rows as they
    are: each column gets its own likelihood (Gaussian for real numbers,
    Bernoulli for 0/1 columns, a softmax over the categories of a categorical
    column), a missing entry is left out of the reconstruction term, and the
    encoder reads which entries are observed (MIWAE, Mattei and Frellsen, 2019).
    :meth:`transform` then fills each hole from the model's conditional
    distribution given the row's observed entries, estimated with
    ``n_importance_samples`` posterior draws and their importance weights.
    Observed entries are returned unchanged.

    It takes tables as they come: a DataFrame with numeric, string, categorical
    and boolean columns, or an array, with holes marked by ``missing_values``.
    Fitted on a DataFrame, it returns a DataFrame with the same columns, dtypes
    and categories; imputed categories are categories.

    Parameters
    ----------
    missing_values : int, float, str, np.nan, None or pandas.NA, default=np.nan
        The placeholder of a missing entry. ``np.nan``, ``None`` and ``pd.NA``
        are always read as missing, whatever this is.
    add_indicator : bool, default=False
        Append, as :class:`~sklearn.impute.SimpleImputer` does, one 0/1 column
        per column that had missing entries in ``fit``: 1 where the entry was
        imputed.
    sample_posterior : bool, default=False
        ``False``: fill a number with its importance-weighted conditional mean
        E[x_j | x_obs] and a category with its most probable value, the best
        single imputation for squared error and accuracy. ``True``: fill a row's
        holes with one joint draw from the model's conditional p(x_mis | x_obs),
        by sampling importance resampling; every call to :meth:`transform` draws
        anew, so ``m`` calls give ``m`` imputations for multiple imputation.
        With an int ``random_state`` the k-th call after ``fit`` is reproducible.
    n_components : int, default=4
        Dimension of the latent space.
    hidden_layer_sizes : array-like of int, default=(64, 64)
        Widths of the encoder's hidden layers; the decoder uses them in reverse.
        Tables have tens of columns: (64, 64) imputed as well as (128, 128) on
        the tables of ``benchmarks/results_imputer_cost.md`` at a quarter of
        the work per row.
    categorical_features : "from_dtype", array-like or None, default="from_dtype"
        Which columns are categorical. ``"from_dtype"``: the ``category``,
        ``object``, ``string`` and ``bool`` columns of a DataFrame, and the
        columns holding strings of an object array. Or column names, indices,
        or a boolean mask. None: all columns are numbers.
    handle_unknown : {"error", "ignore"}, default="error"
        A category :meth:`transform` meets that ``fit`` never saw: an error
        naming the column and the value, or (``"ignore"``) a missing entry,
        which is then imputed.
    n_importance_samples : int, default=50
        Posterior draws per row for imputing (and in :meth:`score_samples`).
        The conditional means of 50 draws moved imputation errors by about
        0.005 against 100, at half the cost of :meth:`transform`.
    n_training_samples : int, default=5
        Posterior draws per row in the training objective: the
        importance-weighted bound of MIWAE. More draws than the ELBO's one
        imputed better on every table we tried (see
        ``benchmarks/results_imputation.md``); 5 imputed about as well as the
        20 of Mattei and Frellsen (2019), and each training step decodes four
        times fewer rows (``benchmarks/results_imputer_cost.md``).
    batch_size : int or "auto", default=64
        Rows per minibatch. Smaller, and ``learning_rate_init`` larger, than
        :class:`~skvae.VAETransformer`'s: tables are small, and an epoch of a
        few hundred rows holds few steps. ``"auto"`` is 128 for the dense
        network and 32 for the conv network.
    learning_rate_init : float or "auto", default=3e-3
        Adam's step size. ``"auto"`` is 1e-3, the transformer's.
    learning_rate : {"cosine", "constant"}, default="constant"
        Learning-rate schedule over the ``max_iter`` epochs. ``"cosine"`` warms
        up over the first 5% of the steps, then decays to zero along a half
        cosine, so a run that uses all its epochs ends converged (and does not
        warn); ``"constant"`` keeps ``learning_rate_init`` throughout.
        ``partial_fit`` always steps at ``learning_rate_init``.
    max_iter : int or "auto", default=500
        Maximum number of epochs; ``"auto"`` is about 3,200 optimizer steps,
        within 20 to 80 epochs (20 to 200 when the figures below were
        measured). The defaults cost 50 to 100 times
        :class:`~sklearn.impute.IterativeImputer`'s CPU time on five real
        tables, mostly on the larger ones; ``learning_rate="cosine",
        max_iter="auto", batch_size=256, learning_rate_init=1e-2`` took a
        quarter to a third of that and imputed slightly less well (mean NRMSE
        0.013 higher, accuracy 0.01 lower; ``benchmarks/results_imputer_cost.md``).
    early_stopping : bool or "auto", default="auto"
        Hold out ``validation_fraction`` of the rows and keep the weights of the
        epoch whose held-out ELBO was best. ``"auto"``: when there are at least
        100 rows (with fewer, a tenth of them says little), else not.
    n_iter_no_change : int, default=30
        Epochs without improvement of the held-out ELBO before training stops.
    random_state : int, RandomState instance or None, default=None
        Seeds the weights, the training and the draws.

    The other parameters (``architecture``, ``image_shape``, ``conv_channels``,
    ``conv_dense_width``, ``activation``, ``likelihood``, ``beta``, ``tol``,
    ``validation_fraction``, ``device``, ``verbose``, ``warm_start``) are those of
    :class:`~skvae.VAETransformer`.

    Attributes
    ----------
    likelihood_ : str
        ``"mixed"`` for tables with categorical columns, else the likelihood of
        every column.
    n_features_in_ : int
        Number of columns seen during fit.
    feature_names_in_ : ndarray of shape (``n_features_in_``,)
        Names of the columns seen during fit, when they are all strings.
    indicator_features_ : ndarray of int
        With ``add_indicator``, the columns that had missing entries in fit.
    module_, n_components_, n_iter_, loss_curve_, validation_scores_, ...
        As in :class:`~skvae.VAETransformer`.

    See Also
    --------
    sklearn.impute.IterativeImputer : Imputation by chained regressions.
    sklearn.impute.KNNImputer : Imputation from the nearest complete rows.

    References
    ----------
    Mattei, P.-A. and Frellsen, J. (2019). MIWAE: Deep Generative Modelling and
    Imputation of Incomplete Data Sets. ICML.

    Examples
    --------
    >>> import numpy as np
    >>> from skvae import VAEImputer
    >>> rng = np.random.RandomState(0)
    >>> z = rng.normal(size=(300, 1))
    >>> X = np.hstack([z, 2 * z, -z]) + 0.1 * rng.normal(size=(300, 3))
    >>> X[::10, 1] = np.nan
    >>> imputer = VAEImputer(hidden_layer_sizes=(32, 32), max_iter=150, random_state=0)
    >>> X_filled = imputer.fit_transform(X)
    >>> bool(np.isnan(X_filled).any())
    False
    >>> error = np.abs(X_filled[::10, 1] - 2 * X[::10, 0]).mean()
    >>> bool(error < 0.3)  # column means would be off by 1.7 on average
    True
    """

    _parameter_constraints = {
        **BaseVAE._parameter_constraints,
        "missing_values": [MissingValues()],
        "add_indicator": ["boolean"],
        "sample_posterior": ["boolean"],
    }

    def __init__(
        self,
        *,
        missing_values=np.nan,
        add_indicator=False,
        sample_posterior=False,
        n_components=4,
        hidden_layer_sizes=(64, 64),
        architecture="dense",
        image_shape=None,
        conv_channels=(32, 64),
        conv_dense_width=512,
        activation="relu",
        likelihood="auto",
        categorical_features="from_dtype",
        handle_unknown="error",
        beta=1.0,
        batch_size=64,
        learning_rate="constant",
        learning_rate_init=3e-3,
        max_iter=500,
        tol=1e-4,
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change=30,
        n_importance_samples=50,
        n_training_samples=5,
        device="auto",
        random_state=None,
        verbose=0,
        warm_start=False,
    ):
        # Only stores the arguments, as scikit-learn requires.
        vars(self).update((name, value) for name, value in locals().items()
                          if name != "self")

    # An imputer's epoch budget is its early stopping; reaching max_iter is not
    # worth a warning when the held-out score keeps the best weights anyway.
    _warns_at_max_iter = False

    # The columns that get an indicator are learned with the data layer: kept by
    # a warm start and by every partial_fit after the first, so the output keeps
    # its columns from one call to the next.
    _extra_entries = (
        FittedEntry("indicator_", "indicator_features",
                    lambda indicator: indicator.features_.tolist(), _indicator_from_file),
    )

    def _prepare_input(self, X):
        return _placeholders_as_nan(X, self.missing_values)

    def _fit_extras(self, model, X, *, warm, one_pass):
        if warm:
            return {}
        return {"indicator_": _fit_indicator(X)}

    def _fresh_attributes(self):
        # Draws of sample_posterior=True: a new set per transform call.
        return {"_draw_calls": _Counter()}

    @property
    def indicator_features_(self):
        """Indices of the columns that had missing entries in fit (those indicated)."""
        check_is_fitted(self)
        return self.indicator_.features_

    def transform(self, X):
        """Fill the missing entries of ``X``; observed entries are kept as they are.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Rows with missing entries (``missing_values``, NaN, None or pd.NA).

        Returns
        -------
        X_imputed : ndarray or DataFrame of shape (n_samples, n_features_out)
            ``X`` with every hole filled, in the format the imputer was fitted
            on (a DataFrame with the fitted dtypes and categories, or an array),
            followed by the indicator columns with ``add_indicator``.
        """
        fitted = self._snapshot()
        codes = fitted._validate_X(X)
        fitted._model.check_support(codes, clip=True)
        draw_seed = None
        if fitted.sample_posterior:
            draw_seed = spawned_seed(fitted.random_state, fitted._draw_calls.next())
        filled = _filled(fitted._model, codes, fitted.n_importance_samples, draw_seed)
        output = fitted._model.schema.to_user(
            filled, dtype=output_dtype(codes), index=X.index if is_dataframe(X) else None)
        if not fitted.add_indicator:
            return output
        return _with_indicator(output, fitted.indicator_.transform(codes),
                               fitted.get_feature_names_out()[fitted.n_features_in_:])

    def get_feature_names_out(self, input_features=None):
        """Names of the output columns: the input's, then the indicators'.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input feature names; by default ``feature_names_in_`` or
            ``x0, x1, ...``.

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        check_is_fitted(self)
        names = _check_feature_names_in(self, input_features)
        if not self.add_indicator:
            return names
        return np.concatenate([names, self.indicator_.get_feature_names_out(names)])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


def _filled(model, codes, n_draws, draw_seed):
    """``codes`` with every missing entry imputed by ``model``; observed entries kept."""
    missing = np.isnan(codes)
    filled = codes.astype(np.float64, copy=True)
    rows = np.flatnonzero(missing.any(axis=1))
    if len(rows):
        imputed = model.impute_rows(codes[rows], n_draws, draw_seed=draw_seed)
        block = filled[rows]
        block[missing[rows]] = imputed[missing[rows]]
        filled[rows] = block
    return filled


class _Counter:
    """A thread-safe count of calls: each ``next()`` returns the next integer."""

    def __init__(self):
        self._value = 0
        self._lock = threading.Lock()

    def next(self):
        with self._lock:
            value = self._value
            self._value += 1
        return value

    def __getstate__(self):
        return {"value": self._value}

    def __setstate__(self, state):
        self._value = state["value"]
        self._lock = threading.Lock()

    def __eq__(self, other):
        return type(other) is type(self) and other._value == self._value

    __hash__ = None

    def __deepcopy__(self, memo):
        copy = _Counter()
        copy._value = self._value
        return copy


def _placeholders_as_nan(X, missing_values):
    """``X`` with ``missing_values`` entries as NaN (a copy if any changes; never in place)."""
    if _is_missing(missing_values):
        return X
    if is_dataframe(X):
        from ._tables import INTEGER_DTYPES_ATTR

        mask = X.isin([missing_values])
        if not mask.to_numpy().any():
            return X
        # Masking turns an integer column into float64: say which dtype it had,
        # so that the imputed table gives it back (an int64 column stays int64).
        integers = {
            j: str(dtype) for j, dtype in enumerate(X.dtypes)
            if getattr(dtype, "kind", None) in ("i", "u") and str(dtype).islower()
            and mask.iloc[:, j].any()
        }
        X = X.mask(mask)
        if integers:
            X.attrs = {**X.attrs, INTEGER_DTYPES_ATTR: integers}
        for label in X.columns[(X.dtypes == "category").to_numpy()]:
            # A placeholder is not a level: drop it from the categories too.
            if missing_values in X[label].cat.categories:
                X[label] = X[label].cat.remove_categories([missing_values])
        return X
    array = np.asarray(X)
    if array.dtype.kind in "biuf":
        if not isinstance(missing_values, Real):
            return X
        mask = array == missing_values
        if not mask.any():
            return X
        out = array.astype(np.float64 if array.dtype.kind != "f" else array.dtype)
        out[mask] = np.nan
        return out
    out = np.array(array, dtype=object)
    mask = np.vectorize(lambda v: v == missing_values, otypes=[bool])(out)
    out[mask] = np.nan
    return out


def _with_indicator(output, indicator, names):
    if is_dataframe(output):
        import pandas as pd

        columns = pd.DataFrame(indicator, columns=list(names), index=output.index)
        return pd.concat([output, columns], axis=1)
    if output.dtype == object:
        return np.hstack([output, indicator.astype(object)])
    return np.hstack([output, indicator.astype(output.dtype)])
