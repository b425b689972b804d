"""Learning-rate schedules, the epoch budget that scales with the data, and the
warning rule: a run that ends because its schedule ended does not warn."""

import math
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from skvae import VAETransformer
from skvae._schedules import (
    AUTO_MAX_EPOCHS,
    AUTO_MAX_RATE_FACTOR,
    AUTO_MIN_EPOCHS,
    AUTO_STEPS,
    auto_max_iter,
    auto_rate_factor,
    learning_rate_factor,
    warmup_steps,
)


@pytest.mark.parametrize("total", [1, 2, 7, 100, 12_345])
def test_cosine_warms_up_linearly_then_decays_along_a_half_cosine(total):
    warm = warmup_steps(total)
    factors = [learning_rate_factor(step, total, "cosine") for step in range(total)]
    for step in range(warm):
        assert factors[step] == pytest.approx((step + 1) / warm)
    decay = max(1, total - warm - 1)
    for step in range(warm, total):
        expected = 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / decay)))
        assert factors[step] == pytest.approx(expected)
    assert all(0 <= factor <= 1 for factor in factors)
    if total > warm + 1:
        assert factors[-1] == pytest.approx(0.0, abs=1e-12)


def test_constant_is_one_everywhere_and_unknown_schedules_are_refused():
    assert {learning_rate_factor(step, 10, "constant") for step in range(20)} == {1.0}
    with pytest.raises(ValueError, match="Unknown learning-rate schedule 'linear'"):
        learning_rate_factor(0, 10, "linear")


@pytest.mark.parametrize("n_rows, batch_size", [(50, 128), (1_347, 128), (8_000, 128),
                                                (60_000, 256), (10**7, 128)])
def test_auto_max_iter_plans_a_fixed_number_of_steps_within_bounds(n_rows, batch_size):
    epochs = auto_max_iter(n_rows, batch_size)
    steps_per_epoch = math.ceil(n_rows / min(batch_size, n_rows))
    assert AUTO_MIN_EPOCHS <= epochs <= AUTO_MAX_EPOCHS
    if AUTO_MIN_EPOCHS < epochs < AUTO_MAX_EPOCHS:
        assert abs(epochs * steps_per_epoch - AUTO_STEPS) <= steps_per_epoch / 2 + 1


def record_learning_rates(monkeypatch):
    import skvae._training

    # One thread, pinned: the check of the thread counts steps copies of the
    # network, which would be recorded too.
    monkeypatch.setenv("SKVAE_THREADS", "1")

    rates, original = [], skvae._training.train_step

    def step(module, optimizer, *args):
        rates.append(optimizer.param_groups[0]["lr"])
        return original(module, optimizer, *args)

    monkeypatch.setattr(skvae._training, "train_step", step)
    return rates


def data():
    return np.random.RandomState(0).normal(size=(200, 4))


def test_a_cosine_fit_steps_at_the_planned_rates_and_ends_near_zero(monkeypatch):
    rates = record_learning_rates(monkeypatch)
    vae = VAETransformer(hidden_layer_sizes=(8,), learning_rate="cosine",
                         learning_rate_init=0.01, batch_size=50, max_iter=6, tol=0,
                         random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the schedule ended: converged by design
        vae.fit(data())
    total = 6 * 4
    assert vae.n_iter_ == 6 and len(rates) == total
    expected = [0.01 * learning_rate_factor(step, total, "cosine") for step in range(total)]
    np.testing.assert_allclose(rates, expected)


def test_a_constant_fit_cut_off_at_max_iter_still_warns(monkeypatch):
    rates = record_learning_rates(monkeypatch)
    vae = VAETransformer(hidden_layer_sizes=(8,), learning_rate="constant", batch_size=50,
                         learning_rate_init=1e-3, max_iter=3, tol=0, random_state=0)
    with pytest.warns(ConvergenceWarning, match="max_iter=3 epochs"):
        vae.fit(data())
    assert set(rates) == {vae.learning_rate_init}


def test_partial_fit_steps_at_the_initial_rate_whatever_the_schedule(monkeypatch):
    rates = record_learning_rates(monkeypatch)
    vae = VAETransformer(hidden_layer_sizes=(8,), learning_rate="cosine", batch_size=50,
                         learning_rate_init=0.002, random_state=0)
    for _ in range(3):
        vae.partial_fit(data())
    assert set(rates) == {0.002}


def test_max_iter_auto_runs_the_budget_the_data_give(monkeypatch):
    import skvae._schedules

    monkeypatch.setattr(skvae._schedules, "AUTO_STEPS", 60)
    X = data()
    vae = VAETransformer(hidden_layer_sizes=(8,), max_iter="auto", learning_rate="cosine",
                         n_iter_no_change=1000, batch_size=100, random_state=0)
    vae.fit(X)
    assert vae.n_iter_ == auto_max_iter(len(X), 100) == 30


@pytest.mark.parametrize("n_rows, batch_size", [(50, 128), (300, 128), (1_347, 128),
                                                (2_790, 128), (5_000, 128), (8_000, 128),
                                                (10**7, 128)])
def test_auto_rate_factor_makes_up_for_the_steps_the_epoch_cap_takes(n_rows, batch_size):
    factor = auto_rate_factor(n_rows, batch_size)
    planned = auto_max_iter(n_rows, batch_size) * math.ceil(n_rows / min(batch_size, n_rows))
    assert 1.0 <= factor <= AUTO_MAX_RATE_FACTOR
    if planned >= AUTO_STEPS:
        assert factor == 1.0
    else:
        assert factor == pytest.approx(min(AUTO_MAX_RATE_FACTOR, AUTO_STEPS / planned))


@pytest.mark.parametrize("schedule", ["cosine", "constant"])
def test_only_an_auto_rate_under_an_auto_budget_grows(monkeypatch, schedule):
    # 200 rows in batches of 50: 80 epochs of 4 steps, far fewer than AUTO_STEPS,
    # so the "auto" rate 2e-3 runs at twice its value, and only then.
    rates = record_learning_rates(monkeypatch)
    peaks = {}
    for name, params in {"auto": {}, "explicit rate": {"learning_rate_init": 2e-3},
                         "explicit budget": {"max_iter": AUTO_MAX_EPOCHS}}.items():
        rates.clear()
        vae = VAETransformer(hidden_layer_sizes=(8,), batch_size=50, learning_rate=schedule,
                             n_iter_no_change=1000, random_state=0, **params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            vae.fit(data())
        assert vae.n_iter_ == AUTO_MAX_EPOCHS
        peaks[name] = max(rates)
    assert peaks["auto"] == pytest.approx(2 * 2e-3)
    assert peaks["explicit rate"] == pytest.approx(2e-3)
    assert peaks["explicit budget"] == pytest.approx(2e-3)
