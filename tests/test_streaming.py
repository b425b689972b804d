"""Fitting from arrays that are not copied whole: memmaps and very large arrays."""

import warnings

import numpy as np
import pytest

import skvae._data
from skvae import VAEOutlierDetector, VAETransformer
from skvae._data import DataSpace, _streamed_mean_std, is_streamed
from skvae._inference import BLOCK_ROWS

# More rows than one inference block, so that no legitimate conversion (minibatch,
# validation rows, inference block) covers the whole array.
N_ROWS = 2 * BLOCK_ROWS + 500


@pytest.fixture()
def memmap(tmp_path):
    rng = np.random.RandomState(0)
    X = np.memmap(tmp_path / "X.dat", dtype=np.float32, mode="w+", shape=(N_ROWS, 6))
    X[:] = rng.normal(size=(N_ROWS, 6)) @ rng.normal(size=(6, 6)) + 3
    X.flush()
    return np.memmap(tmp_path / "X.dat", dtype=np.float32, mode="r", shape=(N_ROWS, 6))


def fit(estimator_class, X, **params):
    estimator = estimator_class(hidden_layer_sizes=(16,), max_iter=2, batch_size=64,
                                random_state=0, device="cpu", **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimator.fit(X)


def test_memmaps_and_huge_arrays_are_streamed_small_arrays_are_not(memmap):
    assert is_streamed(memmap) and is_streamed(np.asarray(memmap)[10:])
    assert not is_streamed(np.array(memmap))


def test_streamed_statistics_match_numpy(memmap):
    mean, std = _streamed_mean_std(memmap)
    np.testing.assert_allclose(mean, np.asarray(memmap, dtype=np.float64).mean(axis=0),
                               rtol=1e-12)
    np.testing.assert_allclose(std, np.asarray(memmap, dtype=np.float64).std(axis=0),
                               rtol=1e-10)


@pytest.mark.parametrize("estimator_class", [VAETransformer, VAEOutlierDetector])
@pytest.mark.parametrize("early_stopping", [False, True])
def test_a_fit_on_a_memmap_reads_minibatches_never_the_whole_array(
    estimator_class, early_stopping, memmap, monkeypatch
):
    sizes = []
    original = DataSpace.to_tensor

    def recording(self, X, device):
        sizes.append(X.shape[0])
        return original(self, X, device)

    monkeypatch.setattr(DataSpace, "to_tensor", recording)
    estimator = fit(estimator_class, memmap, early_stopping=early_stopping)
    # Minibatches of 64, 1024 rows for the finiteness check, the validation
    # rows, inference blocks for the detector's threshold: never all rows.
    assert max(sizes) <= BLOCK_ROWS < N_ROWS
    assert sizes.count(64) > 100
    again = fit(estimator_class, memmap, early_stopping=early_stopping)
    np.testing.assert_array_equal(estimator.encode(memmap[:50]), again.encode(memmap[:50]))
    assert estimator.loss_curve_[-1] < estimator.loss_curve_[0]


def test_streaming_an_in_memory_array_gives_a_working_model(monkeypatch):
    monkeypatch.setattr(skvae._data, "STREAM_VALUES", 100)
    X = np.random.RandomState(1).normal(size=(500, 4))
    vae = fit(VAETransformer, X)
    assert np.all(np.isfinite(vae.score_samples(X)))
    np.testing.assert_allclose(vae._model.data_space.shift, X.mean(axis=0), rtol=1e-12)
