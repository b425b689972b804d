"""Torch threads and skvae's fit: one thread against torch's default, alone, busy, in a grid search.

torch runs each operation on every core by default. Issue 10 asks whether a user
falls silently into the case where that makes small networks many times slower,
and which remedy skvae should apply. This benchmark measures, side by side in one
run:

1. **alone**: one ``fit`` per network size with the threads pinned to 1 and to
   the machine's core count (``SKVAE_THREADS``, so both settings are what they
   say), and with skvae's choice by timing (``SKVAE_THREADS=auto``, issue 20);
2. **busy**: the same, while ``--busy`` processes spin on the CPU beside it (a
   shared machine, a notebook next to a training job);
3. **grid search**: ``GridSearchCV(n_jobs=1)`` against ``n_jobs=2`` with skvae as
   shipped (its thread rule on), 4 candidates x 2 folds.

Networks: the detector's default (64, 32) on 30 columns, a (128, 64) network on
64 columns, the transformer's default (512, 256) on 64 columns (the digits) and
on 784 columns (MNIST). Data are random, drawn once per size: only time is
measured, and it does not depend on the values. Times are wall-clock seconds of
``fit`` (the median of ``--repeats``); the ratio is default threads over one
thread, so above 1 means torch's default is slower.

Run from the repository root (about 4 minutes on 2 cores)::

    PYTHONPATH=. python benchmarks/bench_threads.py --output benchmarks/results_threads.md
    PYTHONPATH=. python benchmarks/bench_threads.py --quick
"""

import argparse
import datetime
import multiprocessing
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import sklearn
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

import skvae
from skvae import VAEOutlierDetector, VAETransformer

# (label, estimator class, hidden layers, n_features, n_rows, epochs)
NETWORKS = (
    ("detector default (64, 32), 30 columns", VAEOutlierDetector, (64, 32), 30, 5000, 60),
    ("(128, 64), 64 columns", VAETransformer, (128, 64), 64, 5000, 20),
    ("default (512, 256), 64 columns", VAETransformer, (512, 256), 64, 5000, 10),
    ("default (512, 256), 784 columns", VAETransformer, (512, 256), 784, 4000, 4),
)


def _spin(stop):
    while not stop.is_set():
        sum(i * i for i in range(10_000))


class Busy:
    """``n`` processes spinning on the CPU while the block runs."""

    def __init__(self, n):
        self.n = n

    def __enter__(self):
        self.stop = multiprocessing.Event()
        self.workers = [
            multiprocessing.Process(target=_spin, args=(self.stop,), daemon=True)
            for _ in range(self.n)
        ]
        for worker in self.workers:
            worker.start()
        time.sleep(0.5)  # let them reach the CPU before timing starts
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for worker in self.workers:
            worker.join()


def _estimator(cls, hidden, epochs, seed=0):
    return cls(
        hidden_layer_sizes=hidden, max_iter=epochs, tol=0, random_state=seed,
        n_importance_samples=1,
    )


def _n_weights(estimator):
    return sum(p.numel() for p in estimator.module_.parameters())


def time_fit(cls, hidden, n_features, n_rows, epochs, n_threads, repeats):
    """Median wall seconds of ``fit`` on ``n_threads`` ("auto": skvae's timed choice)."""
    X = np.random.RandomState(0).uniform(size=(n_rows, n_features))
    previous = os.environ.get("SKVAE_THREADS")
    os.environ["SKVAE_THREADS"] = str(n_threads)
    try:
        seconds = []
        for repeat in range(repeats):
            estimator = _estimator(cls, hidden, epochs, seed=repeat)
            start = time.perf_counter()
            estimator.fit(X)
            seconds.append(time.perf_counter() - start)
    finally:
        if previous is None:
            os.environ.pop("SKVAE_THREADS")
        else:
            os.environ["SKVAE_THREADS"] = previous
    return statistics.median(seconds), _n_weights(estimator)


def time_grid_search(cls, hidden, n_features, n_rows, epochs, n_jobs):
    """Wall seconds of a 4-candidate, 2-fold ``GridSearchCV`` with skvae as shipped."""
    X = np.random.RandomState(0).uniform(size=(n_rows, n_features))
    search = GridSearchCV(
        _estimator(cls, hidden, epochs),
        {"n_components": [2, 4], "learning_rate_init": [1e-3, 3e-3]},
        cv=2, n_jobs=n_jobs,
    )
    start = time.perf_counter()
    search.fit(X)
    return time.perf_counter() - start


