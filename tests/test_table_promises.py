"""Promises of the table layer (issue 24): labels, dtypes and ranges come back as
fitted; the likelihood choice is relative to the data's scale and the same for
streamed data; bad cells, crafted files and a missing pandas get clear errors."""

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from skvae import ModelFileError, VAEImputer, VAETransformer, load, save
from skvae._data import _STATS_BLOCK_ROWS, DataSpace
from skvae import _tables
from skvae._tables import TableSchema

from _model_files import read_model_file, write_model_file

pd = pytest.importorskip("pandas")


def fit_small(X, estimator_class=VAETransformer, **params):
    params = {"hidden_layer_sizes": (8,), "max_iter": 3, "random_state": 0,
              "device": "cpu", **params}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator_class(**params).fit(X)


def table(n=60, seed=0, **columns):
    rng = np.random.RandomState(seed)
    return pd.DataFrame({"x": rng.normal(size=n), **columns})


# ------------------------------------------------------ 1. column labels


@pytest.mark.parametrize("labels, shown", [
    (pd.MultiIndex.from_tuples([("a", "x"), ("a", "y")]), r"\('a', 'x'\) \(tuple\)"),
    (pd.Index([0.5, 1.5]), r"0\.5 \(float\)"),
    (pd.to_datetime(["2020-01-01", "2021-01-01"]), r"Timestamp\('2020-01-01.*\(Timestamp\)"),
    (pd.Index([True, False], dtype=object), r"True \(bool\)"),
], ids=["multiindex", "floats", "timestamps", "bools"])
def test_labels_a_model_cannot_give_back_are_refused_at_fit_by_name(labels, shown):
    X = pd.DataFrame(np.random.RandomState(0).normal(size=(40, 2)), columns=labels)
    with pytest.raises(ValueError, match=f"neither strings nor integers: {shown}.*Rename"):
        fit_small(X)


def test_repeated_labels_are_refused_by_name():
    X = pd.DataFrame(np.random.RandomState(0).normal(size=(40, 2)), columns=["a", "a"])
    with pytest.raises(ValueError, match=r"repeats the column labels \['a'\]"):
        fit_small(X)


@pytest.mark.parametrize("labels", [["b", "a"], [3, 7]])
def test_string_and_integer_labels_come_back_from_every_output(labels, tmp_path):
    X = pd.DataFrame(np.random.RandomState(0).normal(size=(40, 2)), columns=labels)
    X.iloc[::5, 0] = np.nan
    for estimator in (fit_small(X), fit_small(X, VAEImputer)):
        save(estimator, tmp_path / "model.skvae")
        for model in (estimator, load(tmp_path / "model.skvae")):
            assert list(model.sample(2, random_state=0).columns) == labels
            assert list(model.decode(np.zeros((1, model.n_components_))).columns) == labels
    assert list(estimator.transform(X).columns) == labels


# --------------------------------------------------------- 2. dtypes


def test_an_object_column_comes_back_as_object_not_str(tmp_path):
    X = table(c=pd.Series(["u", "v", "w"] * 20, dtype=object))
    vae = fit_small(X)
    save(vae, tmp_path / "model.skvae")
    for model in (vae, load(tmp_path / "model.skvae")):
        assert model.sample(3, random_state=0)["c"].dtype == object
        assert model.inverse_transform(model.transform(X))["c"].dtype == object


@pytest.mark.parametrize("dtype", ["bool", "boolean"])
def test_a_bool_column_left_out_of_categorical_features_stays_bool(dtype, tmp_path):
    X = table(flag=pd.array([True, False, False] * 20, dtype=dtype),
              c=["u", "v"] * 30)
    vae = fit_small(X, categorical_features=["c"])
    assert vae._model.data_space.kinds == ("gaussian", "bernoulli", "categorical")
    save(vae, tmp_path / "model.skvae")
    for model in (vae, load(tmp_path / "model.skvae")):
        samples = model.sample(5, random_state=0)
        assert str(samples["flag"].dtype) == dtype
        assert str(model.inverse_transform(model.transform(X))["flag"].dtype) == dtype


