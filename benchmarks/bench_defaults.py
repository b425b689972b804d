"""How fast do VAETransformer's defaults get there? Candidate defaults side by side.

For each data set (scikit-learn's digits / 16 with a 75 / 25 split, and the fixed
8,000 / 2,000 MNIST split of ``../shared/data/mnist``) and each candidate set of
parameters, one ``fit`` from scratch, then the held-out ELBO per row
(``score`` with ``n_importance_samples=1``, which is deterministic). The first row
of each data set is today's default ``VAETransformer(random_state=seed)``: its time
is the time "to reach its final held-out ELBO". A candidate meets the goal of
issue 10 when its held-out ELBO is at least the default's (minus 0.5 nats, well
inside the seed-to-seed spread) in a quarter of the default's CPU time or less.

Time is the process's CPU time of ``fit`` with one torch thread, which other jobs
on a shared machine disturb much less than wall-clock time (also reported).

Run from the repository root::

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/bench_defaults.py \\
        --output benchmarks/results_defaults.md
"""

import argparse
import datetime
import os
import platform
import sys
import time
import warnings

import numpy as np
import sklearn
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import skvae
from skvae import VAETransformer
from skvae.datasets import load_mnist_split

DATA_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mnist")

CANDIDATES = {
    "default (batch 128, lr 1e-3, loss-window stop)": {},
    "batch 256, lr 2e-3": {"batch_size": 256, "learning_rate_init": 2e-3},
    "early stopping on held-out ELBO": {"early_stopping": True},
    "batch 256, lr 2e-3, early stopping": {
        "batch_size": 256, "learning_rate_init": 2e-3, "early_stopping": True},
    "batch 512, lr 3e-3, early stopping": {
        "batch_size": 512, "learning_rate_init": 3e-3, "early_stopping": True},
}


def load(name):
    if name == "digits":
        X = load_digits().data / 16.0
        X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)
        return X_train, X_test
    X_train, X_test, _, _ = load_mnist_split(DATA_DIR)
    return X_train.astype(np.float64), X_test.astype(np.float64)


def run(name, seeds, candidates):
    X_train, X_test = load(name)
    rows = []
    for label, params in candidates.items():
        for seed in seeds:
            vae = VAETransformer(random_state=seed, **params)
            wall, cpu = time.perf_counter(), time.process_time()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                vae.fit(X_train)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            elbo = vae.set_params(n_importance_samples=1).score(X_test)
            rows.append({"data": name, "candidate": label, "seed": seed, "cpu": cpu,
                         "wall": wall, "epochs": vae.n_iter_, "elbo": elbo})
            print(rows[-1], flush=True)
    return rows


def markdown(rows, command):
    lines = [
        "# Defaults that get there sooner: VAETransformer candidates side by side",
        "",
        f"Date: {datetime.date.today()}. Command: `{command}`",
        "",
        f"torch {torch.__version__}, scikit-learn {sklearn.__version__}, skvae "
        f"{skvae.__version__}, Python {platform.python_version()}, "
        f"{torch.get_num_threads()} torch thread, on a shared 2-core machine.",
        "",
        "One `fit` from scratch per candidate and seed; held-out ELBO per row (nats, "
        "`score` with one draw). CPU s: the process's CPU time of `fit`. Ratio: CPU "
        "time over the default's (goal <= 0.25 at a held-out ELBO no worse than the "
        "default's minus 0.5 nats). Means over seeds.",
        "",
        "| data | candidate | epochs | CPU s | wall s | CPU ratio | held-out ELBO | "
        "ELBO - default |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for data in dict.fromkeys(r["data"] for r in rows):
        subset = [r for r in rows if r["data"] == data]
        base = [r for r in subset if r["candidate"].startswith("default")]
        base_cpu = np.mean([r["cpu"] for r in base])
        base_elbo = np.mean([r["elbo"] for r in base])
        for label in dict.fromkeys(r["candidate"] for r in subset):
            runs = [r for r in subset if r["candidate"] == label]
            cpu = np.mean([r["cpu"] for r in runs])
            elbo = np.mean([r["elbo"] for r in runs])
            lines.append(
                f"| {data} | {label} | {np.mean([r['epochs'] for r in runs]):.0f} | "
                f"{cpu:.1f} | {np.mean([r['wall'] for r in runs]):.1f} | "
                f"{cpu / base_cpu:.2f} | {elbo:.2f} | {elbo - base_elbo:+.2f} |"
            )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--data", nargs="+", default=["digits", "mnist"])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for name in args.data:
        rows += run(name, args.seeds, CANDIDATES)
    command = "OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/bench_defaults.py " + " ".join(
        sys.argv[1:])
    text = markdown(rows, command)
    print(text)
    if args.output:
        with open(args.output, "w") as handle:
            handle.write(text)


if __name__ == "__main__":
    main()