def run(networks, repeats, n_busy):
    cores = os.cpu_count()
    rows = []
    for label, cls, hidden, n_features, n_rows, epochs in networks:
        shape = (cls, hidden, n_features, n_rows, epochs)
        row = {"label": label}
        for load, busy in (("alone", 0), ("busy", n_busy)):
            with Busy(busy):
                one, n_weights = time_fit(*shape, 1, repeats)
                many, _ = time_fit(*shape, cores, repeats)
                chosen, _ = time_fit(*shape, "auto", repeats)
            row[load] = (one, many, chosen)
            row["weights"] = n_weights
            print(f"{label:40s} {load:6s} 1 thread {one:6.2f} s  {cores} threads "
                  f"{many:6.2f} s  ratio {many / one:5.2f}  chosen {chosen:6.2f} s",
                  flush=True)
        serial = time_grid_search(*shape, n_jobs=1)
        parallel = time_grid_search(*shape, n_jobs=2)
        row["grid"] = (serial, parallel)
        print(f"{label:40s} GridSearchCV n_jobs=1 {serial:6.2f} s  n_jobs=2 "
              f"{parallel:6.2f} s", flush=True)
        rows.append(row)
    return rows


def markdown(rows, command, repeats, n_busy, elapsed):
    cores = os.cpu_count()
    lines = [
        "# Torch threads during fit: one thread against torch's default",
        "",
        f"Date: {datetime.date.today().isoformat()}. Command: `{command}` "
        f"({elapsed / 60:.1f} min).",
        "",
        f"torch {torch.__version__}, scikit-learn {sklearn.__version__}, skvae "
        f"{skvae.__version__}, Python {platform.python_version()}, {cores} CPU cores; "
        f"torch's default is {cores} threads here.",
        "",
        f"Wall seconds of one `fit`, median of {repeats}; the thread count is "
        "pinned with `SKVAE_THREADS` for the 1 and "
        f"{cores} columns; *chosen* is skvae's choice by timing (`SKVAE_THREADS=auto`, "
        f"what a user gets). *busy*: {n_busy} processes spinning on the CPU beside "
        f"the fit. Ratio: {cores} threads over 1 thread (above 1: torch's default is "
        "slower); chosen / best: skvae's choice over the faster pinned count. "
        "Grid search: 4 candidates x 2 folds, skvae as shipped, wall seconds.",
        "",
        f"| network | weights | alone: 1 thread | {cores} threads | chosen | ratio "
        f"| chosen / best | busy: 1 thread | {cores} threads | chosen | ratio | chosen / best "
        "| GridSearchCV n_jobs=1 | n_jobs=2 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        (a1, a2, ac), (b1, b2, bc), (g1, g2) = row["alone"], row["busy"], row["grid"]
        lines.append(
            f"| {row['label']} | {row['weights']:,} | {a1:.2f} | {a2:.2f} | {ac:.2f} | "
            f"{a2 / a1:.2f} | {ac / min(a1, a2):.2f} | {b1:.2f} | {b2:.2f} | {bc:.2f} | "
            f"{b2 / b1:.2f} | {bc / min(b1, b2):.2f} | {g1:.2f} | {g2:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--busy", type=int, default=2, help="spinning processes")
    parser.add_argument("--output", type=Path)
    parser.add_argument("--quick", action="store_true", help="two small networks, 1 repeat")
    args = parser.parse_args(argv)
    networks = NETWORKS[:2] if args.quick else NETWORKS
    repeats = 1 if args.quick else args.repeats
    warnings.simplefilter("ignore", ConvergenceWarning)
    start = time.perf_counter()
    rows = run(networks, repeats, args.busy)
    command = "PYTHONPATH=. python benchmarks/" + " ".join(
        [Path(__file__).name] + (argv if argv is not None else sys.argv[1:])
    )
    text = markdown(rows, command, repeats, args.busy, time.perf_counter() - start)
    print(text)
    if args.output is not None and not args.quick:
        args.output.write_text(text)


if __name__ == "__main__":
    main()