@pytest.mark.parametrize("dtype", ["int64", "int16", "uint8"])
def test_an_integer_column_with_placeholders_is_imputed_in_its_dtype(dtype):
    rng = np.random.RandomState(0)
    X = table(n=80, i=rng.randint(0, 100, 80).astype(dtype))
    X["i"] = X["i"].mask(np.arange(80) % 5 == 0, 255 if dtype == "uint8" else -1)
    imputer = fit_small(X, VAEImputer, missing_values=255 if dtype == "uint8" else -1)
    out = imputer.transform(X)
    assert out["i"].dtype == dtype and out["x"].dtype == np.float64
    observed = np.arange(80) % 5 != 0
    np.testing.assert_array_equal(out["i"][observed], X["i"][observed])
    assert X["i"].dtype == dtype  # the input is left alone


def test_integers_beyond_float64_are_refused_with_placeholders_too():
    X = table(i=np.array([2**60, -1, 5] * 20, dtype=np.int64))
    with pytest.raises(ValueError, match="'i' of X holds integers beyond 2"):
        fit_small(X, VAEImputer, missing_values=-1)


def test_numbers_named_categorical_keep_their_dtype_and_save(tmp_path):
    X = table(k=pd.Series([1, 2, 3] * 20), f=np.array([0.5, 1.5] * 30, dtype=np.float32),
              N=pd.array([1, None, 3] * 20, dtype="Int16"))
    vae = fit_small(X, categorical_features=["k", "f", "N"])
    save(vae, tmp_path / "model.skvae")
    for model in (vae, load(tmp_path / "model.skvae")):
        samples = model.sample(20, random_state=0)
        assert samples.dtypes.tolist() == X.dtypes.tolist()
        assert set(samples["k"]) <= {1, 2, 3} and set(samples["f"]) <= {0.5, 1.5}


# --------------------------------------------------- 3. output overflow


def test_samples_of_a_float16_column_near_its_largest_value_are_finite():
    rng = np.random.RandomState(0)
    X = pd.DataFrame({"h": np.clip(65000 + 300 * rng.normal(size=200), None, 65500
                                   ).astype(np.float16),
                      "x": rng.normal(size=200)})
    samples = fit_small(X).sample(2000, random_state=0)
    assert samples["h"].dtype == np.float16
    assert np.all(np.isfinite(samples["h"])) and samples["h"].max() == 65504


@pytest.mark.parametrize("dtype, codes, expected", [
    ("int64", [2.0**63, 1e19, -1e19, 3.4], [2**63 - 1, 2**63 - 1, -(2**63), 3]),
    ("Int64", [2.0**63, -1e19], [2**63 - 1, -(2**63)]),
    ("uint8", [-3.2, 300.0, 254.6], [0, 255, 255]),
    ("int8", [-128.4, 127.6], [-128, 127]),
    ("float32", [1e39, -1e39], [np.finfo(np.float32).max, np.finfo(np.float32).min]),
])
def test_codes_a_little_beyond_a_dtype_saturate_at_its_bounds(dtype, codes, expected):
    schema = TableSchema([None], dtypes=[dtype], frame=True, columns=["v"])
    out = schema.to_user(np.array(codes)[:, None])["v"]
    assert str(out.dtype) == dtype
    assert out.tolist() == list(np.array(expected, dtype=dtype.lower()))


def test_decoding_far_out_codes_into_an_integer_column_is_an_error_naming_it():
    rng = np.random.RandomState(0)
    vae = fit_small(table(n=100, i=rng.randint(0, 100, 100)))
    with pytest.raises(ValueError, match=r"gives .*e\+\d\d for column 'i', far outside "
                                         r"the range .* of its dtype int64"):
        vae.inverse_transform(np.full((2, vae.n_components_), 1e30))


