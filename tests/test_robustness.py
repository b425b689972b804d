"""Faults during training, hard data, large inputs and concurrent callers.

Every public estimator is covered: the classes are discovered from ``skvae.__all__``.
"""

import threading
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning

import skvae
import skvae._training
from skvae._inference import BLOCK_ROWS as _BLOCK_ROWS
from skvae._persistence import _estimator_classes

ESTIMATOR_CLASSES = [cls for _, cls in sorted(_estimator_classes().items())]
ids = [cls.__name__ for cls in ESTIMATOR_CLASSES]


def small(estimator_class, **params):
    defaults = dict(hidden_layer_sizes=(8,), max_iter=4, random_state=0, device="cpu")
    return estimator_class(**{**defaults, **params})


def fit_quietly(estimator, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X)


def weights_are_finite(estimator):
    return all(torch.isfinite(v).all() for v in estimator.module_.state_dict().values())


def all_outputs(estimator, X):
    """Every public output of a fitted estimator on ``X``."""
    out = {"score_samples": estimator.score_samples(X), "score": estimator.score(X),
           "sample": estimator.sample(5, random_state=0)}
    for method in ("transform", "decision_function", "predict"):
        if hasattr(estimator, method):
            out[method] = getattr(estimator, method)(X)
    if hasattr(estimator, "inverse_transform"):
        out["inverse_transform"] = estimator.inverse_transform(out["transform"])
    return out


def assert_usable(estimator, X):
    assert weights_are_finite(estimator)
    for name, value in all_outputs(estimator, X).items():
        assert np.all(np.isfinite(value)), name


@pytest.fixture(scope="module")
def X():
    return np.random.RandomState(0).normal(size=(60, 4)) * [1, 2, 3, 4] + 3


# ------------------------------------------------------------ non-finite training


@pytest.mark.parametrize("estimator_class", ESTIMATOR_CLASSES, ids=ids)
@pytest.mark.parametrize("early_stopping", [False, True])
def test_divergence_keeps_the_last_good_weights_and_says_what_to_change(
    estimator_class, X, early_stopping
):
    with pytest.warns(RuntimeWarning, match="NaN or infinite.*Lower learning_rate_init"):
        estimator = small(
            estimator_class, learning_rate_init=1e6, max_iter=20, early_stopping=early_stopping
        ).fit(X)
    assert estimator.n_iter_ < 20
    assert np.all(np.isfinite(estimator.loss_curve_))
    assert_usable(estimator, X)


def _poison_after_step(monkeypatch, on_call, value):
    """Make the ``on_call``-th optimiser step leave ``value`` in the weights.

    The loss of that step is finite (it is measured before the step), as when a
    huge or non-finite gradient arrives in the last batch of an epoch.
    """
    original, calls = skvae._training.train_step, []

    def step(module, optimizer, *args):
        loss = original(module, optimizer, *args)
        calls.append(1)
        if len(calls) == on_call:
            with torch.no_grad():
                next(module.parameters()).fill_(value)
        return loss

    monkeypatch.setattr(skvae._training, "train_step", step)


@pytest.mark.parametrize("value", [np.nan, np.inf, 1e30])
@pytest.mark.parametrize("poisoned_epoch", [2, 3])
def test_bad_weights_from_the_last_step_never_survive(monkeypatch, X, value, poisoned_epoch):
    # batch_size=60: one step per epoch. Epoch 3 is the last one, so no later
    # epoch loss can reveal the damage; the final check of the weights must.
    reference = fit_quietly(small(skvae.VAETransformer, max_iter=poisoned_epoch - 1), X)
    _poison_after_step(monkeypatch, poisoned_epoch, value)
    with pytest.warns(RuntimeWarning, match="NaN or infinite"):
        estimator = small(skvae.VAETransformer, max_iter=3, batch_size=60).fit(X)
    assert_usable(estimator, X)
    # Nothing good was lost: the weights are those after the last sound epoch.
    np.testing.assert_array_equal(estimator.transform(X), reference.transform(X))


def test_no_usable_weights_at_all_is_a_clear_error(monkeypatch, X):
    monkeypatch.setattr(skvae._training, "_gives_finite_loss", lambda *args: False)
    with pytest.raises(ValueError, match="no weights with a finite loss.*Rescale X"):
        small(skvae.VAETransformer).fit(X)


def test_extreme_but_finite_training_data_fit_or_fail_clearly():
    rng = np.random.RandomState(0)
    for scale in (1e-300, 1e-6, 1e6, 1e30, 1e150):
        X = rng.normal(size=(30, 3)) * scale
        estimator = fit_quietly(small(skvae.VAETransformer), X)
        assert_usable(estimator, X)
    with pytest.raises(ValueError, match="overflows float64.*StandardScaler"):
        small(skvae.VAETransformer).fit(rng.normal(size=(30, 3)) * 1e300)


