"""partial_fit: one pass per call, Adam's state kept between calls, fit's promises kept."""

import warnings

import numpy as np
import pytest
import torch

import skvae
from skvae import VAEOutlierDetector, VAETransformer

ESTIMATOR_CLASSES = [VAETransformer, VAEOutlierDetector]


def small(estimator_class, **params):
    defaults = dict(hidden_layer_sizes=(16,), batch_size=20, random_state=0, device="cpu")
    return estimator_class(**{**defaults, **params})


@pytest.fixture(scope="module")
def chunks():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(400, 5)) @ rng.normal(size=(5, 5)) + 2
    return np.array_split(X, 8)


@pytest.mark.parametrize("estimator_class", ESTIMATOR_CLASSES)
def test_the_first_call_is_fit_for_one_epoch(estimator_class, chunks):
    partial = small(estimator_class).partial_fit(chunks[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # partial_fit steps at the constant rate, whatever the schedule.
        full = small(estimator_class, max_iter=1, learning_rate="constant").fit(chunks[0])
    np.testing.assert_array_equal(partial.encode(chunks[1]), full.encode(chunks[1]))
    assert partial.n_iter_ == 1 and len(partial.loss_curve_) == 1


@pytest.mark.parametrize("estimator_class", ESTIMATOR_CLASSES)
def test_calls_continue_learning_reproducibly_and_without_warnings(estimator_class, chunks):
    first, second = small(estimator_class), small(estimator_class)
    for _ in range(5):
        for chunk in chunks:
            first.partial_fit(chunk)
            second.partial_fit(chunk)
    assert first.n_iter_ == 40 == len(first.loss_curve_)
    assert np.mean(first.loss_curve_[-8:]) < np.mean(first.loss_curve_[:8]) - 0.1
    np.testing.assert_array_equal(first.encode(chunks[0]), second.encode(chunks[0]))
    # The scaling comes from the first call and stays.
    np.testing.assert_allclose(first._model.data_space.shift, chunks[0].mean(axis=0))
    if hasattr(first, "offset_"):
        assert np.isfinite(first.offset_)


def test_adams_state_is_kept_between_calls(chunks, tmp_path):
    kept = small(VAETransformer).partial_fit(chunks[0])
    skvae.save(kept, tmp_path / "model.skvae")
    restarted = skvae.load(tmp_path / "model.skvae")  # the file holds no optimizer
    kept.partial_fit(chunks[1])
    restarted.partial_fit(chunks[1])
    assert not np.array_equal(kept.encode(chunks[2]), restarted.encode(chunks[2]))


def test_a_call_with_other_columns_or_network_is_refused_and_changes_nothing(chunks):
    vae = small(VAETransformer).partial_fit(chunks[0])
    before = vae.encode(chunks[1])
    with pytest.raises(ValueError, match="features"):
        vae.partial_fit(chunks[1][:, :3])
    vae.set_params(n_components=4)
    with pytest.raises(ValueError, match="partial_fit continue.*n_components"):
        vae.partial_fit(chunks[1])
    vae.set_params(n_components=2)
    np.testing.assert_array_equal(vae.encode(chunks[1]), before)
    assert vae.n_iter_ == 1


def test_fit_after_partial_fit_starts_afresh(chunks):
    vae = small(VAETransformer).partial_fit(chunks[0]).partial_fit(chunks[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vae.set_params(max_iter=2).fit(chunks[2])
        fresh = small(VAETransformer, max_iter=2).fit(chunks[2])
    assert "_optimizer_state" not in vars(vae)
    np.testing.assert_array_equal(vae.encode(chunks[3]), fresh.encode(chunks[3]))


def test_a_pickle_after_partial_fit_holds_every_tensor_on_the_cpu(chunks, monkeypatch):
    """Adam's state moves with the network: a GPU-fitted model unpickles on a CPU.

    Without a GPU here, the test checks that the optimizer's state goes through
    the move to the CPU when pickled (the GPU test below checks the move itself).
    """
    import pickle

    import skvae._base as base

    vae = small(VAETransformer).partial_fit(chunks[0])
    moved = []
    real_on_cpu = base.tensors_on_cpu

    def recording_on_cpu(value):
        moved.append(value)
        return real_on_cpu(value)

    monkeypatch.setattr(base, "tensors_on_cpu", recording_on_cpu)
    state = vae.__getstate__()
    assert moved and moved[0] is vars(vae)["_optimizer_state"]
    tensors = [t for group in state["_optimizer_state"]["state"].values()
               for t in group.values()]
    assert tensors and all(t.device.type == "cpu" for t in tensors)
    restored = pickle.loads(pickle.dumps(vae))
    np.testing.assert_array_equal(restored.partial_fit(chunks[1]).encode(chunks[2]),
                                  vae.partial_fit(chunks[1]).encode(chunks[2]))


def test_tensors_on_cpu_moves_nested_tensors_and_copies_the_rest():
    from skvae._devices import tensors_on_cpu

    state = {"state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.ones(2)}},
             "param_groups": [{"lr": 1e-3, "params": [0]}]}
    moved = tensors_on_cpu(state)
    assert moved["param_groups"] == state["param_groups"]
    assert moved["param_groups"][0] is not state["param_groups"][0]
    assert torch.equal(moved["state"][0]["exp_avg"], torch.ones(2))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_gpu_partial_fit_pickles_with_cpu_optimizer_state(chunks):
    import pickle

    vae = small(VAETransformer, device="cuda").partial_fit(chunks[0])
    state = pickle.loads(pickle.dumps(vae.__getstate__()))
    tensors = [t for group in state["_optimizer_state"]["state"].values()
               for t in group.values()]
    assert all(t.device.type == "cpu" for t in tensors)
    assert all(p.device.type == "cpu" for p in state["module_"].parameters())