@pytest.mark.parametrize("codes", [[np.nan], [np.inf]])
def test_codes_that_are_not_finite_are_an_error_naming_the_column(codes):
    schema = TableSchema([None, ["a", "b"]], dtypes=["float64", "object"], frame=True,
                         columns=["v", "c"])
    with pytest.raises(ValueError, match="NaN or infinite values for column 'v'"):
        schema.to_user(np.array([codes + [0.0]]))


# ---------------------------------------- 4. and 5. choosing the likelihood


@pytest.mark.parametrize("X, expected", [
    (5e-7 + 1e-7 * np.random.RandomState(0).normal(size=(100, 3)), "gaussian"),
    (np.random.RandomState(0).randint(0, 2, (100, 3)) * 1e-6, "gaussian"),
    (np.random.RandomState(0).randint(0, 2, (100, 3)) + 1e-12, "bernoulli"),
    (np.zeros((100, 3)), "bernoulli"),
], ids=["continuous-near-0", "binary-at-1e-6", "binary-with-rounding", "zeros"])
def test_auto_tells_binary_data_relative_to_their_scale(X, expected):
    assert DataSpace.fit(X, estimator_name="VAE").likelihood == expected
    assert fit_small(X).likelihood_ == expected


def test_auto_is_relative_per_column_of_a_table_too():
    X = table(n=100, tiny=5e-7 + 1e-7 * np.random.RandomState(1).normal(size=100),
              c=["u", "v"] * 50)
    assert fit_small(X)._model.data_space.kinds == ("gaussian", "gaussian", "categorical")


def test_a_tiny_spread_is_standardised_not_taken_for_a_constant():
    rng = np.random.RandomState(0)
    X = 1e-16 * rng.normal(size=(200, 2))
    space = DataSpace.fit(X, likelihood="gaussian", estimator_name="VAE")
    np.testing.assert_allclose(space.scale, X.std(axis=0))
    # The same spread around 1e6 is rounding error: unit scale, as StandardScaler.
    space = DataSpace.fit(1e6 + X, likelihood="gaussian", estimator_name="VAE")
    np.testing.assert_array_equal(space.scale, [1.0, 1.0])
    space = DataSpace.fit(np.full((50, 2), 3.0), likelihood="gaussian", estimator_name="VAE")
    np.testing.assert_array_equal(space.scale, [1.0, 1.0])


@pytest.mark.parametrize("last_block", ["missing", "zeros", "tiny"])
def test_a_memmap_gets_the_likelihood_of_the_same_data_in_memory(tmp_path, last_block):
    rng = np.random.RandomState(0)
    X = (rng.rand(_STATS_BLOCK_ROWS + 300, 2) > 0.5).astype(np.float64)
    tail = X[_STATS_BLOCK_ROWS:]
    tail[:] = {"missing": np.nan, "zeros": 0.0, "tiny": 1e-9}[last_block]
    memmap = np.memmap(tmp_path / "X.dat", dtype=np.float64, mode="w+", shape=X.shape)
    memmap[:] = X
    memmap.flush()
    # "tiny": 1e-9 is within 1e-6 of 0 at the scale of the 0/1 rows: binary.
    assert DataSpace.fit(X, estimator_name="VAE").likelihood == "bernoulli"
    assert DataSpace.fit(memmap, estimator_name="VAE").likelihood == "bernoulli"


def test_a_memmap_of_tiny_values_gets_the_likelihood_of_the_same_data_in_memory(tmp_path):
    # Every block alone looks like data at 1e-7 except the one holding a 1.
    X = 1e-7 * np.random.RandomState(0).rand(_STATS_BLOCK_ROWS + 300, 2)
    X[-1] = 1.0
    memmap = np.memmap(tmp_path / "X.dat", dtype=np.float64, mode="w+", shape=X.shape)
    memmap[:] = X
    memmap.flush()
    assert (DataSpace.fit(memmap, estimator_name="VAE").likelihood
            == DataSpace.fit(X, estimator_name="VAE").likelihood == "bernoulli")


