"""VAEOutlierDetector against IsolationForest and PyOD's VAE and AutoEncoder on ADBench.

Runs the ADBench protocol of ``../shared/data/README.md`` on every ``*.npz`` in the
data folder: for seeds 1, 2, 3, subsample to 10,000 rows if larger, a stratified
70/30 split, ``MinMaxScaler`` fitted on the training part, each detector fitted on
the (contaminated) training part without labels at its default parameters with
``random_state=seed``, ROC-AUC and average precision of its anomaly score on the
test part, averaged over the seeds. Fit + score time is wall-clock seconds summed
over the three seeds.

PyOD is a benchmark-only dependency (``pip install -e ".[benchmark]"``)::

    python benchmarks/bench_adbench.py --threads 1     # all data sets
    python benchmarks/bench_adbench.py --quick         # smoke test: 3 small sets, 1 seed
    python benchmarks/bench_adbench.py --data-dir PATH --output results.md
"""

import argparse
import datetime
import platform
import shlex
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import sklearn
import torch
from sklearn.ensemble import IsolationForest
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import MinMaxScaler

import skvae
from skvae import VAEOutlierDetector

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data" / "adbench"
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results_adbench.md"
# --quick never overwrites the committed results.
QUICK_OUTPUT = Path(__file__).resolve().parent / "output" / "results_adbench_quick.md"
SEEDS = (1, 2, 3)
QUICK_SETS = ("42_WBC", "45_wine", "18_Ionosphere")
MAX_ROWS = 10_000


def _pyod_detector(name, seed):
    # Imported here so that a missing PyOD fails with a clear message, not at import.
    if name == "PyOD VAE":
        from pyod.models.vae import VAE

        return VAE(random_state=seed, verbose=0)
    from pyod.models.auto_encoder import AutoEncoder

    return AutoEncoder(random_state=seed, verbose=0)


def anomaly_scores(name, X_train, X_test, seed):
    """Fit detector ``name`` on ``X_train``; its anomaly scores (higher = more anomalous)."""
    if name == "skvae VAEOutlierDetector":
        detector = VAEOutlierDetector(random_state=seed).fit(X_train)
        return -detector.score_samples(X_test)
    if name == "IsolationForest":
        detector = IsolationForest(random_state=seed).fit(X_train)
        return -detector.score_samples(X_test)
    detector = _pyod_detector(name, seed).fit(X_train)
    return detector.decision_function(X_test)


METHODS = ("skvae VAEOutlierDetector", "IsolationForest", "PyOD VAE", "PyOD AutoEncoder")
SHORT = {
    "skvae VAEOutlierDetector": "skvae",
    "IsolationForest": "IForest",
    "PyOD VAE": "PyOD VAE",
    "PyOD AutoEncoder": "PyOD AE",
}


def subsample_and_split(X, y, seed):
    """Subsample to ``MAX_ROWS`` if larger, then a stratified 70/30 split, unscaled."""
    if X.shape[0] > MAX_ROWS:
        rows = np.random.RandomState(seed).choice(X.shape[0], MAX_ROWS, replace=False)
        X, y = X[rows], y[rows]
    X_train, X_test, _, y_test = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=seed
    )
    return X_train, X_test, y_test


def protocol_splits(X, y, seed):
    """One ADBench split: subsample, stratified 70/30, MinMax-scale on the train part."""
    X_train, X_test, y_test = subsample_and_split(X, y, seed)
    scaler = MinMaxScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_test


def dataset_paths(data_dir, sets=None):
    """The ``*.npz`` files in ``data_dir`` (those whose stems ``sets`` names, if given).

    Exits, saying where the files should be, when there are none.
    """
    paths = sorted(data_dir.glob("*.npz")) if data_dir.is_dir() else []
    if sets:
        paths = [p for p in paths if p.stem in sets]
    if not paths:
        sys.exit(f"No ADBench .npz files in {data_dir} (see ../shared/data/README.md).")
    return paths


def run_dataset(path, seeds):
    data = np.load(path)
    X, y = data["X"].astype(np.float64), data["y"].astype(int)
    results = {}
    for method in METHODS:
        aucs, aps, seconds = [], [], 0.0
        for seed in seeds:
            X_train, X_test, y_test = protocol_splits(X, y, seed)
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                scores = anomaly_scores(method, X_train, X_test, seed)
            seconds += time.perf_counter() - start
            aucs.append(roc_auc_score(y_test, scores))
            aps.append(average_precision_score(y_test, scores))
        results[method] = (float(np.mean(aucs)), float(np.mean(aps)), seconds)
        print(
            f"{path.stem:16s} {method:26s} ROC-AUC {results[method][0]:.3f} "
            f"AP {results[method][1]:.3f} {seconds:7.1f} s",
            flush=True,
        )
    return X.shape, results


