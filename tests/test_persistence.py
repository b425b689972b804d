"""skvae.save / skvae.load: exact round trips, no code run from files, bounded cost,
clear errors for every kind of bad file."""

import errno
import json
import os
import pickle
import struct
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save as safetensors_bytes
from sklearn.exceptions import ConvergenceWarning, NotFittedError

import skvae
import skvae._persistence
from skvae import ModelFileError, load, save
from skvae._persistence import _checksum, _estimator_classes

ESTIMATOR_CLASSES = sorted(_estimator_classes().items())


def fit_small(estimator_class, X, **params):
    defaults = dict(hidden_layer_sizes=(8,), max_iter=3, random_state=0, device="cpu")
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
        "encode": estimator.encode(X),
    }
    for method in ("transform", "decision_function", "predict"):
        if hasattr(estimator, method):
            result[method] = getattr(estimator, method)(X)
    result["decode"] = estimator.decode(result["encode"])
    return result


def assert_same_outputs(a, b, X):
    expected, got = outputs(a, X), outputs(b, X)
    assert expected.keys() == got.keys()
    for name in expected:
        np.testing.assert_array_equal(expected[name], got[name], err_msg=name)
        assert expected[name].dtype == got[name].dtype


def read_model_file(path):
    """The JSON document and the weights of a model file."""
    with safe_open(path, framework="pt") as file:
        metadata = file.metadata()
        weights = {name: file.get_tensor(name) for name in file.keys()}
    return json.loads(metadata["skvae"]), weights


def write_model_file(path, content, weights, *, checksum=True, document=None):
    """Write a model file, with a valid checksum unless told otherwise."""
    document = json.dumps(content) if document is None else document
    metadata = {"skvae": document}
    metadata["skvae.sha256"] = _checksum(document, weights) if checksum else "0" * 64
    path.write_bytes(safetensors_bytes(weights, metadata=metadata))


# A conv model saved by skvae at commit 68e25ac, before decoder layouts existed
# (VAETransformer(architecture="conv", image_shape=(6, 6), conv_channels=(2, 3),
# conv_dense_width=4, likelihood="bernoulli", max_iter=3, random_state=0) on
# RandomState(0).uniform(size=(40, 36))), and its outputs then.
OLD_CONV_FILE = Path(__file__).parent / "data" / "conv_before_decoder_layouts.skvae"


@pytest.fixture()
def model_file(X, tmp_path):
    save(fit_small(skvae.VAEOutlierDetector, X), tmp_path / "model.skvae")
    return tmp_path / "model.skvae"


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("name, estimator_class", ESTIMATOR_CLASSES)
@pytest.mark.parametrize(
    "params",
    [{}, {"early_stopping": True, "likelihood": "gaussian"},
     {"random_state": np.random.RandomState(3), "hidden_layer_sizes": [8, 4]},
     {"hidden_layer_sizes": np.array([5, 3]), "device": torch.device("cpu"), "tol": 0.0},
     {"architecture": "conv", "image_shape": (1, 2, 2), "conv_channels": (2,),
      "conv_dense_width": 4}],
    ids=["default", "early_stopping", "RandomState", "ndarray-device", "conv"],
)
def test_round_trip_is_bit_identical(name, estimator_class, params, X, tmp_path):
    estimator = fit_small(estimator_class, X, **params)
    save(estimator, tmp_path / "model.skvae")
    loaded = load(tmp_path / "model.skvae")
    assert type(loaded) is estimator_class
    assert_same_outputs(estimator, loaded, X)
    for attribute in ("n_iter_", "loss_curve_", "best_loss_", "validation_scores_",
                      "best_validation_score_", "likelihood_", "image_shape_",
                      "n_components_", "n_features_in_", "device_"):
        assert getattr(loaded, attribute) == getattr(estimator, attribute), attribute
    for key, value in estimator.get_params().items():
        if isinstance(value, np.random.RandomState):
            assert str(loaded.get_params()[key].get_state()) == str(value.get_state())
        elif isinstance(value, np.ndarray):
            np.testing.assert_array_equal(loaded.get_params()[key], value)
        else:
            np.testing.assert_equal(loaded.get_params()[key], value, err_msg=key)
            assert type(loaded.get_params()[key]) is type(value), key
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


