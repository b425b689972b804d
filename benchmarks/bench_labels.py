"""A few labels: VAEOutlierDetector with 5% of the training anomalies labelled, on ADBench.

The protocol of ``bench_adbench.py`` (seeds 1, 2, 3; subsample to 10,000 rows;
stratified 70/30 split; ``MinMaxScaler`` on the training part), and then, per
seed, a share ``--labelled`` (default 5%) of the training part's anomalies,
at least one, drawn at random and labelled 1; every other training row is -1
(unlabelled). Side by side, with the same seeds and parameters: the
unsupervised detector, ``fit(X_train)``, and the detector with labels,
``VAEOutlierDetector(label_weight=...).fit(X_train, y)``. ROC-AUC and average
precision of the anomaly scores on the test part (which holds no labelled row),
averaged over the seeds. Optionally DeepOD's DeepSAD, given the same labels,
when it is installed (``--deepod``)::

    PYTHONPATH=. python benchmarks/bench_labels.py --threads 1
    PYTHONPATH=. python benchmarks/bench_labels.py --sets 47_yeast 6_cardio --max-iter 30
"""

import argparse
import importlib
import math
import shlex
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import MinMaxScaler

from skvae import VAEOutlierDetector

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _provenance import produced_by
from bench_adbench import DEFAULT_DATA_DIR, MAX_ROWS, SEEDS, dataset_paths

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results_labels.md"


def labelled_split(X, y, seed, share):
    """The ADBench split, scaled, with ``share`` of the training anomalies labelled.

    Returns ``X_train, y_labels, X_test, y_test``: ``y_labels`` is 1 for the
    labelled anomalies (``ceil(share * n)`` of the ``n`` in the training part, at
    least one) and -1 elsewhere. The split is ``bench_adbench``'s.
    """
    if X.shape[0] > MAX_ROWS:
        rows = np.random.RandomState(seed).choice(X.shape[0], MAX_ROWS, replace=False)
        X, y = X[rows], y[rows]
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=seed)
    scaler = MinMaxScaler().fit(X_train)
    anomalies = np.flatnonzero(y_train == 1)
    n_labelled = max(1, math.ceil(share * len(anomalies)))
    chosen = np.random.RandomState(seed).choice(anomalies, n_labelled, replace=False)
    y_labels = np.full(len(y_train), -1)
    y_labels[chosen] = 1
    return scaler.transform(X_train), y_labels, scaler.transform(X_test), y_test


def anomaly_scores(method, X_train, y_labels, X_test, seed, args):
    """Fit ``method`` on the training part; its anomaly scores (higher = more anomalous)."""
    if method == "deepsad":
        # An optional peer, installed by hand (see the docstring), not by an extra.
        DeepSAD = importlib.import_module("deepod.models.tabular").DeepSAD  # noqa: N806

        model = DeepSAD(random_state=seed, verbose=0, device="cpu")
        model.fit(X_train, np.where(y_labels == 1, 1, 0))
        return model.decision_function(X_test)
    detector = VAEOutlierDetector(random_state=seed, max_iter=args.max_iter,
                                  label_weight=args.label_weight if method == "labels" else 0)
    detector.fit(X_train, y_labels if method == "labels" else None)
    return -detector.score_samples(X_test)


def run_dataset(path, methods, args):
    data = np.load(path)
    X, y = data["X"].astype(np.float64), data["y"].astype(int)
    results, n_labelled = {}, []
    for method in methods:
        aucs, aps, seconds = [], [], 0.0
        for seed in args.seeds:
            X_train, y_labels, X_test, y_test = labelled_split(X, y, seed, args.labelled)
            if method == methods[0]:
                n_labelled.append(int((y_labels == 1).sum()))
            start = time.process_time()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                scores = anomaly_scores(method, X_train, y_labels, X_test, seed, args)
            seconds += time.process_time() - start
            aucs.append(roc_auc_score(y_test, scores))
            aps.append(average_precision_score(y_test, scores))
        results[method] = (float(np.mean(aucs)), float(np.mean(aps)), seconds)
        print(f"{path.stem:16s} {method:12s} ROC-AUC {results[method][0]:.3f} "
              f"AP {results[method][1]:.3f} {seconds:6.1f} s CPU", flush=True)
    return X.shape, n_labelled, results


