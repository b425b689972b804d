"""Property-based tests of every public method of every public estimator.

For inputs of any shape, dtype and value, each method either returns or raises a
documented exception (``ValueError`` for bad values or shapes, ``TypeError`` for
wrong types, ``NotFittedError`` before ``fit``); valid input (the right number of
columns, at least one row, finite values of moderate size, in [0, 1] for the
Bernoulli likelihood) never raises at all; finite input never gives
non-finite output; inputs are never modified; and inference (``transform``,
``score_samples``, ``predict``, ...) never changes the fitted estimator.
"""

import copy
import dataclasses
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from skvae._persistence import _estimator_classes

ESTIMATOR_CLASSES = [cls for _, cls in sorted(_estimator_classes().items())]
DOCUMENTED = (ValueError, TypeError)
INFERENCE = ("transform", "inverse_transform", "score_samples", "score",
             "decision_function", "predict")
N_FEATURES = 3

fuzz = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI does not flake
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def small(estimator_class, **params):
    defaults = dict(hidden_layer_sizes=(8,), max_iter=2, random_state=0,
                    n_importance_samples=4, device="cpu")
    return estimator_class(**{**defaults, **params})


@pytest.fixture(scope="module", params=[(cls, lik) for cls in ESTIMATOR_CLASSES
                                        for lik in ("bernoulli", "gaussian")],
                ids=lambda p: f"{p[0].__name__}-{p[1]}")
def fitted(request):
    estimator_class, likelihood = request.param
    X = np.random.RandomState(0).uniform(size=(30, N_FEATURES))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return small(estimator_class, likelihood=likelihood).fit(X)


DTYPES = [np.float64, np.float32, np.float16, np.int64, np.int32, np.uint8, np.bool_]


@st.composite
def arrays(draw, n_columns=None, finite=True):
    """2-D arrays of any numeric dtype, mostly with the expected number of columns."""
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    n_rows = draw(st.integers(0, 12))
    if n_columns is None or draw(st.integers(0, 5)) == 0:
        n_columns = draw(st.integers(0, 5))
    if dtype.kind == "f":
        elements = st.floats(width=8 * dtype.itemsize, allow_nan=not finite,
                             allow_infinity=not finite, allow_subnormal=False)
        # Half the time values in [0, 1], which the Bernoulli likelihood accepts.
        if draw(st.booleans()):
            elements = st.floats(0, 1, width=8 * dtype.itemsize)
    else:
        elements = None
    order = draw(st.sampled_from(["C", "F"]))
    X = draw(hnp.arrays(dtype, (n_rows, n_columns), elements=elements))
    X = np.asarray(X, order=order)
    if draw(st.booleans()):
        X.setflags(write=False)
    return X


def other_inputs():
    """Things that are not numeric arrays: wrong ranks, types and containers."""
    return st.sampled_from([
        None, 3.0, "text", np.zeros(3), np.zeros((2, 2, 2)), [[1.0, "a", 3.0]],
        np.array([["a", "b", "c"]], dtype=object), {"a": 1}, np.array([[1 + 2j] * 3]),
    ])


def model_parts(model):
    """The fitted model's parts other than its module (whose weights are compared)."""
    return tuple(copy.deepcopy(getattr(model, f.name)) for f in dataclasses.fields(model)
                 if f.name != "module")


def fingerprint(estimator):
    """Everything a fitted estimator holds, as copies that compare exactly."""
    state = {k: v.detach().clone() for k, v in estimator.module_.state_dict().items()}
    rest = {k: copy.deepcopy(v) for k, v in vars(estimator).items()
            if k not in ("module_", "_model")}
    rest["_model"] = model_parts(estimator._model)
    if "indicator_" in rest:  # an estimator: compared by what it learned
        rest["indicator_"] = vars(rest["indicator_"])
    return state, rest


def assert_unchanged(estimator, before):
    state, rest = fingerprint(estimator)
    assert state.keys() == before[0].keys()
    for key in state:
        assert torch.equal(state[key], before[0][key]), key
    assert rest.keys() == before[1].keys()
    for key in rest:
        np.testing.assert_equal(rest[key], before[1][key], err_msg=key)


def is_valid(X, n_columns, likelihood):
    """Whether every method must accept ``X``: a refusal of it is a bug."""
    if not (isinstance(X, np.ndarray) and X.dtype.kind in "biuf" and X.ndim == 2):
        return False
    if X.shape[0] < 1 or X.shape[1] < 1 or X.shape[1] != n_columns:
        return False
    values = X.astype(np.float64)
    if not np.all(np.isfinite(values)) or np.abs(values).max() > 1e4:
        return False
    return likelihood != "bernoulli" or bool(values.min() >= 0 and values.max() <= 1)


def call_checked(estimator, method, X, *, valid=False):
    """Call ``method``; documented errors pass for invalid input, results are finite."""
    snapshot = np.array(X, copy=True) if isinstance(X, np.ndarray) else None
    flags = X.flags.writeable if isinstance(X, np.ndarray) else None
    try:
        with warnings.catch_warnings():
            if not valid:  # documented: Bernoulli models clip what lies outside [0, 1]
                warnings.filterwarnings("ignore", "X contains values outside", UserWarning)
            result = getattr(estimator, method)(X)
    except DOCUMENTED:
        if valid:
            raise
        result = None
    if snapshot is not None:
        np.testing.assert_array_equal(X, snapshot)
        assert X.flags.writeable == flags
    if result is not None:
        result = np.asarray(result)
        if isinstance(X, np.ndarray) and X.dtype.kind in "biuf" and np.all(np.isfinite(X)):
            assert np.all(np.isfinite(result)), method
        if method != "score":
            assert result.shape[0] == X.shape[0]
    return result