# ------------------------------------------------------------ KeyboardInterrupt


def _interrupt_on_call(monkeypatch, name, on_call):
    original, calls = getattr(skvae._training, name), []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == on_call:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(skvae._training, name, interrupted)


@pytest.mark.parametrize("estimator_class", ESTIMATOR_CLASSES, ids=ids)
@pytest.mark.parametrize("early_stopping", [False, True])
def test_interrupt_keeps_the_weights_of_the_finished_epochs(
    monkeypatch, X, estimator_class, early_stopping
):
    params = dict(early_stopping=early_stopping, likelihood="gaussian", n_iter_no_change=10)
    reference = fit_quietly(small(estimator_class, max_iter=2, **params), X)
    _interrupt_on_call(monkeypatch, "run_epoch", 3)
    with pytest.warns(RuntimeWarning, match="interrupted.*after 2 complete epochs"):
        estimator = small(estimator_class, max_iter=10, **params).fit(X)
    assert estimator.n_iter_ == 2 and len(estimator.loss_curve_) == 2
    assert_usable(estimator, X)
    for name, value in all_outputs(reference, X).items():
        np.testing.assert_array_equal(all_outputs(estimator, X)[name], value, err_msg=name)


def test_interrupt_in_the_middle_of_an_epoch(monkeypatch, X):
    # A constant rate: under a schedule, the rates depend on max_iter.
    constant = dict(batch_size=10, learning_rate="constant")
    reference = fit_quietly(small(skvae.VAETransformer, max_iter=1, **constant), X)
    # 6 steps per epoch: the 9th step is in the middle of the second epoch.
    _interrupt_on_call(monkeypatch, "train_step", 9)
    with pytest.warns(RuntimeWarning, match="after 1 complete epochs"):
        estimator = small(skvae.VAETransformer, max_iter=10, **constant).fit(X)
    np.testing.assert_array_equal(estimator.transform(X), reference.transform(X))


@pytest.mark.parametrize("estimator_class", ESTIMATOR_CLASSES, ids=ids)
def test_interrupt_before_the_first_epoch_ends_leaves_a_usable_model(
    monkeypatch, X, estimator_class
):
    _interrupt_on_call(monkeypatch, "train_step", 1)
    with pytest.warns(RuntimeWarning, match="No epoch finished.*call fit again"):
        estimator = small(estimator_class).fit(X)
    assert estimator.n_iter_ == 0 and estimator.loss_curve_ == []
    assert_usable(estimator, X)
    monkeypatch.undo()
    fit_quietly(estimator, X)
    assert estimator.n_iter_ == 4


# ------------------------------------------------------------------ hard data


def _hard_datasets():
    rng = np.random.RandomState(0)
    base = rng.normal(size=(40, 4))
    read_only = base.copy()
    read_only.setflags(write=False)
    return {
        "constant column": np.c_[base, np.full(40, 7.0)],
        "all columns constant": np.full((20, 3), 5.0),
        "all zeros": np.zeros((20, 3)),
        "duplicated rows": np.repeat(base[:2], 20, axis=0),
        "single sample": base[:1],
        "fewer rows than batch_size": base[:5],
        "one feature": base[:, :1],
        "values around 1e6": base * 1e3 + 1e6,
        "values around 1e-6": np.abs(base) * 1e-6,
        "float16": base.astype(np.float16),
        "int": (base * 10).astype(np.int64),
        "bool": base > 0,
        "Fortran-ordered": np.asfortranarray(base),
        "read-only": read_only,
        "pandas frame": lambda pd: pd.DataFrame(base, columns=list("abcd")),
        "pandas mixed dtypes": lambda pd: pd.DataFrame(
            {"x": base[:, 0], "flag": base[:, 1] > 0, "count": (base[:, 2] * 5).astype(int)}
        ),
    }


# Built without pandas: only the tests of pandas inputs need it (and skip without it).
HARD_DATA = list(_hard_datasets())


@pytest.mark.parametrize("estimator_class", ESTIMATOR_CLASSES, ids=ids)
@pytest.mark.parametrize("name", HARD_DATA)
def test_hard_data_fits_a_usable_model(estimator_class, name):
    X = _hard_datasets()[name]
    if callable(X):
        X = X(pytest.importorskip("pandas"))
    before = np.array(X, copy=True)
    estimator = fit_quietly(small(estimator_class, batch_size=16), X)
    assert_usable(estimator, X)
    np.testing.assert_array_equal(np.asarray(X), before)