@pytest.mark.parametrize("name, estimator_class", ESTIMATOR_CLASSES)
def test_save_after_set_params_writes_the_model_that_was_fitted(
    name, estimator_class, X, tmp_path
):
    estimator = fit_small(estimator_class, X, n_components=2)
    expected = outputs(estimator, X)
    new_params = dict(n_components=5, activation="tanh", hidden_layer_sizes=(3, 3),
                      architecture="conv", likelihood="bernoulli")
    estimator.set_params(**new_params)
    save(estimator, tmp_path / "model.skvae")
    for restored in (load(tmp_path / "model.skvae"), pickle.loads(pickle.dumps(estimator))):
        for method, value in outputs(restored, X).items():
            np.testing.assert_array_equal(value, expected[method], err_msg=method)
        assert restored.n_components_ == 2
        # The parameters are the ones set, as for any scikit-learn estimator.
        assert {k: restored.get_params()[k] for k in new_params} == new_params
        if hasattr(restored, "transform"):
            assert len(restored.get_feature_names_out()) == restored.transform(X).shape[1]


@pytest.mark.parametrize("device", ["cuda:0", "cuda:7", "mps", "xpu:1", "hpu"])
def test_models_fitted_on_a_device_this_machine_lacks_load_on_the_cpu(
    device, model_file, X, tmp_path
):
    content, weights = read_model_file(model_file)
    if torch.device(device).type == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the model would load there")
    content["fitted"]["device"] = device
    write_model_file(tmp_path / "gpu.skvae", content, weights)
    loaded = load(tmp_path / "gpu.skvae")
    assert loaded.device_ == torch.device(device)  # where it was fitted
    assert all(p.device.type == "cpu" for p in loaded.module_.parameters())
    assert_same_outputs(load(model_file), loaded, X)


def test_load_leaves_global_random_state_alone(model_file):
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()
    load(model_file)
    assert torch.equal(torch.get_rng_state(), torch_state)
    after = np.random.get_state()
    assert all(np.array_equal(a, b) for a, b in zip(after, numpy_state))


# ------------------------------------------------------- files that run code