def test_inference_on_any_array(fitted):
    for method in (m for m in INFERENCE if hasattr(fitted, m)):
        decoding = method == "inverse_transform"
        n_columns = fitted.n_components_ if decoding else N_FEATURES
        likelihood = None if decoding else fitted.likelihood_
        before = fingerprint(fitted)

        @fuzz
        @given(X=st.one_of(arrays(n_columns), arrays(n_columns, finite=False),
                           other_inputs()))
        def check(X):
            valid = is_valid(X, n_columns, likelihood)
            call_checked(fitted, method, X, valid=valid)
            assert_unchanged(fitted, before)

        check()


def test_sample_with_any_count(fitted):
    before = fingerprint(fitted)

    @fuzz
    @given(n=st.one_of(st.integers(-3, 40), st.floats(-1, 5), st.none(), st.text(max_size=2)),
           return_mean=st.booleans(), seed=st.integers(0, 2**31 - 1))
    def check(n, return_mean, seed):
        try:
            X = fitted.sample(n, random_state=seed, return_mean=return_mean)
        except DOCUMENTED:
            return
        assert X.shape == (n, N_FEATURES) and np.all(np.isfinite(X))
        np.testing.assert_array_equal(
            X, fitted.sample(n, random_state=seed, return_mean=return_mean)
        )
        assert_unchanged(fitted, before)

    check()


@pytest.mark.parametrize("estimator_class", ESTIMATOR_CLASSES,
                         ids=[c.__name__ for c in ESTIMATOR_CLASSES])
def test_fit_on_any_array(estimator_class):
    @settings(fuzz, max_examples=15)
    @given(X=st.one_of(arrays(), arrays(finite=False), other_inputs()),
           likelihood=st.sampled_from(["auto", "bernoulli", "gaussian"]))
    def check(X, likelihood):
        estimator = small(estimator_class, likelihood=likelihood, max_iter=1)
        snapshot = np.array(X, copy=True) if isinstance(X, np.ndarray) else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            # Documented advice about training (divergence) may be given; nothing else.
            warnings.filterwarnings("ignore", "Training stopped", RuntimeWarning)
            try:
                estimator.fit(X)
            except DOCUMENTED:
                valid = is_valid(X, X.shape[1] if getattr(X, "ndim", 0) == 2 else -1,
                                 likelihood)
                if valid:
                    raise
                return
            finally:
                if snapshot is not None:
                    np.testing.assert_array_equal(X, snapshot)
        assert all(torch.isfinite(v).all() for v in estimator.module_.state_dict().values())
        assert np.all(np.isfinite(estimator.sample(3, random_state=0)))
        for method in INFERENCE:
            if hasattr(estimator, method) and method != "inverse_transform":
                call_checked(estimator, method, X,
                             valid=is_valid(X, X.shape[1], estimator.likelihood_))

    check()


@pytest.mark.parametrize("estimator_class", ESTIMATOR_CLASSES,
                         ids=[c.__name__ for c in ESTIMATOR_CLASSES])
def test_unfitted_estimators_raise_not_fitted(estimator_class):
    estimator = estimator_class()
    for method in INFERENCE:
        if hasattr(estimator, method):
            with pytest.raises(NotFittedError):
                getattr(estimator, method)(np.zeros((2, N_FEATURES)))
    with pytest.raises(NotFittedError):
        estimator.sample(2)


@st.composite
def tables(draw):
    """A DataFrame of numbers, strings, categories and booleans with random holes."""
    pd = pytest.importorskip("pandas")
    n_rows = draw(st.integers(2, 30))
    kinds = draw(st.lists(st.sampled_from(["float", "int", "str", "category", "bool"]),
                          min_size=1, max_size=5))
    columns = {}
    for j, kind in enumerate(kinds):
        if kind == "float":
            values = draw(st.lists(st.floats(-1e3, 1e3), min_size=n_rows, max_size=n_rows))
        elif kind == "int":
            values = draw(st.lists(st.integers(-5, 5), min_size=n_rows, max_size=n_rows))
        elif kind == "bool":
            values = draw(st.lists(st.booleans(), min_size=n_rows, max_size=n_rows))
        else:
            values = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=n_rows,
                                   max_size=n_rows))
        series = pd.Series(values)
        if kind == "category":
            series = series.astype("category")
        holes = draw(st.lists(st.booleans(), min_size=n_rows, max_size=n_rows))
        holes[draw(st.integers(0, n_rows - 1))] = False  # never a whole column
        if kind in ("int", "bool"):
            series = series.astype(object) if kind == "bool" else series.astype(float)
        columns[f"c{j}"] = series.mask(pd.Series(holes))
    return pd.DataFrame(columns)


@pytest.mark.parametrize("estimator_class", ESTIMATOR_CLASSES,
                         ids=[c.__name__ for c in ESTIMATOR_CLASSES])
@fuzz
@given(table=tables())
def test_any_table_with_holes_fits_and_comes_back_in_its_format(estimator_class, table):
    before = table.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator = small(estimator_class).fit(table)
    assert table.equals(before)  # never modified
    codes = estimator.encode(table)
    assert np.all(np.isfinite(codes))
    assert np.all(np.isfinite(estimator.score_samples(table)))
    samples = estimator.sample(4, random_state=0)
    assert list(samples.columns) == list(table.columns)
    assert list(samples.dtypes) == list(table.dtypes)
    assert not samples.isna().any().any()
    if hasattr(estimator, "predict"):
        assert set(np.unique(estimator.predict(table))) <= {-1, 1}
    if estimator_class.__name__ == "VAEImputer":
        filled = estimator.transform(table)
        assert not filled.isna().any().any()
        observed = table.notna().to_numpy()
        assert (filled.to_numpy()[observed] == table.to_numpy()[observed]).all()
