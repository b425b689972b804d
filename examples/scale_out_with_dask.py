"""
Scaling out with Dask
=====================

Two ways to put a Dask cluster to work with skvae:

- ``dask_ml.wrappers.Incremental`` trains one estimator over the chunks of a
  ``dask.array``, calling :meth:`skvae.VAETransformer.partial_fit` once per chunk,
  so the data never have to fit in one machine's memory;
- scikit-learn's model selection (``GridSearchCV``, ``cross_val_score``) runs its
  fits on the cluster's workers under ``joblib.parallel_backend("dask")``.

Here the cluster is a ``LocalCluster`` of two worker processes. On a real cluster,
connect with ``Client("tcp://scheduler-address:8786")`` instead (or through
dask-jobqueue, dask-kubernetes, ...); the rest is unchanged. The workers need
skvae and its dependencies installed. Needs ``pip install "dask[array]"
distributed dask-ml``; not run by the documentation build.
"""


import dask.array as da
import joblib
import numpy as np
from dask.distributed import Client, LocalCluster
from dask_ml.wrappers import Incremental
from sklearn.model_selection import GridSearchCV

from skvae import VAETransformer

if __name__ == "__main__":  # worker processes import this file too
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        rng = np.random.default_rng(0)
        latent = rng.standard_normal((20_000, 2))
        X = np.tanh(latent @ rng.standard_normal((2, 10))) + 0.1 * rng.standard_normal(
            (20_000, 10))
        chunks = da.from_array(X.astype(np.float32), chunks=(2_000, 10))

        # %%
        # Train over the chunks: five passes of ten partial_fit calls
        incremental = Incremental(
            VAETransformer(hidden_layer_sizes=(32,), random_state=0), shuffle_blocks=False
        )
        for _ in range(5):
            incremental.partial_fit(chunks)
        vae = incremental.estimator_
        print(f"{vae.n_iter_} partial_fit calls; held-out score {vae.score(X[:2000]):.2f}")

        # %%
        # Model selection on the workers
        search = GridSearchCV(
            VAETransformer(hidden_layer_sizes=(32,), max_iter=20, random_state=0),
            {"n_components": [1, 2, 4]}, cv=3, n_jobs=-1,
        )
        with joblib.parallel_backend("dask"):
            search.fit(X[:5_000])
        print("best n_components by held-out likelihood:",
              search.best_params_["n_components"])
