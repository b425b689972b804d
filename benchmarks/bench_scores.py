"""Candidate anomaly scores of VAEOutlierDetector on ADBench: ratios, typicality, seeds.

The protocol of ``bench_adbench.py`` (seeds 1, 2, 3; subsample to 10,000 rows;
stratified 70/30 split; ``MinMaxScaler`` on the training part), the detector at
its defaults with ``random_state=seed``. Every candidate is computed from the
same fits, so they differ only in how a fitted model turns into a score
(higher = more anomalous below; ``score_samples`` is its negation):

- ``default``: ``-log p_vae(x)``, today's ``score_samples``.
- ``recon``: ``-log p(x | z = E[z | x])``, today's ``anomaly_score="reconstruction"``,
  for comparison.
- ``LR diag`` / ``LR full`` / ``LR GMM5``: the likelihood ratio ``-(log p_vae(x)
  - log p_ref(x))`` against a reference density fitted on the same training
  rows: a diagonal Gaussian, a full Gaussian (covariance + 1e-6 I, as
  ``GaussianMixture``'s ``reg_covar``), or ``GaussianMixture(5)``.
- ``typical``: ``|log p_vae(x) - m|``, ``m`` the mean log-likelihood of the
  training rows (two-sided: unusually likely rows are anomalous too).
- ``ens3`` / ``ens5``: the mean, over 3 or 5 detectors with ``random_state`` =
  ``seed`` and ``1000 * k + seed`` (k = 1, 2, ...), of each one's ``-log p(x)``
  standardised by the mean and standard deviation of its own training rows'
  scores (``_reference_scores``, kept at fit; no extra scoring).
- ``ens3 short``: as ``ens3``, but each of the 3 detectors trained for a third
  of the epochs (``max_iter=34``), so that the ensemble costs about one fit.

Time: fit + score seconds, summed over seeds, of what each candidate needs
(its fits, the reference model's fit, scoring the test rows)::

    SKVAE_THREADS=1 PYTHONPATH=. python benchmarks/bench_scores.py --threads 1
    SKVAE_THREADS=1 PYTHONPATH=. python benchmarks/bench_scores.py --sets 42_WBC 45_wine
"""

import argparse
import shlex
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from scipy.stats import multivariate_normal
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.mixture import GaussianMixture

from skvae import VAEOutlierDetector

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _provenance import produced_by, source_fingerprint, stamp_report
from bench_adbench import DEFAULT_DATA_DIR, SEEDS, dataset_paths, protocol_splits

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results_scores.md"
N_MEMBERS = 5
CANDIDATES = ("default", "recon", "LR diag", "LR full", "LR GMM5", "typical", "ens3",
              "ens5", "ens3 short")
SHORT_EPOCHS = 34
REG = 1e-6


def member_seed(seed, k):
    return seed if k == 0 else 1000 * k + seed


def reference_log_density(kind, X_train, X, seed):
    """log p_ref(X) of the reference density ``kind`` fitted on ``X_train``."""
    if kind == "LR diag":
        mean, var = X_train.mean(0), X_train.var(0) + REG
        return -0.5 * (np.log(2 * np.pi * var) + (X - mean) ** 2 / var).sum(1)
    if kind == "LR full":
        cov = np.cov(X_train, rowvar=False, bias=True) + REG * np.eye(X_train.shape[1])
        return multivariate_normal(X_train.mean(0), cov).logpdf(X)
    mixture = GaussianMixture(5, random_state=seed).fit(X_train)
    return mixture.score_samples(X)


def fitted_members(X_train, X_test, seed, n, **params):
    """``n`` detectors' test log-likelihoods with their training mean and std, and seconds."""
    members, seconds, first = [], [], None
    for k in range(n):
        start = time.perf_counter()
        detector = VAEOutlierDetector(random_state=member_seed(seed, k), **params)
        log_p = detector.fit(X_train).score_samples(X_test)
        seconds.append(time.perf_counter() - start)
        train = detector._reference_scores
        members.append((log_p, train.mean(), train.std()))
        first = first or detector
    return members, seconds, first


def ensemble(members):
    """Mean of the members' ``-log p``, each standardised by its training rows' scores."""
    return np.mean([-(p - m) / s for p, m, s in members], axis=0)


