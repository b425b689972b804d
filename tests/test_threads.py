"""Small networks run on one torch thread while skvae uses them; the user's setting
is restored afterwards, however calls overlap."""

import threading
import warnings

import numpy as np
import pytest
import torch

import skvae._training
from skvae import VAEOutlierDetector, VAETransformer
from skvae._threads import SMALL_NETWORK_WEIGHTS, is_small


@pytest.fixture()
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield 2
    torch.set_num_threads(before)


def fit(estimator, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimator.fit(X)


def threads_seen_by_training(monkeypatch):
    seen, original = [], skvae._training.train_step

    def step(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(*args, **kwargs)

    monkeypatch.setattr(skvae._training, "train_step", step)
    return seen


@pytest.mark.parametrize("hidden, expected", [((16,), 1), ((512, 256), 2)],
                         ids=["small", "large"])
def test_fit_uses_one_thread_for_small_networks_only(hidden, expected, two_threads,
                                                     monkeypatch):
    seen = threads_seen_by_training(monkeypatch)
    X = np.random.RandomState(0).normal(size=(64, 30))
    vae = fit(VAETransformer(hidden_layer_sizes=hidden, max_iter=2, device="cpu"), X)
    assert is_small(vae.module_) == (expected == 1)
    assert set(seen) == {expected}
    assert torch.get_num_threads() == two_threads


def test_the_default_detector_counts_as_small():
    X = np.random.RandomState(0).normal(size=(64, 100))
    detector = fit(VAEOutlierDetector(max_iter=1, device="cpu"), X)
    assert sum(p.numel() for p in detector.module_.parameters()) < SMALL_NETWORK_WEIGHTS


def test_inference_uses_one_thread_and_overlapping_calls_restore_the_setting(two_threads):
    X = np.random.RandomState(0).normal(size=(300, 5))
    vae = fit(VAETransformer(hidden_layer_sizes=(8,), max_iter=2, device="cpu"), X)
    seen = []
    vae.module_.encoder.register_forward_hook(
        lambda module, inputs, output: seen.append(torch.get_num_threads())
    )
    barrier, errors = threading.Barrier(4), []

    def work():
        try:
            barrier.wait()
            for _ in range(20):
                vae.encode(X)
                vae.score_samples(X[:20])
        except Exception as error:  # reported below
            errors.append(error)

    workers = [threading.Thread(target=work) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not errors and set(seen) == {1}
    assert torch.get_num_threads() == two_threads
