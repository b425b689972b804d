"""skvae.save / skvae.load of whole fitted Pipelines, ColumnTransformers and
FeatureUnions: one file, exact round trips in a fresh process, no pickle, and a
refusal for every kind of crafted file."""

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from safetensors.torch import load as tensors_from_bytes
from safetensors.torch import save as safetensors_bytes
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import make_column_transformer
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline, make_union
from sklearn.preprocessing import MinMaxScaler, StandardScaler

import skvae
from skvae import ModelFileError, VAEOutlierDetector, VAETransformer
from skvae._persistence import _checksum, _safetensors_header

skops_io = pytest.importorskip("skops.io")  # the test extra installs it

SMALL = dict(hidden_layer_sizes=(8,), max_iter=3, random_state=0, device="cpu")


def _safetensors_metadata(data):
    """The ``__metadata__`` of a safetensors file's bytes."""
    return _safetensors_header(data).get("__metadata__") or {}


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 5)) * [1, 2, 3, 4, 5] + 2
    return X, (X[:, 0] > 2).astype(int)


def fit_quietly(estimator, X, y=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 3 epochs: a demonstration
        return estimator.fit(X, y)


@pytest.fixture(scope="module")
def pipeline(data):
    """The pipeline a user fits: scaling, the VAE, a classifier."""
    return fit_quietly(
        make_pipeline(StandardScaler(), VAETransformer(n_components=2, **SMALL),
                      LogisticRegression()),
        *data,
    )


@pytest.fixture(scope="module")
def nested(data):
    """skvae estimators at every place a container keeps steps, nested three deep."""
    columns = make_column_transformer(
        (VAETransformer(n_components=2, **SMALL), [0, 1, 2]),
        remainder=make_pipeline(MinMaxScaler(), VAETransformer(n_components=1, **SMALL)),
    )
    union = make_union(VAETransformer(n_components=2, **SMALL), "passthrough")
    return fit_quietly(make_pipeline(columns, union, VAEOutlierDetector(**SMALL)), data[0])


@pytest.mark.slow  # a fresh interpreter imports torch, scikit-learn and skops
def test_pipeline_round_trip_is_exact_in_a_fresh_process(pipeline, data, tmp_path):
    X, _ = data
    path = tmp_path / "pipeline.skvae"
    skvae.save(pipeline, path)
    code = (
        "import sys, numpy as np, skvae\n"
        "pipeline = skvae.load(sys.argv[1])\n"
        "X = np.load(sys.argv[2])\n"
        "np.save(sys.argv[3], pipeline.predict_proba(X))\n"
        "np.save(sys.argv[4], pipeline[:-1].transform(X))\n"
    )
    np.save(tmp_path / "X.npy", X)
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code, str(path), str(tmp_path / "X.npy"),
         str(tmp_path / "proba.npy"), str(tmp_path / "codes.npy")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "proba.npy"), pipeline.predict_proba(X))
    np.testing.assert_array_equal(np.load(tmp_path / "codes.npy"), pipeline[:-1].transform(X))


def test_nested_containers_round_trip(nested, data, tmp_path):
    X, _ = data
    path = tmp_path / "nested.skvae"
    skvae.save(nested, path)
    loaded = skvae.load(path)
    for method in ("decision_function", "score_samples", "predict"):
        np.testing.assert_array_equal(getattr(loaded, method)(X), getattr(nested, method)(X))
    np.testing.assert_array_equal(loaded[:-1].transform(X), nested[:-1].transform(X))
    # The unfitted estimators a ColumnTransformer keeps come back unfitted, with
    # their parameters; the fitted clones come back fitted.
    given, fitted = loaded[0].transformers[0][1], loaded[0].transformers_[0][1]
    assert type(given) is VAETransformer and not hasattr(given, "n_features_in_")
    assert given.get_params() == nested[0].transformers[0][1].get_params()
    assert fitted.n_features_in_ == 3