# ------------------------------------------- 12. declared categories


def test_a_category_dtype_with_many_unused_levels_is_no_identifier():
    rng = np.random.RandomState(0)
    countries = [f"country{i}" for i in range(195)]
    X = table(n=300, country=pd.Categorical(rng.choice(countries[:20], 300),
                                            categories=countries))
    vae = fit_small(X)
    assert vae._model.schema.levels[1] == 195  # declared levels are kept
    assert vae.sample(3, random_state=0)["country"].dtype == X["country"].dtype


@pytest.mark.parametrize("n_used, n_declared, match", [
    (200, 200, "200 levels for 300 observed rows: it looks like an identifier"),
    (20, 1001, "declares 1001 categories.*remove_unused_categories"),
])
def test_identifiers_and_oversized_category_dtypes_are_still_refused(n_used, n_declared,
                                                                     match):
    levels = [f"l{i}" for i in range(n_declared)]
    values = np.resize(levels[:n_used], 300)
    X = table(n=300, c=pd.Categorical(values, categories=levels))
    with pytest.raises(ValueError, match=match):
        fit_small(X)


# ---------------------------------------------- 15. pandas absent


PANDAS_ABSENT = """
import pickle, sys
sys.modules["pandas"] = None
import numpy as np
import skvae
from skvae._tables import PandasMissingError
path, pickled = sys.argv[1], sys.argv[2]
loaded = skvae.load(path)
print("load: scores", np.isfinite(loaded.score_samples(np.zeros((2, 2)))).all())
with open(pickled, "rb") as file:
    model = pickle.load(file)
print("score:", np.isfinite(model.score_samples(np.zeros((2, 2)))).all())
for name, estimator in (("sample", model), ("loaded sample", loaded)):
    try:
        estimator.sample(2)
    except PandasMissingError as error:
        print(name + ":", isinstance(error, ImportError), error)
"""


def test_without_pandas_a_frame_model_loads_and_names_pandas_where_it_needs_it(tmp_path):
    X = pd.DataFrame(np.random.RandomState(0).normal(size=(40, 2)), columns=["a", "b"])
    vae = fit_small(X)
    save(vae, tmp_path / "model.skvae")
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(vae))
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", PANDAS_ABSENT, str(tmp_path / "model.skvae"),
         str(tmp_path / "model.pkl")], capture_output=True, text=True, timeout=120)
    lines = result.stdout.splitlines()
    assert len(lines) == 4, result.stdout + result.stderr
    # The file loads and scores arrays; what must give back a DataFrame says
    # pandas is needed.
    assert lines[0] == "load: scores True"
    assert lines[1] == "score: True"
    assert lines[2].startswith("sample: True") and "install pandas" in lines[2]
    assert lines[3].startswith("loaded sample: True") and "install pandas" in lines[3]


def test_the_missing_pandas_error_is_an_import_error_and_a_value_error():
    assert issubclass(_tables.PandasMissingError, ImportError)
    assert issubclass(_tables.PandasMissingError, ValueError)


# ----------------------------------------- 16. dicts and lists in cells


@pytest.mark.parametrize("values, kind", [
    ([{"a": 1}] * 40, "dict"), ([[1, 2]] * 40, "list"), ([{1, 2}] * 40, "set"),
])
def test_cells_holding_containers_are_refused_at_fit_naming_the_column(values, kind):
    X = table(n=40, d=pd.Series(values, dtype=object))
    with pytest.raises(ValueError, match=f"'d' of X holds {kind} values"):
        fit_small(X)
    # In an object array whose other column holds categories; numbers-only arrays
    # keep scikit-learn's validation and its TypeError.
    array = np.empty((40, 3), dtype=object)
    array[:, 0], array[:, 1] = 1.0, ["u", "v"] * 20
    array[:, 2] = pd.Series(values, dtype=object).to_numpy()
    array[0, 2] = 2.0
    with pytest.raises(ValueError, match=f"Column 2 of X holds {kind} values"):
        fit_small(array)
    array[:, 2] = pd.Series(values, dtype=object).to_numpy()
    with pytest.raises(ValueError, match=f"Column 2 of X holds {kind} values"):
        fit_small(array)


