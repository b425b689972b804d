"""skvae.save / skvae.load: exact round trips, no code run from files, clear errors."""

import os
import pickle
import warnings
import zipfile

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning, NotFittedError

import skvae
from skvae import ModelFileError, load, save
from skvae._persistence import _estimator_classes

ESTIMATOR_CLASSES = sorted(_estimator_classes().items())


def fit_small(estimator_class, X, **params):
    defaults = dict(hidden_layer_sizes=(8,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator_class(**{**defaults, **params}).fit(X)


@pytest.fixture(scope="module")
def X():
    return np.random.RandomState(0).normal(size=(40, 4)) * [1, 2, 3, 4] + 5


def outputs(estimator, X):
    """Every deterministic output of ``estimator`` on ``X``, by method name."""
    result = {
        "score_samples": estimator.score_samples(X),
        "sample": estimator.sample(6, random_state=1),
        "sample_mean": estimator.sample(6, random_state=1, return_mean=True),
    }
    for method in ("transform", "decision_function", "predict"):
        if hasattr(estimator, method):
            result[method] = getattr(estimator, method)(X)
    if hasattr(estimator, "inverse_transform"):
        result["inverse_transform"] = estimator.inverse_transform(result["transform"])
    return result


def assert_same_outputs(a, b, X):
    expected, got = outputs(a, X), outputs(b, X)
    assert expected.keys() == got.keys()
    for name in expected:
        np.testing.assert_array_equal(expected[name], got[name], err_msg=name)
        assert expected[name].dtype == got[name].dtype


@pytest.mark.parametrize("name, estimator_class", ESTIMATOR_CLASSES)
@pytest.mark.parametrize(
    "params",
    [{}, {"early_stopping": True, "likelihood": "gaussian"},
     {"random_state": np.random.RandomState(3), "hidden_layer_sizes": [8, 4]},
     {"architecture": "conv", "image_shape": (1, 2, 2), "conv_channels": (2,),
      "conv_dense_width": 4}],
    ids=["default", "early_stopping", "RandomState", "conv"],
)
def test_round_trip_is_bit_identical(name, estimator_class, params, X, tmp_path):
    estimator = fit_small(estimator_class, X, **params)
    save(estimator, tmp_path / "model.skvae")
    loaded = load(tmp_path / "model.skvae")
    assert type(loaded) is estimator_class
    assert_same_outputs(estimator, loaded, X)
    assert loaded.n_iter_ == estimator.n_iter_ and loaded.loss_curve_ == estimator.loss_curve_
    for key, value in estimator.get_params().items():
        if isinstance(value, np.random.RandomState):
            assert str(loaded.get_params()[key].get_state()) == str(value.get_state())
        else:
            assert loaded.get_params()[key] == value, key
    # The loaded model keeps training where the saved one stopped.
    loaded.set_params(warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        loaded.fit(X)
    assert loaded.n_iter_ == estimator.n_iter_ + 3


def test_round_trip_keeps_feature_names_and_float32(X, tmp_path):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    estimator = fit_small(skvae.VAETransformer, frame)
    save(estimator, tmp_path / "model.skvae")
    loaded = load(tmp_path / "model.skvae")
    np.testing.assert_array_equal(loaded.feature_names_in_, ["a", "b", "c", "d"])
    X32 = X.astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # no feature names in X32
        np.testing.assert_array_equal(estimator.transform(X32), loaded.transform(X32))
    np.testing.assert_array_equal(estimator.transform(frame), loaded.transform(frame))


def test_model_saved_for_a_gpu_loads_on_this_machine(X, tmp_path):
    # Weights are always written from the CPU; device_ records where the model was
    # fitted. Without that device here, the loaded model runs on the CPU.
    estimator = fit_small(skvae.VAETransformer, X, device="cpu")
    expected = outputs(estimator, X)
    estimator.device_ = torch.device("cuda:0")
    save(estimator, tmp_path / "gpu.skvae")
    loaded = load(tmp_path / "gpu.skvae")
    assert loaded.device_ == torch.device("cuda:0")
    if not torch.cuda.is_available():
        assert all(p.device.type == "cpu" for p in loaded.module_.parameters())
    got = outputs(loaded, X)
    for name in expected:
        np.testing.assert_array_equal(expected[name], got[name])


class _WritesMarker:
    """Unpickling this runs ``open(marker, "w")``: a stand-in for arbitrary code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_file_crafted_to_run_code_is_refused_and_runs_nothing(X, tmp_path):
    marker = tmp_path / "pwned"
    # Check that the payload really runs code when unpickled.
    pickle.loads(pickle.dumps(_WritesMarker(marker))).close()
    assert marker.exists()
    marker.unlink()

    estimator = fit_small(skvae.VAETransformer, X)
    save(estimator, tmp_path / "good.skvae")
    payload = torch.load(tmp_path / "good.skvae", weights_only=True)
    payload["fitted"]["evil"] = _WritesMarker(marker)
    crafted = {
        "whole file": _WritesMarker(marker),
        "inside a model file": payload,
        "beside a state dict": {"state_dict": {}, "x": _WritesMarker(marker)},
    }
    for name, obj in crafted.items():
        torch.save(obj, tmp_path / f"{name}.skvae")
        with pytest.raises(ModelFileError, match="refused without running them"):
            load(tmp_path / f"{name}.skvae")
        assert not marker.exists(), name
    # A plain pickle of the payload, not torch's zip format, is refused too.
    with open(tmp_path / "plain.pkl", "wb") as file:
        pickle.dump(_WritesMarker(marker), file)
    with pytest.raises(ModelFileError):
        load(tmp_path / "plain.pkl")
    assert not marker.exists()


def test_pickled_estimators_are_refused(X, tmp_path):
    estimator = fit_small(skvae.VAETransformer, X)
    torch.save(estimator, tmp_path / "pickled.pt")
    with open(tmp_path / "pickled.pkl", "wb") as file:
        pickle.dump(estimator, file)
    for name in ("pickled.pt", "pickled.pkl"):
        with pytest.raises(ModelFileError, match="Only files written by skvae.save"):
            load(tmp_path / name)


def test_truncated_files_get_a_clear_error(X, tmp_path):
    save(fit_small(skvae.VAETransformer, X), tmp_path / "model.skvae")
    data = (tmp_path / "model.skvae").read_bytes()
    for length in (0, 1, 100, len(data) // 2, len(data) - 1):
        (tmp_path / "cut.skvae").write_bytes(data[:length])
        with pytest.raises(ModelFileError, match="cut.skvae"):
            load(tmp_path / "cut.skvae")


def test_corrupted_files_never_load_a_different_model(X, tmp_path):
    estimator = fit_small(skvae.VAETransformer, X)
    save(estimator, tmp_path / "model.skvae")
    data = bytearray((tmp_path / "model.skvae").read_bytes())
    rng = np.random.RandomState(0)
    n_refused = 0
    for position in rng.choice(len(data), size=40, replace=False):
        corrupted = bytearray(data)
        corrupted[position] ^= 0xFF
        (tmp_path / "bad.skvae").write_bytes(bytes(corrupted))
        try:
            loaded = load(tmp_path / "bad.skvae")
        except ModelFileError:
            n_refused += 1
        else:
            # Only bytes that carry no content (zip padding, names of unused
            # records) may change without an error; the model must then be intact.
            assert_same_outputs(estimator, loaded, X)
    assert n_refused > 20


def test_tampered_weights_fail_the_checksum(X, tmp_path):
    save(fit_small(skvae.VAETransformer, X), tmp_path / "model.skvae")
    payload = torch.load(tmp_path / "model.skvae", weights_only=True)
    key = next(iter(payload["state_dict"]))
    payload["state_dict"][key] = payload["state_dict"][key] + 1.0
    torch.save(payload, tmp_path / "tampered.skvae")
    with pytest.raises(ModelFileError, match="checksum"):
        load(tmp_path / "tampered.skvae")


def _resave(payload, path, **changes):
    from skvae._persistence import _checksum

    payload = {**payload, **changes}
    payload["sha256"] = _checksum(payload)
    torch.save(payload, path)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"format_version": 2}, "format version 2.*reads version 1"),
        ({"format": "other"}, "not an skvae model file"),
        ({"estimator": "os.system"}, "not one of skvae's estimators"),
        ({"estimator": "BaseVAE"}, "not one of skvae's estimators"),
        ({"params": {"n_components": 2}}, "parameters"),
        ({"state_dict": {}}, "weights do not fit"),
    ],
)
def test_files_of_other_versions_or_kinds_get_a_clear_error(X, tmp_path, changes, message):
    save(fit_small(skvae.VAETransformer, X), tmp_path / "model.skvae")
    payload = torch.load(tmp_path / "model.skvae", weights_only=True)
    _resave(payload, tmp_path / "changed.skvae", **changes)
    with pytest.raises(ModelFileError, match=message):
        load(tmp_path / "changed.skvae")


@pytest.mark.parametrize(
    "attribute, value, message",
    [
        ("transform", "x", "forbidden name"),
        ("__class__", "x", "forbidden name"),
        ("_scale", {"type": "ndarray", "value": torch.zeros(4, dtype=torch.float64)},
         "not positive"),
        ("likelihood_", "poisson", "not known"),
        ("n_features_in_", 5, "_shift is not 5 finite"),
        ("offset_", {"type": "pickle", "value": b"cos\nsystem\n"}, "malformed"),
    ],
)
def test_bad_fitted_attributes_are_refused(X, tmp_path, attribute, value, message):
    save(fit_small(skvae.VAETransformer, X), tmp_path / "model.skvae")
    payload = torch.load(tmp_path / "model.skvae", weights_only=True)
    payload["fitted"] = {**payload["fitted"], attribute: value}
    _resave(payload, tmp_path / "changed.skvae")
    with pytest.raises(ModelFileError, match=message):
        load(tmp_path / "changed.skvae")


def test_non_finite_weights_are_refused(X, tmp_path):
    save(fit_small(skvae.VAETransformer, X), tmp_path / "model.skvae")
    payload = torch.load(tmp_path / "model.skvae", weights_only=True)
    state = dict(payload["state_dict"])
    key = next(iter(state))
    state[key] = torch.full_like(state[key], float("nan"))
    _resave(payload, tmp_path / "nan.skvae", state_dict=state)
    with pytest.raises(ModelFileError, match="NaN"):
        load(tmp_path / "nan.skvae")


def test_other_files_and_missing_files(tmp_path):
    (tmp_path / "text.skvae").write_text("hello")
    with pytest.raises(ModelFileError, match="text.skvae"):
        load(tmp_path / "text.skvae")
    with zipfile.ZipFile(tmp_path / "zip.skvae", "w") as archive:
        archive.writestr("data.pkl", b"not a pickle")
    with pytest.raises(ModelFileError):
        load(tmp_path / "zip.skvae")
    torch.save({"weight": torch.zeros(3)}, tmp_path / "state_dict.pt")
    with pytest.raises(ModelFileError, match="not an skvae model file"):
        load(tmp_path / "state_dict.pt")
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.skvae")


def test_save_refuses_unfitted_and_foreign_estimators(tmp_path):
    from sklearn.decomposition import PCA

    with pytest.raises(NotFittedError):
        save(skvae.VAETransformer(), tmp_path / "unfitted.skvae")
    with pytest.raises(TypeError, match="not PCA"):
        save(PCA().fit(np.eye(3)), tmp_path / "pca.skvae")
    assert not os.listdir(tmp_path)


def test_save_replaces_files_atomically(X, tmp_path, monkeypatch):
    estimator = fit_small(skvae.VAETransformer, X)
    save(estimator, tmp_path / "model.skvae")
    before = (tmp_path / "model.skvae").read_bytes()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save(fit_small(skvae.VAETransformer, X, random_state=1), tmp_path / "model.skvae")
    assert (tmp_path / "model.skvae").read_bytes() == before
    assert os.listdir(tmp_path) == ["model.skvae"]