@pytest.mark.parametrize("estimator_class", ESTIMATOR_CLASSES, ids=ids)
def test_data_that_cannot_be_fitted_gets_a_clear_error(estimator_class):
    single = np.ones((1, 3))
    with pytest.raises(ValueError, match="leaves no training rows.*early_stopping=False"):
        small(estimator_class, early_stopping=True).fit(single)
    with pytest.raises(ValueError, match="0 sample"):
        small(estimator_class).fit(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="0 feature"):
        small(estimator_class).fit(np.zeros((3, 0)))
    with pytest.raises(ValueError, match="Complex data not supported"):
        small(estimator_class).fit(np.ones((3, 2)) + 1j)


@pytest.mark.parametrize("estimator_class", ESTIMATOR_CLASSES, ids=ids)
def test_rows_far_outside_the_training_data_give_finite_values_or_a_clear_error(
    estimator_class, X
):
    estimator = fit_quietly(small(estimator_class, likelihood="gaussian"), X)
    methods = [m for m in ("transform", "score_samples", "decision_function", "predict")
               if hasattr(estimator, m)]
    for magnitude in (1e3, 1e10, 1e20, 1e40, 1e300):
        far = X[:3].copy()
        far[1] = magnitude
        for method in methods:
            try:
                values = getattr(estimator, method)(far)
            except ValueError as error:
                assert "row 1 of X" in str(error) and "Clip or rescale" in str(error)
            else:
                assert np.all(np.isfinite(values)), (method, magnitude)
    if hasattr(estimator, "inverse_transform"):
        with pytest.raises(ValueError, match="row 0 of Z"):
            estimator.inverse_transform(np.full((1, estimator.n_components), 1e300))


# ------------------------------------------------------- large inputs, in blocks


@pytest.mark.parametrize("estimator_class", ESTIMATOR_CLASSES, ids=ids)
def test_results_do_not_depend_on_the_block_a_row_is_converted_in(estimator_class):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(_BLOCK_ROWS + 300, 3))
    estimator = fit_quietly(
        small(estimator_class, n_importance_samples=2, likelihood="gaussian"), X[:200]
    )
    full = all_outputs(estimator, X)
    window = slice(_BLOCK_ROWS - 5, _BLOCK_ROWS + 5)
    part = all_outputs(estimator, X[window])
    for name in ("transform", "score_samples", "decision_function", "predict"):
        if name in full:
            np.testing.assert_array_equal(full[name][window], part[name], err_msg=name)
    if "inverse_transform" in full:
        Z = full["transform"]
        np.testing.assert_array_equal(
            estimator.inverse_transform(Z)[window], estimator.inverse_transform(Z[window])
        )


# ------------------------------------------------------------------ threads


@pytest.mark.parametrize("estimator_class", ESTIMATOR_CLASSES, ids=ids)
def test_concurrent_calls_from_threads_match_serial_calls(estimator_class, X):
    estimator = fit_quietly(small(estimator_class), X)
    rng = np.random.RandomState(1)
    inputs = [X[rng.choice(len(X), size=300)] for _ in range(4)]
    serial = [all_outputs(estimator, x) for x in inputs]
    results, errors = [None] * len(inputs), []
    barrier = threading.Barrier(len(inputs))

    def work(i):
        try:
            barrier.wait()
            results[i] = [all_outputs(estimator, inputs[i]) for _ in range(3)]
        except Exception as error:  # reported below, in the main thread
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for expected, repeats in zip(serial, results):
        for got in repeats:
            for name, value in expected.items():
                np.testing.assert_array_equal(got[name], value, err_msg=name)


@pytest.mark.parametrize("estimator_class", ESTIMATOR_CLASSES, ids=ids)
def test_an_overflowing_beta_is_blamed_not_the_data(estimator_class, X):
    with pytest.raises(ValueError, match=r"beta=1e\+39 makes the KL term overflow") as info:
        small(estimator_class, beta=1e39, n_training_samples=1).fit(X)
    assert "Rescale X" not in str(info.value)
    # An ordinary beta on the same data trains.
    assert_usable(fit_quietly(small(estimator_class, beta=4.0, n_training_samples=1), X), X)


def test_read_only_float32_codes_decode_without_a_warning():
    # torch warns once per process on read-only memory, so a fresh process asks.
    import subprocess
    import sys

    script = (
        "import numpy as np\n"
        "from skvae import VAETransformer\n"
        "X = np.random.RandomState(0).uniform(size=(50, 3))\n"
        "vae = VAETransformer(hidden_layer_sizes=(8,), max_iter=2, random_state=0).fit(X)\n"
        "Z = vae.transform(X).astype(np.float32)\n"
        "Z.setflags(write=False)\n"
        "assert vae.inverse_transform(Z).shape == (50, 3)\n"
    )
    completed = subprocess.run([sys.executable, "-W", "error", "-c", script],
                               capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr[-2000:]