NAMES = {"unsupervised": "unsupervised", "labels": "5% labels", "deepsad": "DeepSAD"}


def markdown(table, methods, command, args, elapsed):
    names = [NAMES[m].replace("5%", f"{args.labelled:.0%}") for m in methods]
    lines = [
        "# A few labels: VAEOutlierDetector with labelled anomalies on ADBench",
        "",
        produced_by(command, elapsed),
        "",
        ("Protocol of `bench_adbench.py` (seeds "
         f"{', '.join(map(str, args.seeds))}; subsample to 10,000 rows; stratified "
         "70/30 split; MinMaxScaler on the training part), then per seed "
         f"{args.labelled:.0%} of the training part's anomalies (rounded up, at least "
         "one; `labelled` is the count per seed) drawn at random and marked 1 in `y`, "
         "every other training row -1. Both arms: `VAEOutlierDetector(random_state="
         f"seed, max_iter={args.max_iter})`, the other parameters at their defaults; "
         f"unsupervised: `fit(X_train)`; labels: `label_weight={args.label_weight}`, "
         "`fit(X_train, y)`. ROC-AUC and AP of the anomaly score on the test part, "
         "mean over seeds. Time: CPU seconds (`time.process_time`), fit + score, "
         "summed over seeds."),
        "",
        "| data set | n | d | labelled | "
        + " | ".join(f"{n} AUC" for n in names) + " | "
        + " | ".join(f"{n} AP" for n in names) + " | "
        + " | ".join(f"{n} s" for n in names) + " |",
        "|" + "---|" * (4 + 3 * len(methods)),
    ]
    for name, (shape, n_labelled, results) in table.items():
        cells = [f"{results[m][k]:.{3 if k < 2 else 1}f}" for k in range(3) for m in methods]
        lines.append(f"| {name} | {shape[0]} | {shape[1]} | "
                     f"{'/'.join(map(str, n_labelled))} | " + " | ".join(cells) + " |")
    means = {m: [np.mean([r[m][k] for _, _, r in table.values()]) for k in range(3)]
             for m in methods}
    cells = [f"**{means[m][k]:.{3 if k < 2 else 1}f}**" for k in range(3) for m in methods]
    lines.append("| **mean** | | | | " + " | ".join(cells) + " |")
    gain = means["labels"][0] - means["unsupervised"][0]
    lines += ["", (f"Mean ROC-AUC gain of the labels over the unsupervised detector: "
                   f"**{gain:+.3f}** (goal: at least +0.05)."), ""]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--output", type=Path, default=None,
                        help=f"markdown file (default: {DEFAULT_OUTPUT.name} for all sets)")
    parser.add_argument("--sets", nargs="*", default=None, help="data set stems")
    parser.add_argument("--labelled", type=float, default=0.05)
    parser.add_argument("--label-weight", type=float, default=1.0)
    parser.add_argument("--max-iter", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="*", default=list(SEEDS))
    parser.add_argument("--deepod", action="store_true", help="add DeepOD's DeepSAD")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    paths = dataset_paths(args.data_dir, args.sets)
    if args.threads:
        torch.set_num_threads(args.threads)
    methods = ["unsupervised", "labels"] + (["deepsad"] if args.deepod else [])
    start = time.perf_counter()
    table = {path.stem: run_dataset(path, methods, args) for path in paths}
    command = "PYTHONPATH=. python " + " ".join(
        shlex.quote(a) for a in ["benchmarks/bench_labels.py", *(argv or sys.argv[1:])])
    report = markdown(table, methods, command, args, time.perf_counter() - start)
    output = args.output or (DEFAULT_OUTPUT if not args.sets else None)
    if output is not None:
        output.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