class _WritesMarker:
    """Unpickling this runs ``open(marker, "w")``: a stand-in for arbitrary code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_files_crafted_to_run_code_are_refused_and_run_nothing(X, tmp_path):
    marker = tmp_path / "pwned"
    pickle.loads(pickle.dumps(_WritesMarker(marker))).close()  # the payload works
    assert marker.exists()
    marker.unlink()
    with open(tmp_path / "plain.pkl", "wb") as file:
        pickle.dump(_WritesMarker(marker), file)
    torch.save({"x": _WritesMarker(marker)}, tmp_path / "torch.pt")
    torch.save(fit_small(skvae.VAETransformer, X), tmp_path / "estimator.pt")
    expected = {"plain.pkl": "is a pickle", "torch.pt": "zip archive.*torch.save",
                "estimator.pt": "zip archive"}
    for name, message in expected.items():
        with pytest.raises(ModelFileError, match=f"{name}.*{message}"):
            load(tmp_path / name)
        assert not marker.exists(), name


# -------------------------------------------------- other kinds of file


def test_files_of_other_kinds_get_a_message_that_fits(tmp_path):
    cases = {
        "empty.skvae": (b"", "is empty"),
        "text.skvae": (b"hello world, not a model", "not a safetensors file"),
        "json.skvae": (b'{"format": "skvae"}', "JSON or text file"),
        "random.skvae": (np.random.RandomState(0).bytes(5000), "not a safetensors file"),
        "weights.safetensors": (
            safetensors_bytes({"weight": torch.zeros(3)}), "without skvae's metadata"
        ),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ModelFileError, match=f"{name}.*{message}"):
            load(tmp_path / name)
    with zipfile.ZipFile(tmp_path / "zip.skvae", "w") as archive:
        archive.writestr("data.pkl", b"not a pickle")
    with pytest.raises(ModelFileError, match="zip archive"):
        load(tmp_path / "zip.skvae")
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.skvae")


def test_truncated_files_get_a_clear_error(model_file, tmp_path):
    data = model_file.read_bytes()
    for length in (1, 7, 8, 100, len(data) // 2, len(data) - 1):
        (tmp_path / "cut.skvae").write_bytes(data[:length])
        with pytest.raises(ModelFileError, match="cut.skvae"):
            load(tmp_path / "cut.skvae")


def test_corrupted_files_never_load_a_different_model(X, model_file, tmp_path):
    reference = load(model_file)
    data = bytearray(model_file.read_bytes())
    rng = np.random.RandomState(0)
    for position in rng.choice(len(data), size=60, replace=False):
        corrupted = bytearray(data)
        corrupted[position] ^= 0xFF
        (tmp_path / "bad.skvae").write_bytes(bytes(corrupted))
        try:
            loaded = load(tmp_path / "bad.skvae")
        except ModelFileError:
            continue
        # Only padding may change without an error; the model must be intact.
        assert_same_outputs(reference, loaded, X)


def test_a_conv_file_from_before_decoder_layouts_loads_and_gives_its_outputs():
    content, weights = read_model_file(OLD_CONV_FILE)
    assert "conv_decoder" not in content["fitted"]["network"]
    loaded = load(OLD_CONV_FILE)
    assert loaded._model.spec.conv_decoder == "full_resolution"
    # Written before schedules: a refit trains at the constant rate it was fitted with.
    assert "learning_rate" not in content["params"] and loaded.learning_rate == "constant"
    assert "decoder.deconvolutions.4.weight" in weights  # its stride-1 last layer
    X = np.random.RandomState(0).uniform(size=(40, 36))
    expected = np.load(OLD_CONV_FILE.with_suffix(".npz"))
    Z = loaded.transform(X)
    got = {"score_samples": loaded.score_samples(X), "transform": Z,
           "inverse_transform": loaded.inverse_transform(Z),
           "sample": loaded.sample(5, random_state=1)}
    # The outputs were recorded on another machine (an Intel CPU; this test also
    # runs on AMD ones), where oneDNN and MKL pick other kernels whose float32
    # sums differ in the last bits: equal within float32 rounding. The other
    # decoder layout would differ in every digit.
    for name, values in got.items():
        np.testing.assert_allclose(values, expected[name], rtol=1e-5, atol=1e-6,
                                   err_msg=name)


def test_a_new_conv_file_names_its_decoder_layout_and_round_trips(X, tmp_path):
    conv = {"architecture": "conv", "image_shape": (1, 2, 2), "conv_channels": (2,),
            "conv_dense_width": 4}
    estimator = fit_small(skvae.VAETransformer, X, **conv)
    save(estimator, tmp_path / "conv.skvae")
    content, weights = read_model_file(tmp_path / "conv.skvae")
    assert content["fitted"]["network"]["conv_decoder"] == "mirror"
    assert load(tmp_path / "conv.skvae")._model.spec == estimator._model.spec
    # A dense file's document is that of before: no layout entry.
    save(fit_small(skvae.VAETransformer, X), tmp_path / "dense.skvae")
    assert "conv_decoder" not in read_model_file(tmp_path / "dense.skvae")[0]["fitted"][
        "network"]
    for name, change in [("unknown", {"conv_decoder": "keras"}),
                         ("dense", {"architecture": "dense", "conv_channels": [],
                                    "conv_dense_width": None, "hidden_layer_sizes": [8]}),
                         ("legacy-weights", {"conv_decoder": "full_resolution"})]:
        changed = {**content, "fitted": {**content["fitted"], "network": {
            **content["fitted"]["network"], **change}}}
        write_model_file(tmp_path / f"{name}.skvae", changed, weights)
        with pytest.raises(ModelFileError, match=f"{name}.skvae.*(conv_decoder|weights)"):
            load(tmp_path / f"{name}.skvae")


def test_tampered_weights_or_document_fail_the_checksum(model_file, tmp_path):
    content, weights = read_model_file(model_file)
    key = next(iter(weights))
    changed = {**weights, key: weights[key] + 1.0}
    write_model_file(tmp_path / "weights.skvae", content, changed, checksum=False)
    content["fitted"]["offset"] += 1.0
    write_model_file(tmp_path / "document.skvae", content, weights, checksum=False)
    for name in ("weights.skvae", "document.skvae"):
        with pytest.raises(ModelFileError, match=f"{name}.*checksum"):
            load(tmp_path / name)


# ------------------------------------------- costs bounded by the file's size


def _assert_refused_quickly(path, message):
    start = time.perf_counter()
    with pytest.raises(ModelFileError, match=message):
        load(path)
    assert time.perf_counter() - start < 2.0


def test_crafted_headers_cost_nothing_before_they_are_refused(model_file, tmp_path):
    data = model_file.read_bytes()
    (header_size,) = struct.unpack("<Q", data[:8])
    cases = {
        # A header that claims to be far larger than the file.
        "huge-header.skvae": struct.pack("<Q", 2**62) + data[8:],
        # A tensor declared with 10^12 values backed by a few bytes.
        "huge-tensor.skvae": struct.pack("<Q", 78) + json.dumps(
            {"w": {"dtype": "F32", "shape": [1000000, 1000000], "data_offsets": [0, 8]}}
        ).encode().ljust(78) + b"\0" * 8,
        # Two tensors sharing one stretch of bytes (aliasing, as stride-0 views do).
        "overlapping.skvae": struct.pack("<Q", 120) + json.dumps(
            {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
             "b": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
        ).encode().ljust(120) + b"\0" * 8,
    }
    assert header_size < len(data)
    for name, crafted in cases.items():
        (tmp_path / name).write_bytes(crafted)
        _assert_refused_quickly(
            tmp_path / name, f"{name}.*(not a safetensors file|corrupted safetensors file)"
        )


@pytest.mark.parametrize(
    "network_change",
    [
        {"hidden_layer_sizes": [10**9]},
        {"n_components": 10**9},
        {"hidden_layer_sizes": [8] * 100_000},
        {"architecture": "conv", "hidden_layer_sizes": [], "conv_channels": [10**9],
         "conv_dense_width": 10**9, "image_shape": [1, 1, 4]},
        {"hidden_layer_sizes": [10**30]},
        {"n_components": 10**30},
        {"n_features": 10**30, "image_shape": [1, 1, 10**30]},
        {"architecture": "conv", "hidden_layer_sizes": [], "conv_channels": [2],
         "conv_dense_width": 10**30, "image_shape": [1, 1, 4]},
        {"architecture": "conv", "hidden_layer_sizes": [], "conv_channels": [10**30],
         "conv_dense_width": 2, "image_shape": [1, 1, 4]},
    ],
    ids=["wide", "latent", "deep", "conv", "wider-than-int64", "latent-beyond-int64",
         "features-beyond-int64", "conv-dense-beyond-int64", "channels-beyond-int64"],
)
def test_a_huge_declared_network_is_refused_before_anything_is_allocated(
    model_file, tmp_path, network_change
):
    content, weights = read_model_file(model_file)
    content["fitted"]["network"].update(network_change)
    write_model_file(tmp_path / "huge.skvae", content, weights)
    _assert_refused_quickly(tmp_path / "huge.skvae", "huge.skvae.*(weight|layers|network)")


def _safetensors_with_empty_tensors(content, weights, n_empty):
    """A valid model file (checksum included) padded with ``n_empty`` zero-element tensors.

    Their entries are added to the header by hand: safetensors takes seconds to
    write 100,000 tensors.
    """
    document = json.dumps(content)
    empty = torch.zeros(0)
    padded = {**weights, **{f"pad.{i}": empty for i in range(n_empty)}}
    data = safetensors_bytes(weights, metadata={
        "skvae": document, "skvae.sha256": _checksum(document, padded)})
    (header_size,) = struct.unpack("<Q", data[:8])
    header, body = json.loads(data[8 : 8 + header_size]), data[8 + header_size :]
    for i in range(n_empty):
        header[f"pad.{i}"] = {"dtype": "F32", "shape": [0],
                              "data_offsets": [len(body), len(body)]}
    header = json.dumps(header).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + body


def test_a_deep_network_padded_with_empty_tensors_is_refused_fast(model_file, tmp_path):
    # One-unit layers, and enough zero-element tensors that a count of tensors
    # cannot tell the file from that network's: at 50,000 layers (6 MB), half a
    # minute and 600 MB to refuse before; 10,000 took 6 s.
    content, weights = read_model_file(model_file)
    content["fitted"]["network"]["hidden_layer_sizes"] = [1] * 10_000
    crafted = tmp_path / "padded.skvae"
    crafted.write_bytes(_safetensors_with_empty_tensors(content, weights, 20_010))
    _assert_refused_quickly(crafted, "padded.skvae.*declares 20019 tensors")


@pytest.mark.parametrize(
    "network_change, n_empty, message",
    [
        ({"hidden_layer_sizes": [1] * 200}, 800, "weights do not match the network"),
        ({"hidden_layer_sizes": [8, 8]}, 4, "weights do not match the network"),
        ({"hidden_layer_sizes": [9]}, 0, "shape"),
        ({"n_components": 3}, 0, "shape"),
        ({"hidden_layer_sizes": [1] * 257}, 1024, "257 layers"),
    ],
    ids=["deep-padded", "extra-layer-padded", "wider", "latent", "too-deep"],
)
def test_weights_are_checked_against_the_declared_network_before_it_is_built(
    model_file, tmp_path, monkeypatch, network_change, n_empty, message
):
    content, weights = read_model_file(model_file)
    content["fitted"]["network"].update(network_change)
    crafted = tmp_path / "crafted.skvae"
    crafted.write_bytes(_safetensors_with_empty_tensors(content, weights, n_empty))

    def build(spec):
        raise AssertionError("a network the weights do not describe was built")

    monkeypatch.setattr(skvae._networks.NetworkSpec, "build", build)
    with pytest.raises(ModelFileError, match=f"crafted.skvae.*{message}"):
        load(crafted)


def test_a_network_with_the_most_layers_fits_the_tensor_bound():
    from skvae._networks import MAX_LAYERS, MAX_WEIGHT_TENSORS, NetworkSpec

    deep = [1] * MAX_LAYERS
    specs = [
        NetworkSpec("dense", 4, 2, "gaussian", "relu", tuple(deep), (1, 1, 4), (), None),
        NetworkSpec("dense", 4, 2, "mixed", "relu", tuple(deep), (1, 1, 4), (), None,
                    (1, 1, 2), True),
        NetworkSpec("conv", 4, 2, "gaussian", "relu", (), (1, 2, 2), tuple(deep), 3),
        NetworkSpec("conv", 4, 2, "mixed", "relu", (), (1, 2, 2), tuple(deep), 3, (3, 1)),
    ]
    assert max(len(spec.weight_shapes()) for spec in specs) == MAX_WEIGHT_TENSORS


# ---------------------------------------------- what a refused file seems to be


def _model_file_with_header_size(content, weights, low_bytes):
    """Model file bytes whose header length starts with the bytes ``low_bytes``.

    The document is padded with trailing spaces (still the same JSON, and the
    checksum covers it) until the header length has those low bytes.
    """
    for padding in range(0, 1 << (8 * len(low_bytes) + 4), 1):
        document = json.dumps(content) + " " * padding
        data = safetensors_bytes(weights, metadata={
            "skvae": document, "skvae.sha256": _checksum(document, weights)})
        if data[: len(low_bytes)] == low_bytes:
            return data
    raise AssertionError(f"no padding gives a header length starting {low_bytes!r}")


@pytest.mark.parametrize("low_bytes", [b"", b"\x80"], ids=["any", "0x80"])
def test_truncated_model_files_are_called_truncated_at_every_length(
    model_file, tmp_path, low_bytes
):
    # A header length whose first byte is 0x80, the pickle protocol opcode,
    # about 1 in 32 files, was reported as a pickle.
    content, weights = read_model_file(model_file)
    data = _model_file_with_header_size(content, weights, low_bytes)
    assert load_bytes(data, tmp_path / "whole.skvae").n_features_in_ == 4
    (header_size,) = struct.unpack("<Q", data[:8])
    lengths = set(range(1, 40)) | set(range(8 + header_size - 20, 8 + header_size + 20))
    lengths |= set(np.linspace(1, len(data) - 1, 60).astype(int).tolist())
    for length in sorted(lengths):
        with pytest.raises(ModelFileError) as error:
            load_bytes(data[:length], tmp_path / "cut.skvae")
        message = str(error.value)
        assert "truncated" in message and "pickle" not in message, (length, message)


def load_bytes(data, path):
    path.write_bytes(data)
    return load(path)


def test_a_short_safetensors_header_starting_like_a_pickle_is_not_called_one(tmp_path):
    # Header lengths 0x380 and 0x480 start with the bytes of pickle protocols 3 and 4.
    for header_size in (0x380, 0x480, 0x280):
        header = json.dumps({"__metadata__": {"note": "x"}}).encode().ljust(header_size)
        data = struct.pack("<Q", header_size) + header
        with pytest.raises(ModelFileError) as error:
            load_bytes(data[: header_size // 2], tmp_path / "cut.skvae")
        assert "truncated safetensors" in str(error.value)
        assert "pickle" not in str(error.value)


def test_pickles_of_every_protocol_and_joblib_files_are_called_pickles(tmp_path):
    import joblib

    objects = [None, {"weights": [1.0, 2.0]}, list(range(100)), np.arange(10.0)]
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        for obj in objects:
            data = pickle.dumps(obj, protocol=protocol)
            for length in (len(data), max(len(data) // 2, 24)):
                if length > len(data):
                    continue
                with pytest.raises(ModelFileError, match="a pickle"):
                    load_bytes(data[:length], tmp_path / "model.pkl")
    joblib.dump({"array": np.arange(1000.0), "name": "model"}, tmp_path / "model.joblib")
    with pytest.raises(ModelFileError, match="a pickle"):
        load(tmp_path / "model.joblib")


@pytest.mark.parametrize(
    "document",
    ["[" * 200_000 + "]" * 200_000, '{"a": ' * 50_000 + "1" + "}" * 50_000,
     '{"format": "skvae", "format_version": 2, "x": ' + "9" * 100_000 + "}",
     "not json"],
    ids=["deep-list", "deep-dict", "huge-int", "text"],
)
def test_crafted_metadata_is_refused_quickly(model_file, tmp_path, document):
    _, weights = read_model_file(model_file)
    write_model_file(tmp_path / "crafted.skvae", None, weights, document=document)
    _assert_refused_quickly(tmp_path / "crafted.skvae", "crafted.skvae")


# ------------------------------------- every entry of the document is checked


def _set(path_keys, value):
    def change(content):
        target = content
        for key in path_keys[:-1]:
            target = target[key]
        target[path_keys[-1]] = value
    return change


def _delete(path_keys):
    def change(content):
        target = content
        for key in path_keys[:-1]:
            target = target[key]
        del target[path_keys[-1]]
    return change


BAD_DOCUMENTS = {
    "old version": (_set(["format_version"], 3), "format version 3.*reads version 4"),
    "newer version": (_set(["format_version"], 5), "format version 5"),
    "other format": (_set(["format"], "other"), "no 'format': 'skvae'"),
    "foreign estimator": (_set(["estimator"], "os.system"), "not one of skvae's"),
    "base class": (_set(["estimator"], "BaseVAE"), "not one of skvae's"),
    "estimator not a name": (_set(["estimator"], ["x"]), "not one of skvae's"),
    "extra entry": (_set(["extra"], 1), "entries"),
    "missing params": (_set(["params"], {"n_components": 2}), "parameters"),
    "invalid param": (_set(["params", "n_components"], -1), "invalid parameters"),
    "param of a strange type": (_set(["params", "tol"], {"pickle": "x"}), "invalid param"),
    "bool for an int": (_set(["fitted", "n_features_in"], True), "positive integer"),
    "extra fitted entry": (_set(["fitted", "evil"], 1), "fitted state"),
    "missing fitted entry": (_delete(["fitted", "noise_seed"]), "fitted state"),
    "zero scale": (_set(["fitted", "data_space", "scale"], [0.0] * 4), "not positive"),
    "nan shift": (_set(["fitted", "data_space", "shift"], [float("nan")] * 4), "NaN"),
    "short scale": (_set(["fitted", "data_space", "scale"], [1.0] * 3), "not 4 numbers"),
    "unknown likelihood": (_set(["fitted", "data_space", "kinds"], ["poisson"] * 4),
                           "column kinds"),
    "bernoulli with scaling": (_set(["fitted", "data_space", "kinds"], ["bernoulli"] * 4),
                               "scaling"),
    "levels without categories": (_set(["fitted", "data_space", "levels"], [3, 0, 0, 0]),
                                  "levels"),
    "categories without levels": (
        _set(["fitted", "table_schema", "categories"], [["a", "b"], None, None, None]),
        "categories but no dtypes"),
    "unknown dtype": (_set(["fitted", "table_schema", "dtypes"], ["datetime64"] * 4),
                      "dtypes"),
    "dtype unfit for numbers": (_set(["fitted", "table_schema", "dtypes"], ["bool"] * 4),
                                "does not fit"),
    "repeated columns": (_set(["fitted", "table_schema", "columns"], ["a", "a", "b", "c"]),
                         "repeats"),
    "n_features mismatch": (_set(["fitted", "n_features_in"], 5), "5 columns"),
    "n_features not int": (_set(["fitted", "n_features_in"], 4.0), "positive integer"),
    "feature names": (_set(["fitted", "feature_names_in"], ["a"]), "4 strings"),
    "negative seed": (_set(["fitted", "noise_seed"], -1), "noise_seed"),
    "huge seed": (_set(["fitted", "noise_seed"], 2**70), "noise_seed"),
    "float seed": (_set(["fitted", "noise_seed"], 1.5), "noise_seed"),
    "meta device": (_set(["fitted", "device"], "meta"), "meta"),
    "no such device": (_set(["fitted", "device"], "warp-drive:9"), "no torch device"),
    "device not a string": (_set(["fitted", "device"], 0), "not a string"),
    "nan offset": (_set(["fitted", "offset"], float("nan")), "offset"),
    "infinite offset": (_set(["fitted", "offset"], float("inf")), "offset"),
    "string offset": (_set(["fitted", "offset"], "0"), "offset"),
    "nan loss": (_set(["fitted", "loss_curve"], [1.0, float("nan")]), "loss_curve"),
    "loss not a list": (_set(["fitted", "loss_curve"], "x"), "loss_curve"),
    "unknown activation": (_set(["fitted", "network", "activation"], "eval"), "not known"),
    "bad image shape": (_set(["fitted", "network", "image_shape"], [1, 2, 3]),
                        "image_shape"),
    "network of other data": (_set(["fitted", "network", "likelihood"], "bernoulli"),
                              "does not match"),
    "device param": (_set(["params", "device"], {"torch.device": "nonsense"}), "device"),
    "huge int array param": (_set(["params", "random_state"],
                                  {"ndarray": {"dtype": "<i8", "values": [10**30]}}),
                             "invalid parameters"),
    "huge RandomState": (_set(["params", "random_state"],
                              {"RandomState": ["MT19937", [0] * 624, 10**30, 0, 0.0]}),
                         "invalid parameters"),
    "deeply nested param": (_set(["params", "hidden_layer_sizes"],
                                 json.loads("[" * 800 + "]" * 800)), "invalid parameters"),
    "shift beyond float64": (_set(["fitted", "data_space", "shift"], [10**400] * 4),
                             "beyond float64"),
    "loss beyond float64": (_set(["fitted", "loss_curve"], [10**400]), "too large"),
    "offset beyond float64": (_set(["fitted", "offset"], 10**400), "too large"),
    "offset score unknown": (_set(["fitted", "anomaly_score"], "eval"), "anomaly_score"),
    "offset draws": (_set(["fitted", "n_importance_samples"], 10**12), "n_importance_samples"),
    "too many draws": (_set(["params", "n_importance_samples"], 10**12), "invalid param"),
}


@pytest.mark.parametrize("case", list(BAD_DOCUMENTS))
def test_every_bad_entry_is_refused_with_a_message_naming_it(model_file, tmp_path, case):
    change, message = BAD_DOCUMENTS[case]
    content, weights = read_model_file(model_file)
    change(content)
    write_model_file(tmp_path / "changed.skvae", content, weights)
    with pytest.raises(ModelFileError, match=f"changed.skvae.*{message}"):
        load(tmp_path / "changed.skvae")


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda w, k: w.pop(k), "missing"),
        (lambda w, k: w.update(extra=torch.zeros(1)), "unexpected"),
        (lambda w, k: w.update({k: w[k][:1]}), "shape"),
        (lambda w, k: w.update({k: w[k].double()}), "float64"),
        (lambda w, k: w.update({k: torch.full_like(w[k], float("nan"))}), "NaN"),
        (lambda w, k: w.update({k: torch.full_like(w[k], float("inf"))}), "NaN or inf"),
        (lambda w, k: w.update({n: v * 1e30 for n, v in w.items()}), "NaN or infinite"),
    ],
    ids=["missing", "extra", "shape", "dtype", "nan", "inf", "huge"],
)
def test_weights_that_do_not_fit_the_network_are_refused(model_file, tmp_path, change,
                                                         message):
    content, weights = read_model_file(model_file)
    weights = dict(weights)
    change(weights, sorted(weights)[0])
    write_model_file(tmp_path / "changed.skvae", content, weights)
    with pytest.raises(ModelFileError, match=f"changed.skvae.*{message}"):
        load(tmp_path / "changed.skvae")


# ------------------------------------------------------------------- saving


def test_save_refuses_unfitted_and_foreign_estimators(tmp_path):
    from sklearn.decomposition import PCA

    with pytest.raises(NotFittedError):
        save(skvae.VAETransformer(), tmp_path / "unfitted.skvae")
    with pytest.raises(TypeError, match="not PCA"):
        save(PCA().fit(np.eye(3)), tmp_path / "pca.skvae")
    assert not os.listdir(tmp_path)


def test_save_refuses_parameters_that_are_not_plain_data(X, tmp_path):
    estimator = fit_small(skvae.VAETransformer, X)
    estimator.set_params(hidden_layer_sizes=object())
    with pytest.raises(TypeError, match="hidden_layer_sizes"):
        save(estimator, tmp_path / "model.skvae")
    assert not os.listdir(tmp_path)


def _fail_on(monkeypatch, name, error):
    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(skvae._persistence.os, name, fail)


@pytest.mark.parametrize(
    "where, error, raised",
    [
        ("fsync", OSError(errno.ENOSPC, "No space left on device"), "no space left"),
        ("fsync", OSError(errno.EIO, "I/O error"), "I/O error"),
        ("replace", KeyboardInterrupt(), None),
    ],
    ids=["full-disk", "io-error", "interrupt"],
)
def test_a_failed_save_leaves_the_old_file_intact(X, tmp_path, monkeypatch, where, error,
                                                  raised):
    save(fit_small(skvae.VAETransformer, X), tmp_path / "model.skvae")
    before = (tmp_path / "model.skvae").read_bytes()
    _fail_on(monkeypatch, where, error)
    with pytest.raises(type(error), match=raised) as info:
        save(fit_small(skvae.VAETransformer, X, random_state=1), tmp_path / "model.skvae")
    if raised == "no space left":
        assert "model.skvae" in str(info.value) and info.value.errno == errno.ENOSPC
    assert (tmp_path / "model.skvae").read_bytes() == before
    assert os.listdir(tmp_path) == ["model.skvae"]


# ------------------------------------------- the file after load, paths, modes


def test_a_loaded_model_owns_its_weights_whatever_happens_to_the_file(X, model_file):
    loaded = load(model_file)
    expected = loaded.score_samples(X)
    model_file.write_bytes(b"")  # truncated in place: a memory map would crash
    np.testing.assert_array_equal(loaded.score_samples(X), expected)


def test_save_keeps_the_file_mode_and_follows_links(X, tmp_path):
    estimator = fit_small(skvae.VAETransformer, X)
    umask = os.umask(0o022)
    try:
        save(estimator, tmp_path / "new.skvae")
    finally:
        os.umask(umask)
    assert os.stat(tmp_path / "new.skvae").st_mode & 0o777 == 0o644
    os.chmod(tmp_path / "new.skvae", 0o640)
    save(estimator, tmp_path / "new.skvae")
    assert os.stat(tmp_path / "new.skvae").st_mode & 0o777 == 0o640
    os.symlink(tmp_path / "new.skvae", tmp_path / "link.skvae")
    save(fit_small(skvae.VAETransformer, X, random_state=1), tmp_path / "link.skvae")
    assert os.path.islink(tmp_path / "link.skvae")
    assert load(tmp_path / "new.skvae").random_state == 1


def test_paths_as_bytes_and_bad_paths(X, tmp_path):
    estimator = fit_small(skvae.VAETransformer, X)
    path = os.fsencode(tmp_path / "bytes.skvae")
    save(estimator, path)
    assert_same_outputs(estimator, load(path), X)
    with pytest.raises(ValueError, match="empty"):
        save(estimator, "")
    with pytest.raises(OSError, match="Cannot save the model") as info:
        save(estimator, tmp_path / "no-such-folder" / "model.skvae")
    assert info.value.filename == str(tmp_path / "no-such-folder" / "model.skvae")
    with pytest.raises(ModelFileError, match="not a regular file"):
        load(tmp_path)


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    os.mkfifo(tmp_path / "pipe.skvae")
    _assert_refused_quickly(tmp_path / "pipe.skvae", "not a regular file")


def test_save_refuses_parameters_that_load_would_refuse(X, tmp_path):
    estimator = fit_small(skvae.VAETransformer, X)
    estimator.set_params(hidden_layer_sizes=8)  # not a sequence
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        save(estimator, tmp_path / "model.skvae")
    assert not os.listdir(tmp_path)


def test_the_detector_keeps_the_score_its_threshold_was_set_on(X, tmp_path):
    detector = fit_small(skvae.VAEOutlierDetector, X)
    expected = detector.predict(X), detector.decision_function(X)
    detector.set_params(anomaly_score="latent", n_importance_samples=3)
    save(detector, tmp_path / "model.skvae")
    for restored in (detector, load(tmp_path / "model.skvae")):
        np.testing.assert_array_equal(restored.predict(X), expected[0])
        np.testing.assert_array_equal(restored.decision_function(X), expected[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning, and latent's warning
        refitted = fit_small(skvae.VAEOutlierDetector, X, anomaly_score="latent")
        detector.fit(X)
    np.testing.assert_array_equal(detector.score_samples(X), refitted.score_samples(X))


def test_the_largest_allowed_number_of_draws_does_not_make_loading_costly(tmp_path):
    X = np.random.RandomState(0).normal(size=(50, 3))
    wide_latent = fit_small(skvae.VAETransformer, X, hidden_layer_sizes=(1,),
                            n_components=400, max_iter=1)
    save(wide_latent, tmp_path / "model.skvae")
    content, weights = read_model_file(tmp_path / "model.skvae")
    content["params"]["n_importance_samples"] = 2**20  # allowed: a user's choice
    write_model_file(tmp_path / "many.skvae", content, weights)
    start = time.perf_counter()
    loaded = load(tmp_path / "many.skvae")
    # It took 55 s and 10 GB before; about 1 s on a quiet core, up to 3 s on two
    # busy ones: the bound tells the two apart on a loaded machine too.
    assert time.perf_counter() - start < 10.0
    assert loaded.n_importance_samples == 2**20
