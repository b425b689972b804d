"""Which schedule reaches today's held-out likelihood soonest? Candidates one by one.

The exploration behind issue 20's defaults: one ``VAETransformer`` fit per
candidate (seed 0, one torch thread through ``SKVAE_THREADS=1`` so candidates
compare on equal terms), then the held-out IW log-likelihood (``score``, 50
draws). Prints one JSON line per candidate. Data: the fixed MNIST-8k split
(16-D, Bernoulli) or the digits / 16 (8-D, Bernoulli, 75 / 25 split).

    python benchmarks/bench_schedules.py mnist '{"cos50": {"learning_rate": "cosine",
        "max_iter": 50, "learning_rate_init": 2e-3}}'
"""

import json
import os
import sys
import time
import warnings

os.environ["SKVAE_THREADS"] = "1"

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skvae import VAETransformer
from skvae.datasets import load_mnist_split

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


def main(data, configs):
    warnings.simplefilter("ignore")
    if data == "mnist":
        X_train, X_test, _, _ = load_mnist_split(os.path.join(SHARED, "mnist"))
        X_train, X_test = X_train.astype(np.float64), X_test.astype(np.float64)
        base = {"n_components": 16, "likelihood": "bernoulli"}
    else:
        X = load_digits().data / 16
        X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)
        base = {"n_components": 8, "likelihood": "bernoulli"}
    for name, params in configs.items():
        vae = VAETransformer(random_state=0, **base, **params)
        start_cpu, start = time.process_time(), time.perf_counter()
        vae.fit(X_train)
        cpu, wall = time.process_time() - start_cpu, time.perf_counter() - start
        print(json.dumps({"data": data, "name": name, "epochs": vae.n_iter_,
                          "cpu": round(cpu, 1), "wall": round(wall, 1),
                          "iwll": round(float(vae.score(X_test)), 2)}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], json.loads(sys.argv[2]))
