"""End to end through skvae: the default conv VAE against the default dense one, 30 epochs
on MNIST-8k, one thread; prints CPU s, held-out IW log-likelihood (``score``, 50 draws)
and 10-NN accuracy of the 2-D codes, one line per run.

Arguments are ``key=value`` pairs: ``seeds=(0, 1, 2)`` and ``architecture="dense"``
are read by the script, everything else goes to ``VAETransformer``::

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/_conv_end_to_end.py "seeds=(0, 1, 2)"
    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/_conv_end_to_end.py architecture='"dense"'
    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/_conv_end_to_end.py batch_size=128
"""

import ast
import sys
import time
import warnings
from pathlib import Path

import torch
from sklearn.neighbors import KNeighborsClassifier

from skvae import VAETransformer
from skvae.datasets import load_mnist_split

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def main(argv):
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    params = {key: ast.literal_eval(value) for key, value in (a.split("=", 1) for a in argv)}
    seeds = params.pop("seeds", (0,))
    architecture = params.pop("architecture", "conv")
    X_train, X_test, y_train, y_test = load_mnist_split(MNIST)
    for seed in seeds:
        vae = VAETransformer(
            architecture=architecture, image_shape=(1, 28, 28), n_components=2,
            likelihood="bernoulli", max_iter=30, tol=0, random_state=seed, **params,
        )
        start = time.process_time()
        vae.fit(X_train)
        cpu = time.process_time() - start
        codes = KNeighborsClassifier(10).fit(vae.transform(X_train), y_train)
        accuracy = codes.score(vae.transform(X_test), y_test)
        print(architecture, params, "seed", seed, "cpu", round(cpu), "IW",
              round(vae.score(X_test), 2), "10NN", round(accuracy, 3), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