def test_set_output_pandas_survives_the_round_trip(data, tmp_path):
    """Pipeline.set_output reaches the skvae step: it still returns a DataFrame."""
    pd = pytest.importorskip("pandas")
    X, y = data
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    columns = make_column_transformer((VAETransformer(n_components=2, **SMALL), ["x0", "x1"]),
                                      remainder=StandardScaler())
    pipeline = fit_quietly(make_pipeline(columns, LogisticRegression())
                           .set_output(transform="pandas"), frame, y)
    skvae.save(pipeline, tmp_path / "pandas.skvae")
    loaded = skvae.load(tmp_path / "pandas.skvae")
    assert isinstance(loaded[0].transformers_[0][1].transform(frame[["x0", "x1"]]),
                      pd.DataFrame)
    pd.testing.assert_frame_equal(loaded[0].transform(frame), pipeline[0].transform(frame))
    np.testing.assert_array_equal(loaded.predict_proba(frame), pipeline.predict_proba(frame))


def test_save_leaves_the_pipeline_unchanged(nested, tmp_path):
    before = repr(nested), [id(step) for _, step in nested.steps]
    skvae.save(nested, tmp_path / "nested.skvae")
    assert (repr(nested), [id(step) for _, step in nested.steps]) == before
    assert isinstance(nested[0].transformers_[0][1], VAETransformer)


def test_single_estimator_files_keep_their_keys(pipeline, tmp_path):
    """A single model's file is what it always was: no pipeline entries in it."""
    skvae.save(pipeline[1], tmp_path / "vae.skvae")
    data = (tmp_path / "vae.skvae").read_bytes()
    assert set(_safetensors_metadata(data)) == {"skvae", "skvae.sha256"}
    assert not any(name.startswith("step") for name in tensors_from_bytes(data))


# ------------------------------------------------------------ what save refuses


class OwnScaler(TransformerMixin, BaseEstimator):
    """A user's own transformer: a type skops does not trust by default."""

    def fit(self, X, y=None):
        self.n_features_in_ = np.shape(X)[1]
        return self

    def transform(self, X):
        return np.asarray(X) * 2.0


def test_save_refuses_a_step_neither_format_holds_and_names_it(data, tmp_path):
    own = fit_quietly(make_pipeline(OwnScaler(), VAETransformer(**SMALL)), data[0])
    with pytest.raises(TypeError, match=r"test_pipeline_files\.OwnScaler.*skops\.io\.dump"):
        skvae.save(own, tmp_path / "own.skvae")
    assert not (tmp_path / "own.skvae").exists()


def test_save_refuses_skvae_estimators_inside_other_objects(data, tmp_path):
    search = GridSearchCV(VAETransformer(**SMALL), {"n_components": [1, 2]}, cv=2)
    wrapped = fit_quietly(make_pipeline(StandardScaler(), search), data[0])
    with pytest.raises(TypeError, match=r"step sklearn.model_selection._search.GridSearchCV .*not inside"):
        skvae.save(wrapped, tmp_path / "wrapped.skvae")


def test_save_refuses_an_unfitted_pipeline(tmp_path):
    with pytest.raises(NotFittedError):
        skvae.save(make_pipeline(StandardScaler(), VAETransformer()), tmp_path / "p.skvae")


def test_save_of_other_objects_names_them_and_skops(pipeline, tmp_path):
    search = GridSearchCV(pipeline, {"logisticregression__C": [1.0]})
    with pytest.raises(TypeError, match=r"not GridSearchCV\. For other objects use skops"):
        skvae.save(search, tmp_path / "search.skvae")


def test_missing_skops_is_a_clear_error(pipeline, tmp_path, monkeypatch):
    skvae.save(pipeline, tmp_path / "pipeline.skvae")
    monkeypatch.setitem(sys.modules, "skops", None)
    monkeypatch.setitem(sys.modules, "skops.io", None)
    with pytest.raises(ImportError, match=r"pip install \"skvae\[pipeline\]\""):
        skvae.save(pipeline, tmp_path / "again.skvae")
    with pytest.raises(ImportError, match=r"Loading .* needs skops"):
        skvae.load(tmp_path / "pipeline.skvae")


# ------------------------------------------------------- what load refuses


def parts(path):
    data = path.read_bytes()
    metadata = _safetensors_metadata(data)
    return dict(tensors_from_bytes(data)), json.loads(metadata["skvae.pipeline"])


def write(path, weights, content, checksum=None):
    """A crafted file with a valid pipeline checksum unless ``checksum`` is given."""
    document = json.dumps(content, sort_keys=True)
    metadata = {"skvae.pipeline": document,
                "skvae.pipeline.sha256": checksum or _checksum(document, weights)}
    path.write_bytes(safetensors_bytes(weights, metadata=metadata))