def candidate_scores(X_train, X_test, seed):
    """Anomaly scores (higher = more anomalous) of every candidate, and its seconds."""
    members, fit_seconds, detector = fitted_members(X_train, X_test, seed, N_MEMBERS)
    log_p, train_mean, _ = members[0]
    scores = {"default": (-log_p, fit_seconds[0])}
    start = time.perf_counter()
    recon = -detector._model.reconstruction_log_likelihood(X_test)
    # the fit's seconds include scoring the log-likelihood, which recon does not need
    scores["recon"] = (recon, fit_seconds[0] + time.perf_counter() - start)
    for kind in ("LR diag", "LR full", "LR GMM5"):
        start = time.perf_counter()
        ref = reference_log_density(kind, X_train, X_test, seed)
        scores[kind] = (-(log_p - ref), fit_seconds[0] + time.perf_counter() - start)
    scores["typical"] = (np.abs(log_p - train_mean), fit_seconds[0])
    for n in (3, 5):
        scores[f"ens{n}"] = (ensemble(members[:n]), sum(fit_seconds[:n]))
    short, short_seconds, _ = fitted_members(X_train, X_test, seed, 3,
                                             max_iter=SHORT_EPOCHS)
    scores["ens3 short"] = (ensemble(short), sum(short_seconds))
    return scores


def run_dataset(path, seeds):
    data = np.load(path)
    X, y = data["X"].astype(np.float64), data["y"].astype(int)
    per_seed = {c: [] for c in CANDIDATES}
    for seed in seeds:
        X_train, X_test, y_test = protocol_splits(X, y, seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scores = candidate_scores(X_train, X_test, seed)
        for c, (s, seconds) in scores.items():
            per_seed[c].append((roc_auc_score(y_test, s),
                                average_precision_score(y_test, s), seconds))
    results = {c: tuple(float(np.mean([r[k] for r in rows])) if k < 2
                        else float(np.sum([r[k] for r in rows])) for k in range(3))
               for c, rows in per_seed.items()}
    print(path.stem, " ".join(f"{c} {r[0]:.3f}" for c, r in results.items()), flush=True)
    return X.shape, results


def markdown(table, command, seeds, elapsed):
    lines = [
        "# Candidate anomaly scores on ADBench: likelihood ratios, typicality, seeds",
        "",
        produced_by(command, elapsed),
        "",
        (f"Protocol of `bench_adbench.py`, seeds {', '.join(map(str, seeds))}; "
         "`VAEOutlierDetector(random_state=seed)` at its defaults; the candidates of "
         "`benchmarks/bench_scores.py`'s docstring, all from the same fits. ROC-AUC "
         "and AP on the test part, mean over seeds; time: fit + score seconds "
         "summed over seeds."),
        "",
    ]
    for title, k in (("ROC-AUC", 0), ("Average precision", 1), ("Seconds", 2)):
        lines += [f"## {title}", "",
                  "| data set | n | d | " + " | ".join(CANDIDATES) + " |",
                  "|---|---|---|" + "---|" * len(CANDIDATES)]
        fmt = "{:.1f}" if k == 2 else "{:.3f}"
        for name, (shape, results) in table.items():
            lines.append(f"| {name} | {shape[0]} | {shape[1]} | "
                         + " | ".join(fmt.format(results[c][k]) for c in CANDIDATES) + " |")
        means = [np.mean([r[c][k] for _, r in table.values()]) for c in CANDIDATES]
        lines.append("| **mean** | | | " + " | ".join(
            f"**{fmt.format(m)}**" for m in means) + " |")
        if k == 0:
            worst = [min(r[c][0] - r["default"][0] for _, r in table.values())
                     for c in CANDIDATES]
            gains = [means[i] - means[0] for i in range(len(CANDIDATES))]
            lines.append("| mean change vs default | | | " + " | ".join(
                f"{g:+.3f}" for g in gains) + " |")
            lines.append("| worst set's change vs default | | | " + " | ".join(
                f"{w:+.3f}" for w in worst) + " |")
            lines.append("| goal met (mean up, no set > 0.02 worse) | | | " + " | ".join(
                "yes" if g > 0 and w >= -0.02 else "no" for g, w in zip(gains, worst)
            ) + " |")
        if k == 2:
            totals = [sum(r[c][2] for _, r in table.values()) for c in CANDIDATES]
            lines.append("| time / default's | | | " + " | ".join(
                f"{t / totals[0]:.2f}" for t in totals) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--sets", nargs="*", default=None, help="data set stems")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    args = parser.parse_args(argv)
    paths = dataset_paths(args.data_dir, args.sets)
    if args.threads:
        torch.set_num_threads(args.threads)
    fingerprint = source_fingerprint()
    start = time.perf_counter()
    table = {path.stem: run_dataset(path, SEEDS) for path in paths}
    command = "SKVAE_THREADS=1 PYTHONPATH=. python " + " ".join(
        shlex.quote(a) for a in ["benchmarks/bench_scores.py", *(argv or sys.argv[1:])])
    report = stamp_report(markdown(table, command, SEEDS, time.perf_counter() - start),
                          fingerprint)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
