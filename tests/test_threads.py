"""Threads chosen by timing: the faster count is kept, results are the same bit for bit
on any count, and the user's setting is respected and restored, however calls overlap."""

import threading
import time
import warnings

import numpy as np
import pytest
import torch

import skvae._threads as threads_module
import skvae._training
from skvae import VAEOutlierDetector, VAETransformer
from skvae._threads import ThreadChooser, chosen_threads, user_threads
from skvae._warnings import TrainingInterruptedWarning


@pytest.fixture()
def two_threads(monkeypatch):
    """torch on two threads, as if that were its default (so skvae may choose), and
    work of any length worth measuring (the tests' fits take milliseconds)."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    monkeypatch.setattr(threads_module, "_TORCH_DEFAULT", 2)
    monkeypatch.setattr(threads_module, "MIN_MEASURED_SECONDS", 0.0)
    for name in ("SKVAE_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    yield 2
    torch.set_num_threads(before)


def fit(estimator, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimator.fit(X)


def threads_seen_by_training(monkeypatch):
    """Thread counts of the training steps, with the network each stepped."""
    seen, original = [], skvae._training.train_step

    def step(module, *args, **kwargs):
        seen.append((torch.get_num_threads(), module))
        return original(module, *args, **kwargs)

    monkeypatch.setattr(skvae._training, "train_step", step)
    return seen


def counts_of(seen, estimator):
    """The counts of the fitted network's own steps: not those of the copies on which
    the thread counts are checked."""
    return [count for count, module in seen if module is estimator.module_]


def test_matrix_products_were_made_reproducible_across_thread_counts():
    # The test process imported skvae before any product, as a user script does.
    assert threads_module.REPRODUCIBLE_ACROSS_THREADS == torch.backends.mkl.is_available()


def test_the_user_setting_decides_when_there_is_one(two_threads, monkeypatch):
    assert user_threads() is None
    monkeypatch.setenv("SKVAE_THREADS", "auto")
    assert user_threads() is None
    monkeypatch.setenv("SKVAE_THREADS", "1")
    assert user_threads() == 1
    monkeypatch.delenv("SKVAE_THREADS")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert user_threads() == 2
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(threads_module, "_TORCH_DEFAULT", 4)  # set_num_threads was called
    assert user_threads() == 2


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_a_bad_skvae_threads_value_is_a_clear_error(value, two_threads, monkeypatch):
    monkeypatch.setenv("SKVAE_THREADS", value)
    with pytest.raises(ValueError, match="SKVAE_THREADS=.*'auto' or a positive integer"):
        user_threads()


@pytest.mark.parametrize("slow_count, expected", [(2, 1), (1, 2)])
def test_the_chooser_keeps_the_count_that_ran_faster(slow_count, expected, two_threads):
    def work():
        if torch.get_num_threads() == slow_count:
            time.sleep(0.01)
        return torch.get_num_threads()

    chooser = ThreadChooser((1, 2))
    counts = [chooser.run(work) for _ in range(20)]
    assert not chooser.measuring and chooser.chosen == expected
    assert set(counts[: threads_module.MIN_MEASURED_CALLS]) == {1, 2}
    assert set(counts[threads_module.MIN_MEASURED_CALLS:]) == {expected}


def test_the_chooser_measures_again_when_its_choice_is_old(two_threads, monkeypatch):
    load = {"slow": 2}

    def work():
        if torch.get_num_threads() == load["slow"]:
            time.sleep(0.01)

    chooser = ThreadChooser((1, 2))
    for _ in range(10):
        chooser.run(work)
    assert chooser.chosen == 1
    load["slow"] = 1  # the other jobs moved
    monkeypatch.setattr(threads_module, "REMEASURE_SECONDS", 0.0)
    for _ in range(10):
        chooser.run(work)
    assert chooser.chosen == 2


def test_work_too_short_to_pay_for_measuring_stays_on_one_thread(two_threads,
                                                                 monkeypatch):
    monkeypatch.setattr(threads_module, "MIN_MEASURED_SECONDS", 10.0)
    asked = []

    def same_bits(a, b):
        asked.append((a, b))
        return True

    # 100 calls of a millisecond: 0.1 s in all, not worth a second thread.
    chooser = ThreadChooser((1, 2), n_calls=100, same_bits=same_bits)
    counts = [chooser.run(lambda: (time.sleep(0.001), torch.get_num_threads())[1])
              for _ in range(20)]
    assert counts == [1] * 20 and chooser.candidates == (1,) and not asked
    # 100 calls of 0.2 s would take 20 s: measured, after checking the bits.
    chooser = ThreadChooser((1, 2), n_calls=100, same_bits=same_bits)
    counts = [chooser.run(lambda: (time.sleep(0.2), torch.get_num_threads())[1])
              for _ in range(3)]
    assert counts == [1, 1, 2] and asked == [(1, 2)]


def test_a_short_fit_is_not_measured(two_threads, monkeypatch):
    monkeypatch.setattr(threads_module, "MIN_MEASURED_SECONDS", 10.0)
    seen = threads_seen_by_training(monkeypatch)
    X = np.random.RandomState(0).normal(size=(512, 30))
    vae = fit(VAETransformer(hidden_layer_sizes=(16,), batch_size=64, max_iter=3,
                             device="cpu"), X)
    assert set(counts_of(seen, vae)) == {1} and len(counts_of(seen, vae)) == 24
    assert all(module is vae.module_ for _, module in seen)  # the bits were not checked


def test_a_fit_times_both_counts_and_restores_the_setting(two_threads, monkeypatch):
    import skvae._fitting

    # Whether this network's step gives the same bits on both counts depends on
    # its kernels; the check itself is tested below. Here: a step that does.
    monkeypatch.setattr(skvae._fitting, "same_step_on_thread_counts", lambda *args: True)
    seen = threads_seen_by_training(monkeypatch)
    X = np.random.RandomState(0).normal(size=(512, 30))
    vae = fit(VAETransformer(hidden_layer_sizes=(16,), batch_size=64, max_iter=1,
                             device="cpu"), X)
    assert set(counts_of(seen, vae)[1: threads_module.MIN_MEASURED_CALLS]) == {1, 2}
    assert torch.get_num_threads() == two_threads


def test_work_whose_bits_depend_on_the_count_runs_on_one_thread(two_threads, monkeypatch):
    # A 4 x 32 by 32 x 16 product (the head's gradient at batch 32) splits its sum
    # by thread even in MKL's reproducible mode.
    monkeypatch.setattr(threads_module, "_same_bits", lambda a, b: False)
    chooser = ThreadChooser((1, 2), compare_first=True)
    counts = [chooser.run(torch.get_num_threads) for _ in range(10)]
    assert counts == [1] * 10 and chooser.candidates == (1,)
    seen = threads_seen_by_training(monkeypatch)
    import skvae._fitting
    monkeypatch.setattr(skvae._fitting, "same_step_on_thread_counts",
                        lambda *args: False)
    X = np.random.RandomState(0).normal(size=(512, 30))
    vae = fit(VAETransformer(hidden_layer_sizes=(16,), batch_size=64, max_iter=1,
                             device="cpu"), X)
    assert set(counts_of(seen, vae)) == {1}


def test_the_step_check_sees_a_step_that_differs_by_count(two_threads):
    from skvae._training import TrainingConfig, same_step_on_thread_counts

    torch.manual_seed(0)
    X = np.random.RandomState(0).normal(size=(310, 6))
    detector = fit(VAEOutlierDetector(hidden_layer_sizes=(16,), n_components=2,
                                      batch_size=32, max_iter=1, device="cpu"), X)
    module = detector.module_
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-2, fused=True)
    config = TrainingConfig(batch_size=32, learning_rate=1e-2, max_iter=1, tol=0,
                            n_iter_no_change=1, beta=1.0)
    rows = torch.randn(64, 6)
    # A product whose last bits depend on the thread count, whatever this CPU's
    # MKL does (it may give the same bits, or use one thread on a busy machine).
    module.decoder.register_forward_hook(
        lambda layer, inputs, output: output + 1e-6 * (torch.get_num_threads() - 1))
    before = [p.detach().clone() for p in module.parameters()]
    assert not same_step_on_thread_counts(module, optimizer, rows, config, "cpu", 1, 2)
    assert same_step_on_thread_counts(module, optimizer, rows, config, "cpu", 1, 1)
    # Tried on copies: the network itself did not move.
    assert all(torch.equal(a, b) for a, b in zip(before, module.parameters()))


def test_a_user_count_is_used_and_nothing_is_measured(two_threads, monkeypatch):
    monkeypatch.setenv("SKVAE_THREADS", "1")
    seen = threads_seen_by_training(monkeypatch)
    X = np.random.RandomState(0).normal(size=(512, 30))
    vae = fit(VAETransformer(hidden_layer_sizes=(16,), batch_size=64, max_iter=1,
                             device="cpu"), X)
    assert set(counts_of(seen, vae)) == {1}
    assert torch.get_num_threads() == two_threads


def test_convolutional_networks_are_not_measured(two_threads, monkeypatch):
    seen = threads_seen_by_training(monkeypatch)
    X = np.random.RandomState(0).uniform(size=(320, 64))
    vae = fit(VAETransformer(architecture="conv", image_shape=(8, 8), conv_channels=(4,),
                       conv_dense_width=8, likelihood="bernoulli", batch_size=32, max_iter=1,
                       device="cpu"), X)
    assert set(counts_of(seen, vae)) == {2}
    # A count the user chose holds for a conv network too.
    seen.clear()
    monkeypatch.setenv("SKVAE_THREADS", "1")
    vae = fit(VAETransformer(architecture="conv", image_shape=(8, 8), conv_channels=(4,),
                       conv_dense_width=8, likelihood="bernoulli", batch_size=32, max_iter=1,
                       device="cpu"), X)
    assert set(counts_of(seen, vae)) == {1} and torch.get_num_threads() == 2


def fitted_outputs(make, X):
    model = fit(make(), X)
    weights = [value.clone() for value in model.module_.state_dict().values()]
    return model.loss_curve_, weights, model.transform(X) if hasattr(model, "transform") \
        else model.encode(X), model.score_samples(X)


@pytest.mark.parametrize("make", [
    # A 6-column table: some of its products (6 x 128 by 128 x 32) round
    # differently on two MKL threads unless MKL's reproducible mode is on.
    lambda: VAETransformer(hidden_layer_sizes=(32,), random_state=0, max_iter=4, device="cpu"),
    lambda: VAEOutlierDetector(hidden_layer_sizes=(32,), random_state=0, max_iter=4,
                               device="cpu"),
], ids=["transformer", "detector"])
def test_results_are_the_same_bits_on_one_thread_two_or_chosen(make, two_threads,
                                                               monkeypatch):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 2)) @ rng.normal(size=(2, 6)) + 0.1 * rng.normal(size=(300, 6))
    results = {}
    for setting in ("1", "2", "auto"):
        monkeypatch.setenv("SKVAE_THREADS", setting)
        results[setting] = fitted_outputs(make, X)
    for setting in ("2", "auto"):
        curve, weights, codes, scores = results[setting]
        assert curve == results["1"][0]
        assert all(torch.equal(a, b) for a, b in zip(weights, results["1"][1]))
        np.testing.assert_array_equal(codes, results["1"][2])
        np.testing.assert_array_equal(scores, results["1"][3])


def test_long_inference_calls_time_both_counts(two_threads):
    X = np.random.RandomState(0).normal(size=(4000, 5))
    vae = fit(VAETransformer(hidden_layer_sizes=(8,), max_iter=1, device="cpu"), X)
    seen = []
    vae.module_.encoder.register_forward_hook(
        lambda module, inputs, output: seen.append(torch.get_num_threads()))
    vae.transform(X)  # 16 chunks of 256 rows
    # A warm-up and a timed chunk on one thread, the third chunk on both counts
    # (the same bits?), then alternately timed.
    assert seen[:4] == [1, 1, 1, 2]
    assert set(seen[4: threads_module.MIN_MEASURED_CALLS + 2]) == {1, 2}
    seen.clear()
    vae.transform(X[:10])  # too short to measure, or to check: one thread
    assert seen == [1]


def test_overlapping_calls_restore_the_setting_and_agree_with_serial_ones(two_threads):
    X = np.random.RandomState(0).normal(size=(3000, 5))
    vae = fit(VAETransformer(hidden_layer_sizes=(8,), max_iter=2, device="cpu"), X)
    expected_codes, expected_scores = vae.encode(X), vae.score_samples(X[:20])
    barrier, errors, mismatches = threading.Barrier(4), [], []

    def work():
        try:
            barrier.wait()
            for _ in range(10):
                if not (np.array_equal(vae.encode(X), expected_codes)
                        and np.array_equal(vae.score_samples(X[:20]), expected_scores)):
                    mismatches.append(True)
        except Exception as error:  # reported below
            errors.append(error)

    workers = [threading.Thread(target=work) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not errors and not mismatches
    assert torch.get_num_threads() == two_threads


def test_the_block_restores_the_count_it_found_after_an_error(two_threads):
    module = torch.nn.Linear(2, 2)
    with pytest.raises(RuntimeError, match="boom"), chosen_threads(module) as chooser:
        chooser.run(lambda: None)
        chooser.run(torch.set_num_threads, 1)
        raise RuntimeError("boom")
    assert torch.get_num_threads() == two_threads


def test_an_interrupt_during_the_check_of_the_counts_restores_the_setting(two_threads,
                                                                         monkeypatch):
    import skvae._fitting

    def interrupted(*args):
        torch.set_num_threads(1)  # the check sets threads as it tries them
        raise KeyboardInterrupt

    monkeypatch.setattr(skvae._fitting, "same_step_on_thread_counts", interrupted)
    vae = VAETransformer(hidden_layer_sizes=(8,), batch_size=32, max_iter=1, device="cpu")
    # The check runs after the first steps, inside training: an interrupt there
    # is the user's interrupt of training (the starting weights are kept).
    with pytest.warns(TrainingInterruptedWarning, match="No epoch finished"):
        vae.fit(np.random.RandomState(0).uniform(size=(300, 4)))
    assert torch.get_num_threads() == two_threads
    assert vae.n_iter_ == 0
