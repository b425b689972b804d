"""Monte-Carlo error of ``score``: draws shared by all rows against draws per row.

``score_samples`` estimates ``log p(x)`` with ``n_importance_samples`` posterior
draws. Before issue 12 the draws were fixed at fit time and shared by every row,
so every row carried the same error and ``score`` (their mean, what
``GridSearchCV`` ranks models by) inherited it whole. Now each row gets draws of
its own, keyed by the model's seed and the row's content.

For fitted models on three data sets and three seeds, this compares both schemes
with a reference: the mean of ``score`` over five further sets of independent
per-row draws (``score_samples(X, random_state=r)``, r = 1..5), whose own error is
about the per-row spread / sqrt(5 n). It reports the error of ``score`` at the
defaults (50 draws) and at one draw (the ELBO), and the time per row of both
schemes. Goal: error at most 0.1 nats at the defaults, time within 10%.

"Shared" reproduces the old scheme exactly: ``torch.randn((K, d))`` from the
model's scoring seed, passed to the same network function.

Run from the repository root::

    PYTHONPATH=. python benchmarks/bench_score_error.py --output benchmarks/results_score_error.md
    PYTHONPATH=. python benchmarks/bench_score_error.py --quick   # smoke run
"""

import argparse
import datetime
import platform
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import MinMaxScaler

import skvae
from skvae import VAEOutlierDetector, VAETransformer
from skvae._inference import importance_chunk_rows
from skvae.datasets import load_mnist_split

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
N_REFERENCE = 5


def shared_draw_scores(estimator, X, n_draws):
    """score_samples as before issue 12: K draws shared by every row."""
    noise = torch.randn(
        (n_draws, estimator.n_components_),
        generator=torch.Generator().manual_seed(estimator._model.noise_seed),
    )
    X = estimator._validate_X(X)
    values = estimator._model._map_rows(
        lambda x: estimator.module_.log_likelihood(x, noise), X,
        importance_chunk_rows(n_draws),
    )
    return values - estimator._model.data_space.log_abs_det


def per_row_scores(estimator, X, n_draws, random_state=None):
    """score_samples now (per-row draws), at ``n_draws`` draws.

    Through the fitted model both estimators share, because the detector scores
    with the number of draws it was fitted with, whatever its parameter says now.
    """
    return estimator._model.log_likelihood(estimator._validate_X(X), n_draws,
                                           random_state=random_state)


def timed(function, repeats=5):
    """Median CPU seconds of ``function`` (one torch thread: steadier than wall time)."""
    times, result = [], None
    for _ in range(repeats):
        start = time.process_time()
        result = function()
        times.append(time.process_time() - start)
    return statistics.median(times), result


def datasets(quick):
    X, _ = load_digits(return_X_y=True)
    X_train, X_test = train_test_split(X / 16.0, test_size=0.25, random_state=0)
    yield ("digits", VAETransformer,
           dict(n_components=8, likelihood="bernoulli", max_iter=5 if quick else 30),
           X_train, X_test)
    if (DATA / "mnist").exists():
        X_train, X_test, _, _ = load_mnist_split(DATA / "mnist")
        if quick:
            X_train, X_test = X_train[:1000], X_test[:200]
        yield ("MNIST-8k", VAETransformer,
               dict(n_components=20, likelihood="bernoulli", max_iter=1 if quick else 5),
               X_train, X_test)
    path = DATA / "adbench" / "38_thyroid.npz"
    if path.exists():
        arrays = np.load(path)
        X, y = arrays["X"], arrays["y"]
        X_train, X_test, _, y_test = train_test_split(
            X, y, test_size=0.3, stratify=y, random_state=1)
        scaler = MinMaxScaler().fit(X_train)
        # Scored on the held-out inliers: the anomalies' log-likelihoods reach -1e7
        # nats with a spread to match, and a mean dominated by them says nothing.
        yield ("38_thyroid", VAEOutlierDetector, dict(max_iter=5 if quick else 100),
               scaler.transform(X_train), scaler.transform(X_test[y_test == 0]))


