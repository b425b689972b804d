"""Scale-out with Dask: dask_ml's Incremental over a dask array's chunks, and
scikit-learn's model selection under joblib's dask backend, on a LocalCluster."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_val_score

from skvae import VAEOutlierDetector, VAETransformer


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    pytest.importorskip("dask_ml")
    with warnings.catch_warnings():
        # distributed warns about ports and its own dashboard on start-up.
        warnings.simplefilter("ignore")
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = distributed.Client(cluster)
    yield client
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client.close()
        cluster.close()


@pytest.mark.slow
def test_incremental_trains_over_the_chunks_of_a_dask_array(client):
    import dask.array as da
    from dask_ml.wrappers import Incremental

    X = np.random.RandomState(0).normal(size=(2000, 5)).astype(np.float32)
    chunks = da.from_array(X, chunks=(500, 5))
    vae = VAETransformer(hidden_layer_sizes=(8,), random_state=0, device="cpu")
    incremental = Incremental(vae, shuffle_blocks=False).fit(chunks)
    fitted = incremental.estimator_
    assert fitted.n_iter_ == 4  # one partial_fit pass per chunk
    # The same passes by hand give the same model: Incremental adds nothing.
    by_hand = VAETransformer(hidden_layer_sizes=(8,), random_state=0, device="cpu")
    for start in range(0, 2000, 500):
        by_hand.partial_fit(X[start : start + 500])
    np.testing.assert_array_equal(fitted.transform(X), by_hand.transform(X))
    codes = incremental.transform(chunks).compute()
    np.testing.assert_array_equal(codes, by_hand.transform(X))


@pytest.mark.slow
def test_model_selection_runs_on_the_cluster_through_joblib(client):
    import joblib

    X = np.random.RandomState(1).normal(size=(300, 4))
    search = GridSearchCV(
        VAETransformer(hidden_layer_sizes=(8,), max_iter=3, random_state=0, device="cpu"),
        {"n_components": [1, 2]}, cv=2, n_jobs=-1,
    )
    detector = VAEOutlierDetector(max_iter=3, random_state=0, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with joblib.parallel_backend("dask"):
            search.fit(X)
            on_cluster = cross_val_score(detector, X, cv=2, n_jobs=-1)
        serial = cross_val_score(detector, X, cv=2)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    # Fitted in worker processes, the scores are those of a serial run.
    np.testing.assert_array_equal(on_cluster, serial)
