"""Fitting is a transaction: whatever stops ``fit``, and wherever, the estimator is
its previous fitted self, whole, or a new model whose parts all belong together.

An interrupt is injected at one line after another of skvae's own code during a
fit (``sys.settrace``), from input validation to the outlier threshold computed
after training; after each, the estimator is compared with the model before the
call and with the models a clean fit gives.
"""

import copy
import dataclasses
import sys
import warnings

import numpy as np
import pytest
import torch

import skvae
from skvae._data import DataSpace
from skvae._outlier import tukey_lower_fence
from skvae._persistence import _estimator_classes

ESTIMATOR_CLASSES = [cls for _, cls in sorted(_estimator_classes().items())]
SKVAE_DIR = skvae.__file__.rsplit("/", 1)[0]


def small(estimator_class, **params):
    defaults = dict(hidden_layer_sizes=(8,), max_iter=3, batch_size=20, random_state=0,
                    likelihood="gaussian", n_importance_samples=3, device="cpu")
    return estimator_class(**{**defaults, **params})


def fit_quietly(estimator, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimator.fit(X)


def model_parts(model):
    """The fitted model's parts other than its module (whose weights are compared)."""
    return tuple(copy.deepcopy(getattr(model, f.name)) for f in dataclasses.fields(model)
                 if f.name != "module")


def fingerprint(estimator):
    """Copies of the fitted state (weights and attributes), parameters left out."""
    params = estimator.get_params(deep=False)
    state = {k: v.detach().clone() for k, v in estimator.module_.state_dict().items()}
    rest = {k: copy.deepcopy(v) for k, v in vars(estimator).items()
            if k not in ("module_", "_model") and k not in params}
    rest["_model"] = model_parts(estimator._model)
    if "indicator_" in rest:  # an estimator: compared by what it learned
        rest["indicator_"] = vars(rest["indicator_"])
    return state, rest


def same_fingerprint(a, b):
    if a[0].keys() != b[0].keys() or a[1].keys() != b[1].keys():
        return False
    if not all(torch.equal(a[0][k], b[0][k]) for k in a[0]):
        return False
    try:
        for key in a[1]:
            np.testing.assert_equal(a[1][key], b[1][key])
    except AssertionError:
        return False
    return True


class _Interrupt:
    """A trace function that raises KeyboardInterrupt at the n-th line run in skvae."""

    def __init__(self, at_line=None):
        self.at_line, self.count = at_line, 0

    def __call__(self, frame, event, arg):
        if not frame.f_code.co_filename.startswith(SKVAE_DIR):
            return None
        if event == "line":
            self.count += 1
            if self.count == self.at_line:
                raise KeyboardInterrupt
        return self


def run_traced(function, tracer):
    sys.settrace(tracer)
    try:
        return function()
    finally:
        sys.settrace(None)


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    return rng.normal(size=(60, 4)) * [1, 2, 3, 4] + 3, rng.normal(size=(60, 4)) * 5 - 1


@pytest.mark.slow
@pytest.mark.parametrize("warm_start", [False, True], ids=["refit", "warm-start"])
@pytest.mark.parametrize("estimator_class", ESTIMATOR_CLASSES,
                         ids=[c.__name__ for c in ESTIMATOR_CLASSES])
def test_an_interrupt_anywhere_in_fit_leaves_the_old_model_or_a_consistent_new_one(
    estimator_class, warm_start, data
):
    X_old, X_new = data
    # A constant rate: the reference below stops at max_iter=epochs, and a
    # schedule's rates depend on max_iter.
    previous = fit_quietly(small(estimator_class, warm_start=warm_start,
                                 learning_rate="constant"), X_old)
    before = fingerprint(previous)
    new_params = {} if warm_start else {"random_state": 1, "n_components": 3}

    def refit(estimator):
        return lambda: fit_quietly(estimator.set_params(**new_params), X_new)

    counter = _Interrupt()
    run_traced(refit(copy.deepcopy(previous)), counter)
    n_lines = counter.count
    positions = sorted(set(np.linspace(1, n_lines, 30).astype(int))
                       | set(range(max(1, n_lines - 150), n_lines + 1, 4)))
    outcomes = {"previous": 0, "new": 0}
    for position in positions:
        estimator = copy.deepcopy(previous)
        try:
            run_traced(refit(estimator), _Interrupt(position))
        except KeyboardInterrupt:
            pass  # the interrupt escaped fit (not absorbed by the training loop)
        if same_fingerprint(fingerprint(estimator), before):
            outcomes["previous"] += 1
            continue
        # Otherwise a whole new model: every part of it from the new fit.
        outcomes["new"] += 1
        assert estimator.n_iter_ == len(estimator.loss_curve_)
        epochs = estimator.n_iter_ - (previous.n_iter_ if warm_start else 0)
        expected_space = previous._model.data_space if warm_start else DataSpace.fit(
            X_new, "gaussian", estimator_name="test")
        assert estimator._model.data_space == expected_space, position
        if epochs >= 1:
            reference = copy.deepcopy(previous).set_params(max_iter=epochs, **new_params)
            fit_quietly(reference, X_new)
            np.testing.assert_array_equal(estimator.encode(X_new), reference.encode(X_new))
        else:
            assert np.all(np.isfinite(estimator.score_samples(X_new)))
        if hasattr(estimator, "offset_"):
            assert estimator.offset_ == tukey_lower_fence(estimator.score_samples(X_new))
    # Both outcomes were reached: the sweep covered training and the code around it.
    assert outcomes["previous"] > 5 and outcomes["new"] > 5, outcomes


@pytest.mark.parametrize("estimator_class", ESTIMATOR_CLASSES,
                         ids=[c.__name__ for c in ESTIMATOR_CLASSES])
def test_an_error_after_training_keeps_the_previous_model(estimator_class, data,
                                                         monkeypatch):
    X_old, X_new = data
    estimator = fit_quietly(small(estimator_class), X_old)
    before = fingerprint(estimator)

    def fail(*args, **kwargs):
        raise MemoryError("no memory left for the threshold")

    monkeypatch.setattr(estimator_class, "_fit_extras", fail)
    with pytest.raises(MemoryError):
        fit_quietly(estimator.set_params(n_components=3), X_new)
    assert same_fingerprint(fingerprint(estimator), before)


def test_a_failed_first_fit_leaves_an_unfitted_estimator(data, monkeypatch):
    estimator = small(skvae.VAETransformer)
    monkeypatch.setattr(skvae.VAETransformer, "_fit_extras",
                        lambda self, model, X, warm, one_pass: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        fit_quietly(estimator, data[0])
    assert not any(key.endswith("_") and not key.startswith("__") for key in vars(estimator))


@pytest.mark.parametrize("estimator_class", ESTIMATOR_CLASSES,
                         ids=[c.__name__ for c in ESTIMATOR_CLASSES])
@pytest.mark.parametrize(
    "change",
    [{"n_components": 3}, {"hidden_layer_sizes": (4,)}, {"activation": "tanh"},
     {"architecture": "conv"}, {"likelihood": "bernoulli"}],
    ids=["n_components", "widths", "activation", "architecture", "likelihood"],
)
def test_warm_start_with_a_network_changing_parameter_is_a_clear_error(
    estimator_class, change, data
):
    X = data[0]
    estimator = fit_quietly(small(estimator_class, warm_start=True), X)
    before = fingerprint(estimator)
    estimator.set_params(**change)
    (name,) = change
    with pytest.raises(ValueError, match=f"warm_start=True.*{name}.*warm_start=False"):
        estimator.fit(X)
    assert same_fingerprint(fingerprint(estimator), before)
    restored = {k: v for k, v in small(estimator_class).get_params().items() if k in change}
    estimator.set_params(**restored)
    # Parameters that do not shape the network may change between warm starts.
    fit_quietly(estimator.set_params(learning_rate_init=1e-4, beta=0.5, n_training_samples=1,
                                     max_iter=1), X)
    assert estimator.n_iter_ == 4


def test_set_params_after_fit_keeps_transform_and_feature_names_in_agreement(data):
    X = data[0]
    vae = fit_quietly(small(skvae.VAETransformer, n_components=2), X)
    vae.set_params(n_components=5)
    assert vae.transform(X).shape[1] == 2 == len(vae.get_feature_names_out())
    fit_quietly(vae, X)
    assert vae.transform(X).shape[1] == 5 == len(vae.get_feature_names_out())


def test_a_warm_start_with_early_stopping_keeps_what_it_learns():
    rng = np.random.RandomState(0)
    X_old, X_new = 0.1 * rng.normal(size=(300, 5)), rng.normal(size=(300, 5)) + 0.5
    params = dict(hidden_layer_sizes=(16,), max_iter=10, random_state=0, device="cpu",
                  early_stopping=True, warm_start=True)
    vae = fit_quietly(skvae.VAETransformer(**params), X_old)
    before = vae.score(X_new)
    fit_quietly(vae, X_new)
    # Scores of the earlier fit came from other validation rows: they must not
    # stop the new run from keeping its own better weights.
    assert vae.score(X_new) > before + 1.0


def test_a_dense_warm_start_ignores_image_shape():
    X = np.random.RandomState(0).normal(size=(60, 6))
    vae = fit_quietly(small(skvae.VAETransformer, warm_start=True), X)
    fit_quietly(vae.set_params(image_shape=(2, 3)), X)
    assert vae.n_iter_ == 6


@pytest.mark.slow
def test_other_threads_see_the_old_model_or_the_new_one_never_a_mix():
    import threading

    X5 = np.random.RandomState(0).normal(size=(200, 5))
    X7 = np.random.RandomState(1).normal(size=(200, 7))
    vae = fit_quietly(small(skvae.VAETransformer, max_iter=30), X5)
    errors, done = [], threading.Event()

    def read():
        while not done.is_set():
            width = vae.n_features_in_
            try:
                vae.encode(X5 if width == 5 else X7)
            except ValueError as error:  # the model changed between the two reads
                if vae.n_features_in_ == width:
                    errors.append(error)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        fit_quietly(vae, X7)
    finally:
        done.set()
        reader.join()
    assert not errors, errors[:1]
    assert vae.n_features_in_ == 7


@pytest.mark.parametrize("bad", [-1, 2**32, 2**64, 1.5, "seed", True])
def test_sample_and_score_refuse_a_bad_random_state(bad, data):
    vae = fit_quietly(small(skvae.VAETransformer), data[0])
    for call in (lambda: vae.sample(2, random_state=bad),
                 lambda: vae.score_samples(data[0], random_state=bad)):
        with pytest.raises(ValueError, match="random_state"):
            call()


@pytest.mark.slow
def test_an_interrupt_at_any_line_of_fit_leaves_torchs_global_settings_alone(data):
    # Every line, not a sample: an interrupt at the exit of a `with torch.no_grad()`
    # or `with torch.device("meta")` block skips its restoring, and once left
    # gradients off (and every later fit of the session failed) or the meta device
    # on for the user's own tensors.
    X_old, X_new = data
    previous = fit_quietly(small(skvae.VAETransformer, learning_rate="constant"), X_old)

    def refit(estimator):
        return lambda: fit_quietly(estimator.set_params(random_state=1), X_new)

    counter = _Interrupt()
    run_traced(refit(copy.deepcopy(previous)), counter)
    threads = torch.get_num_threads()
    left = []
    for position in range(1, counter.count + 1):
        try:
            run_traced(refit(copy.deepcopy(previous)), _Interrupt(position))
        except KeyboardInterrupt:
            pass
        state = (torch.is_grad_enabled(), torch.get_num_threads(),
                 torch.empty(0).device.type)
        if state != (True, threads, "cpu"):
            left.append((position, state))
            torch.set_grad_enabled(True)
            torch.set_num_threads(threads)
    assert not left