def run(quick, seeds):
    rows = []
    for name, estimator_class, params, X_train, X_test in datasets(quick):
        for seed in seeds:
            estimator = estimator_class(random_state=seed, device="cpu", **params)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                estimator.fit(X_train)
            for n_draws in (50, 1):
                reference = np.mean([
                    per_row_scores(estimator, X_test, n_draws, r).mean()
                    for r in range(1, N_REFERENCE + 1)
                ])
                t_shared, shared = timed(lambda: shared_draw_scores(estimator, X_test, n_draws))
                t_row, per_row = timed(lambda: per_row_scores(estimator, X_test, n_draws))
                rows.append(dict(
                    data=name, seed=seed, draws=n_draws, reference=reference,
                    shared_error=shared.mean() - reference,
                    per_row_error=per_row.mean() - reference,
                    us_shared=1e6 * t_shared / len(X_test), us_row=1e6 * t_row / len(X_test),
                ))
                r = rows[-1]
                print(f"{name:10s} seed {seed} K={n_draws:2d}: error shared {r['shared_error']:+.3f}"
                      f"  per row {r['per_row_error']:+.3f}  time ratio "
                      f"{r['us_row'] / r['us_shared']:.3f}", flush=True)
    return rows


def table(rows, command, elapsed):
    lines = [
        "# Monte-Carlo error of `score`: shared draws against per-row draws",
        "",
        f"Produced by `{command}` on {datetime.date.today()} ({elapsed / 60:.0f} min): "
        f"skvae {skvae.__version__}, torch {torch.__version__} (1 thread), Python "
        f"{platform.python_version()}, {platform.machine()}.",
        "",
        "Error: `score` (mean of `score_samples` over the held-out rows) minus a "
        f"reference, the mean of `score` over {N_REFERENCE} further sets of independent "
        "per-row draws. *Shared*: the draws of skvae 0.1, fixed at fit time and shared "
        "by every row. *Per row*: the draws of issue 12, keyed by the model's seed and "
        "each row's content. Time: median CPU time of 5 calls, microseconds per "
        "held-out row (one thread). Digits: VAETransformer, 8 latent dimensions, 30 epochs, "
        "Bernoulli; MNIST-8k: 784-512-256-20, 5 epochs; 38_thyroid: "
        "VAEOutlierDetector at its defaults (Gaussian), ADBench split of seed 1, "
        "MinMaxScaler, scored on the held-out inliers. Goal: |error| <= 0.1 nats at 50 draws; time ratio <= 1.10.",
        "",
        "| data set | seed | draws | reference (nats) | error, shared | error, per row "
        "| time shared (us/row) | time per row (us/row) | time ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['data']} | {r['seed']} | {r['draws']} | {r['reference']:.2f} "
            f"| {r['shared_error']:+.3f} | {r['per_row_error']:+.3f} "
            f"| {r['us_shared']:.0f} | {r['us_row']:.0f} | {r['us_row'] / r['us_shared']:.3f} |"
        )
    lines += ["", "Summary (max |error| over data sets and seeds; median time ratio):", ""]
    for n_draws in (50, 1):
        subset = [r for r in rows if r["draws"] == n_draws]
        lines.append(
            f"- {n_draws} draw{'s' if n_draws > 1 else ''}: shared "
            f"{max(abs(r['shared_error']) for r in subset):.3f} nats, per row "
            f"**{max(abs(r['per_row_error']) for r in subset):.3f}** nats; time ratio "
            f"per row / shared **{statistics.median(r['us_row'] / r['us_shared'] for r in subset):.3f}**."
        )
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="benchmarks/output/results_score_error.md")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    rows = run(args.quick, seeds=(0,) if args.quick else (0, 1, 2))
    command = "PYTHONPATH=. python benchmarks/bench_score_error.py" + (
        " --quick" if args.quick else f" --output {args.output}")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(table(rows, command, time.perf_counter() - start))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