@pytest.fixture
def saved(pipeline, tmp_path):
    path = tmp_path / "pipeline.skvae"
    skvae.save(pipeline, path)
    return path


def test_load_refuses_a_corrupted_file_by_its_checksum(saved):
    weights, content = parts(saved)
    checksum = _safetensors_metadata(saved.read_bytes())["skvae.pipeline.sha256"]
    name = next(name for name in weights if name.startswith("step0/"))
    weights[name] = weights[name].clone()
    weights[name].view(-1)[0] += 1
    write(saved, weights, content, checksum=checksum)  # the checksum of the file as saved
    with pytest.raises(ModelFileError, match="pipeline.skvae.*checksum does not match"):
        skvae.load(saved)


@pytest.mark.parametrize("change, message", [
    (lambda c: c.pop("estimators"), r"pipeline entries are \['container'"),
    (lambda c: c.update(format_version=99), "pipeline format version 99"),
    (lambda c: c.update(container="FeatureUnion"), "claims to hold a 'FeatureUnion'"),
    (lambda c: c.update(estimators=[]), r"refers to skvae estimator '0'.*0 estimators"),
    (lambda c: c["estimators"].append(c["estimators"][0]), r"estimators \[1\] have no place"),
    (lambda c: c["estimators"][0].update(extra=1), "estimator 0 has the entries"),
    (lambda c: c["estimators"][0].update(set_output={"transform": 3}),
     "estimator 0 has a malformed 'set_output'"),
    (lambda c: c["estimators"][0].update(set_output={"transform": "xml"}),
     "estimator 0 has an invalid 'set_output'"),
])
def test_load_refuses_a_bad_structure(saved, change, message):
    weights, content = parts(saved)
    change(content)
    write(saved, weights, content)
    with pytest.raises(ModelFileError, match=message):
        skvae.load(saved)


def test_load_refuses_a_step_that_is_not_what_it_claims(saved):
    weights, content = parts(saved)
    content["estimators"][0]["estimator"] = "VAEOutlierDetector"
    write(saved, weights, content)
    with pytest.raises(ModelFileError,
                       match="claims to be a 'VAEOutlierDetector' but holds a VAETransformer"):
        skvae.load(saved)


def test_load_checks_each_skvae_step_as_a_model_file(saved):
    weights, content = parts(saved)
    document = json.loads(content["estimators"][0]["document"])
    document["params"]["n_components"] = -1
    content["estimators"][0]["document"] = json.dumps(document, sort_keys=True)
    write(saved, weights, content)  # a valid pipeline checksum, the step's no longer
    with pytest.raises(ModelFileError, match="estimator 0: its checksum does not match"):
        skvae.load(saved)


def test_load_refuses_an_untrusted_type_in_the_skops_part(saved, data):
    weights, content = parts(saved)
    own = make_pipeline(OwnScaler(), StandardScaler()).fit(data[0])
    weights["pipeline.skops"] = torch.frombuffer(bytearray(skops_io.dumps(own)),
                                                 dtype=torch.uint8)
    write(saved, weights, content)
    with pytest.raises(ModelFileError, match=r"test_pipeline_files\.OwnScaler.*does not trust"):
        skvae.load(saved)


def test_load_refuses_stray_tensors(saved):
    weights, content = parts(saved)
    weights["step7/encoder.weight"] = torch.zeros(2)
    write(saved, weights, content)
    with pytest.raises(ModelFileError, match=r"tensors \['step7/encoder.weight'\] that belong "
                                             "to none of its estimators"):
        skvae.load(saved)


def test_load_refuses_a_compressed_skops_part(saved, pipeline):
    import zipfile

    weights, content = parts(saved)
    squeezed = skops_io.dumps(pipeline[:1], compression=zipfile.ZIP_DEFLATED)
    weights["pipeline.skops"] = torch.frombuffer(bytearray(squeezed), dtype=torch.uint8)
    write(saved, weights, content)
    with pytest.raises(ModelFileError, match="compressed member"):
        skvae.load(saved)


def test_load_refuses_a_skops_part_that_is_not_skops(saved):
    weights, content = parts(saved)
    weights["pipeline.skops"] = torch.frombuffer(bytearray(b"not a zip file"), dtype=torch.uint8)
    write(saved, weights, content)
    with pytest.raises(ModelFileError, match="not a valid skops dump"):
        skvae.load(saved)