def test_a_container_where_a_category_belongs_is_an_unknown_category():
    X = table(n=40, c=pd.Series(["u", "v"] * 20, dtype=object))
    vae = fit_small(X)
    bad = X.copy()
    bad["c"] = pd.Series([{"a": 1}] + ["u"] * 39, dtype=object)
    with pytest.raises(ValueError, match=r"Column 'c' of X holds the category \{'a': 1\}"):
        vae.transform(bad)
    imputer = fit_small(X, VAEImputer, handle_unknown="ignore")
    assert imputer.transform(bad)["c"][0] in ("u", "v")


# ---------------------------------------------------- 17. crafted files


def crafted(tmp_path, X, change, categorical_features="from_dtype"):
    save(fit_small(X, categorical_features=categorical_features), tmp_path / "model.skvae")
    content, weights = read_model_file(tmp_path / "model.skvae")
    change(content["fitted"])
    write_model_file(tmp_path / "crafted.skvae", content, weights)
    return tmp_path / "crafted.skvae"


def _categories(j, values):
    def change(fitted):
        fitted["table_schema"]["categories"][j] = values
    return change


def _shift(j, value):
    def change(fitted):
        fitted["data_space"]["shift"][j] = value
    return change


AUTO, NAMED = "from_dtype", ["c"]  # integer columns are named, to craft their categories

CRAFTED_TABLES = {
    "str-ints": (pd.Series(["u", "v"] * 20, dtype="str"), AUTO, _categories(1, [1, 2]),
                 "does not fit"),
    "string-bools": (pd.Series(["u", "v"] * 20, dtype="string"), AUTO,
                     _categories(1, [True, False]), "does not fit"),
    "bool-ints": (pd.Series([True, False] * 20), AUTO, _categories(1, [0, 1]),
                  "does not fit"),
    "object-mixed": (pd.Series(["u", "v"] * 20, dtype=object), AUTO,
                     _categories(1, ["u", 1]), "does not fit"),
    "int8-300": (pd.Series([1, 2] * 20, dtype=np.int8), NAMED, _categories(1, [1, 300]),
                 "does not fit"),
    "int16-float": (pd.Series([1, 2] * 20, dtype=np.int16), NAMED,
                    _categories(1, [1, 2.5]), "does not fit"),
    "float16-shift": (np.linspace(60000, 65000, 40).astype(np.float16), AUTO,
                      _shift(1, 1e6), "outside the range .* float16"),
    "int8-shift": (np.arange(40, dtype=np.int8), AUTO, _shift(1, 1e6),
                   "outside the range .* int8"),
    # Within the samples' saturation, but no float16 data have such a mean.
    "float16-moderate-shift": (np.linspace(60000, 65000, 40).astype(np.float16), AUTO,
                               _shift(1, 1e5), "centre of column 'c'.* float16"),
}


@pytest.mark.parametrize("case", list(CRAFTED_TABLES))
def test_crafted_files_whose_table_cannot_hold_their_samples_are_refused(tmp_path, case):
    column, categorical_features, change, message = CRAFTED_TABLES[case]
    path = crafted(tmp_path, table(n=40, c=column), change, categorical_features)
    with pytest.raises(ModelFileError, match=f"crafted.skvae.*{message}"):
        load(path)


def test_a_file_whose_table_is_untouched_still_loads(tmp_path):
    path = crafted(tmp_path, table(n=40, h=np.linspace(60000, 65000, 40).astype(np.float16),
                                   c=pd.Series(["u", "v"] * 20, dtype="str")),
                   lambda fitted: None)
    assert load(path).sample(3, random_state=0)["h"].dtype == np.float16
