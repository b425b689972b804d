"""Network sizes are bounded to what can be built, checked by arithmetic, not by torch."""

import json
import time
import warnings

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save as safetensors_bytes
from sklearn.exceptions import ConvergenceWarning

import skvae
from skvae._networks import CONV_DECODERS, MAX_LAYERS, MAX_WEIGHTS, NetworkSpec
from skvae._persistence import _checksum, _estimator_classes

ESTIMATOR_CLASSES = [cls for _, cls in sorted(_estimator_classes().items())]


@pytest.fixture(scope="module")
def X():
    return np.random.RandomState(0).normal(size=(30, 4))


def fit_quietly(estimator, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X)


HUGE_PARAMS = {
    "n_components": ({"n_components": 10**30}, "n_components"),
    "layer beyond int64": ({"hidden_layer_sizes": (8, 10**30)}, "hidden_layer_sizes"),
    "too many layers": ({"hidden_layer_sizes": (1,) * (MAX_LAYERS + 1)},
                        "hidden_layer_sizes has 257 layers"),
    "conv dense width": ({"architecture": "conv", "conv_dense_width": 10**30},
                         "conv_dense_width"),
    "conv channels": ({"architecture": "conv", "conv_channels": (10**30,)},
                      "conv_channels"),
    "too many conv layers": ({"architecture": "conv", "conv_channels": (1,) * 300},
                             "conv_channels has 300 layers"),
    # Each size within int64, the network far beyond memory: refused, not allocated.
    "too many weights": ({"n_components": 10**9}, r"would have [0-9,]{14,} weights"),
    "wide layers": ({"hidden_layer_sizes": (2**20, 2**20)}, "weights"),
}


@pytest.mark.parametrize("estimator_class", ESTIMATOR_CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("case", list(HUGE_PARAMS))
def test_sizes_beyond_what_can_be_built_are_refused_naming_the_parameter(
    estimator_class, case, X
):
    params, message = HUGE_PARAMS[case]
    estimator = estimator_class(max_iter=2, random_state=0, device="cpu", **params)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=message):
        fit_quietly(estimator, X)
    assert time.perf_counter() - start < 2.0
    assert not hasattr(estimator, "module_")


def test_a_refit_of_a_loaded_model_with_huge_parameters_is_refused_clearly(X, tmp_path):
    # A file's parameters that describe an unbuildable network: refused when
    # loaded (once the parameter constraints bound them) or when refitted,
    # never torch's "Overflow when unpacking long".
    path = tmp_path / "model.skvae"
    skvae.save(fit_quietly(skvae.VAETransformer(hidden_layer_sizes=(8,), max_iter=2,
                                                random_state=0), X), path)
    with safe_open(path, framework="pt") as file:
        content = json.loads(file.metadata()["skvae"])
        weights = {name: file.get_tensor(name) for name in file.keys()}
    content["params"]["n_components"] = 10**30
    document = json.dumps(content)
    path.write_bytes(safetensors_bytes(weights, metadata={
        "skvae": document, "skvae.sha256": _checksum(document, weights)}))
    with pytest.raises(ValueError, match="n_components"):
        fit_quietly(skvae.load(path), X)


def test_the_largest_sizes_within_the_bounds_are_accepted():
    spec = NetworkSpec.from_params(
        {"hidden_layer_sizes": (1,) * MAX_LAYERS, "architecture": "dense",
         "conv_channels": (1,) * MAX_LAYERS, "n_components": 2, "activation": "relu",
         "image_shape": None, "conv_dense_width": 1},
        4, "gaussian",
    )
    assert len(spec.hidden_layer_sizes) == MAX_LAYERS
    # The widest layer that keeps the network within MAX_WEIGHTS: 16 weights a
    # unit (4 in, 4 to the head, 2 from the code, 4 out, and 2 biases), 12 more.
    width = (MAX_WEIGHTS - 12) // 16
    NetworkSpec("dense", 4, 2, "gaussian", "relu", (width,), (1, 1, 4), (), None).check_sizes()
    with pytest.raises(ValueError, match="weights"):
        NetworkSpec("dense", 4, 2, "gaussian", "relu", (width + 1,), (1, 1, 4), (),
                    None).check_sizes()


def _specs():
    for sizes in [(), (8,), (8, 3, 5)]:
        for likelihood, layout in [("gaussian", ()), ("bernoulli", ()),
                                   ("mixed", (1, 1, 2)), ("mixed", (0, 2, 2)),
                                   ("mixed", (4, 0))]:
            for mask in (False, True):
                yield NetworkSpec("dense", 4, 2, likelihood, "relu", sizes, (1, 1, 4), (),
                                  None, layout, mask)
    for shape in [(1, 3, 4), (2, 5, 7), (1, 1, 12), (3, 1, 1)]:
        n_features = int(np.prod(shape))
        for channels in [(5,), (5, 6), (2, 3, 4, 5)]:
            for likelihood, layout in [("gaussian", ()), ("bernoulli", ()),
                                       ("mixed", (n_features - 1, 1))]:
                for decoder in CONV_DECODERS:
                    yield NetworkSpec("conv", n_features, 3, likelihood, "relu", (), shape,
                                      channels, 7, layout, conv_decoder=decoder)


@pytest.mark.parametrize("spec", list(_specs()), ids=str)
def test_the_arithmetic_weight_shapes_are_those_of_the_built_network(spec):
    with torch.device("meta"):
        built = spec.build().state_dict()
    assert spec.weight_shapes() == {name: tuple(t.shape) for name, t in built.items()}


def test_auto_widths_follow_the_row_as_the_network_reads_it():
    import pandas as pd

    from skvae import VAETransformer
    from skvae._networks import AUTO_HIDDEN_LAYER_SIZES, WIDE_ROW

    rng = np.random.RandomState(0)

    def widths(X, **params):
        vae = VAETransformer(max_iter=1, random_state=0, **params).fit(X)
        return vae._model.spec.hidden_layer_sizes, vae

    assert widths(rng.uniform(size=(40, WIDE_ROW)))[0] == AUTO_HIDDEN_LAYER_SIZES["wide"]
    assert widths(rng.uniform(size=(40, WIDE_ROW - 1)))[0] == AUTO_HIDDEN_LAYER_SIZES["narrow"]
    # A categorical column counts once per level: 2 numeric columns and one of
    # WIDE_ROW levels are a wide row.
    frame = pd.DataFrame({"a": rng.normal(size=600), "b": rng.normal(size=600),
                          "c": pd.Categorical(np.arange(600) % WIDE_ROW)})
    sizes, vae = widths(frame)
    assert sizes == AUTO_HIDDEN_LAYER_SIZES["wide"]
    # The widths are the parameter's: continuing a fit with "auto" is no change.
    vae.set_params(warm_start=True).fit(frame)
    assert vae._model.spec.hidden_layer_sizes == sizes
    assert widths(rng.uniform(size=(40, 5)), hidden_layer_sizes=(7,))[0] == (7,)
