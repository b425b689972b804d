"""ADBench with 20% of the cells missing: VAEOutlierDetector on raw holes against imputation.

The ADBench protocol of ``../shared/data/README.md`` on every ``*.npz`` in the data
folder (seeds 1, 2, 3; subsample to 10,000 rows if larger; stratified 70/30 split),
then 20% of the cells of the training part and, separately, of the test part are
removed completely at random (an exact count drawn with ``RandomState(seed)``; a row
that would lose every cell keeps one of them). ``MinMaxScaler`` is then fitted on
the training part *with its holes* (it ignores NaN) and applied to both parts, so
that no step sees a value that was removed. ROC-AUC of the anomaly score (minus
``score_samples``) on the test part for, each at default parameters with
``random_state=seed``:

* ``VAE native``: ``VAEOutlierDetector()`` fitted and scoring on the rows with holes;
* ``IForest+mean``: ``make_pipeline(SimpleImputer(), IsolationForest())``;
* ``VAE+mean``: ``make_pipeline(SimpleImputer(), VAEOutlierDetector())``;

and the same three on the complete data (the usual protocol, scaler fitted on the
complete training part), to give the ROC-AUC lost to holes. On complete data
``SimpleImputer`` is the identity, so ``VAE+mean`` there is ``VAE native``: it is
fitted once and reported for both.

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/bench_adbench_holes.py --threads 1
    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/bench_adbench_holes.py --quick
    python benchmarks/bench_adbench_holes.py --data-dir PATH --output results.md
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
from sklearn.impute import SimpleImputer
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

import skvae
from skvae import VAEOutlierDetector

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _provenance import source_fingerprint, stamp_report  # noqa: E402
from bench_adbench import (  # noqa: E402
    DEFAULT_DATA_DIR, QUICK_SETS, SEEDS, subsample_and_split,
)

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results_adbench_holes.md"
QUICK_OUTPUT = Path(__file__).resolve().parent / "output" / "results_adbench_holes_quick.md"
RATE = 0.2
METHODS = ("VAE native", "IForest+mean", "VAE+mean")


def remove_cells(X, rate, rng):
    """``X`` (float) with ``rate`` of its cells set to NaN; every row keeps a cell."""
    n_rows, n_cols = X.shape
    removed = np.zeros(X.size, dtype=bool)
    removed[rng.choice(X.size, int(round(rate * X.size)), replace=False)] = True
    removed = removed.reshape(X.shape)
    for i in np.flatnonzero(removed.all(axis=1)):
        removed[i, rng.randint(n_cols)] = False
    out = X.copy()
    out[removed] = np.nan
    return out


def splits(X, y, seed, holes):
    """One ADBench split, with holes or not: scaled train, scaled test, test labels."""
    X_train, X_test, y_test = subsample_and_split(X, y, seed)
    if holes:
        rng = np.random.RandomState(seed)
        X_train = remove_cells(X_train, RATE, rng)
        X_test = remove_cells(X_test, RATE, rng)
    scaler = MinMaxScaler().fit(X_train)  # ignores NaN
    return scaler.transform(X_train), scaler.transform(X_test), y_test


def anomaly_scores(method, X_train, X_test, seed):
    if method == "VAE native":
        model = VAEOutlierDetector(random_state=seed)
    elif method == "IForest+mean":
        model = make_pipeline(SimpleImputer(), IsolationForest(random_state=seed))
    else:
        model = make_pipeline(SimpleImputer(), VAEOutlierDetector(random_state=seed))
    return -model.fit(X_train).score_samples(X_test)


def run_dataset(path, seeds):
    data = np.load(path)
    X, y = data["X"].astype(np.float64), data["y"].astype(int)
    results = {}
    for holes in (False, True):
        for method in METHODS:
            if not holes and method == "VAE+mean":
                results[(holes, method)] = results[(holes, "VAE native")]
                continue
            aucs, seconds = [], 0.0
            for seed in seeds:
                X_train, X_test, y_test = splits(X, y, seed, holes)
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    scores = anomaly_scores(method, X_train, X_test, seed)
                seconds += time.perf_counter() - start
                if not np.isfinite(scores).all():
                    raise RuntimeError(f"{method} gave non-finite scores on {path.stem}")
                aucs.append(roc_auc_score(y_test, scores))
            results[(holes, method)] = (float(np.mean(aucs)), seconds)
            print(f"{path.stem:16s} {'holes' if holes else 'complete':8s} {method:13s} "
                  f"ROC-AUC {results[(holes, method)][0]:.3f} {seconds:7.1f} s", flush=True)
    return X.shape, results


def markdown(table, command, seeds, elapsed):
    lines = [
        "# ADBench with 20% of the cells missing: native VAE against imputation",
        "",
        f"Produced by `{command}` on {datetime.date.today().isoformat()} "
        f"({elapsed / 60:.0f} min): skvae {skvae.__version__}, scikit-learn "
        f"{sklearn.__version__}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), Python {platform.python_version()}, "
        f"{platform.machine()}.",
        "",
        "Protocol of `../shared/data/README.md` (seeds "
        f"{', '.join(map(str, seeds))}; subsample to 10,000 rows if larger; stratified "
        "70/30 split); then 20% of the cells of the training part and of the test part "
        "removed completely at random; `MinMaxScaler` fitted on the training part with "
        "its holes (NaN ignored). ROC-AUC of minus `score_samples` on the test part, "
        "mean over seeds. Methods at default parameters with `random_state=seed`: "
        "**native** = `VAEOutlierDetector()` on the rows with holes; **IForest+mean** = "
        "`make_pipeline(SimpleImputer(), IsolationForest())`; **VAE+mean** = "
        "`make_pipeline(SimpleImputer(), VAEOutlierDetector())`. *complete* = the same "
        "on the data without holes (there VAE+mean is VAE native: SimpleImputer is the "
        "identity). *loss* = complete minus holes (lower is better). Time: fit + score "
        "wall-clock seconds of the runs with holes, summed over seeds, shared machine.",
        "",
    ]
    short = {"VAE native": "native", "IForest+mean": "IForest+mean", "VAE+mean": "VAE+mean"}
    header = ("| data set | n | d | " + " | ".join(f"{short[m]} complete" for m in METHODS)
              + " | " + " | ".join(f"{short[m]} holes" for m in METHODS) + " | "
              + " | ".join(f"{short[m]} loss" for m in METHODS) + " | "
              + " | ".join(f"{short[m]} s" for m in METHODS) + " |")
    lines += [header, "|" + "---|" * (3 + 4 * len(METHODS))]
    sums = {k: [] for k in ("complete", "holes", "loss", "s")}
    for name, (shape, r) in table.items():
        complete = [r[(False, m)][0] for m in METHODS]
        holes = [r[(True, m)][0] for m in METHODS]
        loss = [c - h for c, h in zip(complete, holes)]
        secs = [r[(True, m)][1] for m in METHODS]
        for key, v in zip(("complete", "holes", "loss", "s"), (complete, holes, loss, secs)):
            sums[key].append(v)
        lines.append(
            f"| {name} | {shape[0]} | {shape[1]} | "
            + " | ".join(f"{v:.3f}" for v in complete) + " | "
            + " | ".join(f"{v:.3f}" for v in holes) + " | "
            + " | ".join(f"{v:+.3f}" for v in loss) + " | "
            + " | ".join(f"{v:.1f}" for v in secs) + " |"
        )
    mean = {k: np.mean(v, axis=0) for k, v in sums.items()}
    lines.append(
        "| **mean** | | | " + " | ".join(f"**{v:.3f}**" for v in mean["complete"]) + " | "
        + " | ".join(f"**{v:.3f}**" for v in mean["holes"]) + " | "
        + " | ".join(f"**{v:+.3f}**" for v in mean["loss"]) + " | "
        + " | ".join(f"**{v:.1f}**" for v in mean["s"]) + " |"
    )
    loss = dict(zip(METHODS, mean["loss"]))
    holes = dict(zip(METHODS, mean["holes"]))
    met = all(loss["VAE native"] < loss[m] for m in METHODS[1:])
    wins = {m: sum(1 for row in sums["loss"] if row[0] < row[i])
            for i, m in enumerate(METHODS) if i}
    lines += [
        "",
        "## Goal",
        "",
        f"The native model loses less ROC-AUC to holes than either other method: mean "
        f"loss native {loss['VAE native']:+.3f}, IForest+mean {loss['IForest+mean']:+.3f}, "
        f"VAE+mean {loss['VAE+mean']:+.3f}. **Goal {'met' if met else 'not met'}.** "
        f"Data sets where native loses less: {wins['IForest+mean']} of {len(table)} "
        f"against IForest+mean, {wins['VAE+mean']} of {len(table)} against VAE+mean. "
        f"Mean ROC-AUC with holes: native {holes['VAE native']:.3f}, IForest+mean "
        f"{holes['IForest+mean']:.3f}, VAE+mean {holes['VAE+mean']:.3f}; ratio native / "
        f"IForest+mean {holes['VAE native'] / holes['IForest+mean']:.3f}, native / "
        f"VAE+mean {holes['VAE native'] / holes['VAE+mean']:.3f}.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument(
        "--output", type=Path, default=None,
        help=f"markdown file (default: {DEFAULT_OUTPUT.name}; with --quick, output/)",
    )
    parser.add_argument("--quick", action="store_true",
                        help="3 small data sets, seed 1 only (smoke test)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's)")
    args = parser.parse_args(argv)

    paths = sorted(args.data_dir.glob("*.npz")) if args.data_dir.is_dir() else []
    if not paths:
        sys.exit(f"No ADBench .npz files in {args.data_dir}; see ../shared/data/README.md.")
    if args.threads:
        torch.set_num_threads(args.threads)
    seeds = SEEDS
    output = args.output or (QUICK_OUTPUT if args.quick else DEFAULT_OUTPUT)
    if args.quick:
        paths = [p for p in paths if p.stem in QUICK_SETS] or paths[:3]
        seeds = SEEDS[:1]

    warm_up = np.random.RandomState(0).uniform(size=(64, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for method in METHODS:
            anomaly_scores(method, warm_up, warm_up, 0)

    fingerprint = source_fingerprint()
    start = time.perf_counter()
    table = {path.stem: run_dataset(path, seeds) for path in paths}
    command = "OMP_NUM_THREADS=1 PYTHONPATH=. python " + " ".join(
        shlex.quote(a) for a in ["benchmarks/bench_adbench_holes.py", *(argv or sys.argv[1:])]
    )
    report = markdown(table, command, seeds, time.perf_counter() - start)
    report = stamp_report(report, fingerprint)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