def markdown(table, command, seeds, elapsed):
    lines = [
        "# ADBench: VAEOutlierDetector against IsolationForest and PyOD",
        "",
        f"Produced by `{command}` on {datetime.date.today().isoformat()} "
        f"({elapsed / 60:.0f} min): skvae {skvae.__version__}, scikit-learn "
        f"{sklearn.__version__}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), PyOD {_pyod_version()}, Python "
        f"{platform.python_version()}, {platform.machine()}.",
        "",
        "Protocol of `../shared/data/README.md`: seeds "
        f"{', '.join(map(str, seeds))}; subsample to 10,000 rows if larger; stratified "
        "70/30 split; MinMaxScaler fitted on the training part; every detector at its "
        "default parameters with `random_state=seed`, fitted on the training part "
        "without labels (it contains the anomalies); ROC-AUC and average precision "
        "(AP) of the anomaly score on the test part, averaged over seeds. Time: "
        "fit + score wall-clock seconds, summed over seeds, on a shared machine.",
        "",
    ]
    header = "| data set | n | d | " + " | ".join(
        f"{SHORT[m]} AUC" for m in METHODS
    ) + " | " + " | ".join(f"{SHORT[m]} AP" for m in METHODS) + " | " + " | ".join(
        f"{SHORT[m]} s" for m in METHODS
    ) + " |"
    lines += [header, "|" + "---|" * (3 + 3 * len(METHODS))]
    for name, (shape, results) in table.items():
        cells = [f"{results[m][0]:.3f}" for m in METHODS]
        cells += [f"{results[m][1]:.3f}" for m in METHODS]
        cells += [f"{results[m][2]:.1f}" for m in METHODS]
        lines.append(f"| {name} | {shape[0]} | {shape[1]} | " + " | ".join(cells) + " |")
    means = {
        m: [np.mean([r[m][k] for _, r in table.values()]) for k in range(3)]
        for m in METHODS
    }
    cells = [f"**{means[m][0]:.3f}**" for m in METHODS]
    cells += [f"**{means[m][1]:.3f}**" for m in METHODS]
    cells += [f"**{means[m][2]:.1f}**" for m in METHODS]
    lines.append("| **mean** | | | " + " | ".join(cells) + " |")
    total = {m: sum(r[m][2] for _, r in table.values()) for m in METHODS}
    ratio = total["skvae VAEOutlierDetector"] / total["PyOD VAE"]
    lines += [
        "",
        f"Total fit + score time: "
        + ", ".join(f"{SHORT[m]} {total[m]:.0f} s" for m in METHODS)
        + f". Time ratio skvae / PyOD VAE: **{ratio:.2f}**.",
        "",
    ]
    return "\n".join(lines)


def _pyod_version():
    import pyod

    return pyod.__version__


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument(
        "--output", type=Path, default=None,
        help=f"markdown file (default: {DEFAULT_OUTPUT.name}; with --quick, output/)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="3 small data sets, seed 1 only (smoke test)"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    args = parser.parse_args(argv)

    paths = sorted(args.data_dir.glob("*.npz")) if args.data_dir.is_dir() else []
    if not paths:
        sys.exit(
            f"No ADBench .npz files in {args.data_dir}. Pass --data-dir pointing to "
            "the folder described in ../shared/data/README.md."
        )
    try:
        _pyod_version()
    except ImportError:
        sys.exit('PyOD is not installed: pip install -e ".[benchmark]"')
    if args.threads:
        torch.set_num_threads(args.threads)
    seeds = SEEDS
    output = args.output or (QUICK_OUTPUT if args.quick else DEFAULT_OUTPUT)
    if args.quick:
        paths = [p for p in paths if p.stem in QUICK_SETS] or paths[:3]
        seeds = SEEDS[:1]

    # One untimed run of every method first, so that no method's time includes
    # one-off costs (imports, kernel compilation) paid on the first call.
    warm_up = np.random.RandomState(0).uniform(size=(64, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for method in METHODS:
            anomaly_scores(method, warm_up, warm_up, 0)

    start = time.perf_counter()
    table = {path.stem: run_dataset(path, seeds) for path in paths}
    command = "PYTHONPATH=. python " + " ".join(
        shlex.quote(a) for a in ["benchmarks/bench_adbench.py", *(argv or sys.argv[1:])]
    )
    report = markdown(table, command, seeds, time.perf_counter() - start)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
